"""The web page in headless Chromium (Debian's `chromium`, driven by Playwright for Python:
its own browser download does not work here): type a loose title, pick a genre chip, see only
that genre, open "why?", save a screenshot. Skips with the reason when there is no Chromium.

BOOKVEC_SCREENSHOT=docs/img/serve.png also saves the screenshot there (the README's)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.server import Server

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("BOOKVEC_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def loose(title: str) -> str:
    """How a person types it: lower case, no article, no qualifier."""
    words = title.split(" (")[0].split()
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words).lower()


def drive(url: str, title: str, out: Path, width: int = 1100) -> dict:
    """The user's path through the page; returns what was seen."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            expect(page.locator(".chip").first).to_be_visible()
            page.locator("#q").fill(loose(title))
            page.locator("#q").press("Enter")
            results = page.locator("#results .result[data-title]")
            expect(results.first).to_be_visible()
            genres = page.locator("#results .result .genre").all_inner_texts()
            genre = max(set(genres), key=genres.count)  # the commonest among the results
            if not page.locator(f'.chip[data-genre="{genre}"]').is_visible():
                page.locator("#more-genres").click()  # beyond the first chips
            page.locator(f'.chip[data-genre="{genre}"]').click()
            expect(page.locator(f'.chip[data-genre="{genre}"]')).to_have_attribute(
                "aria-pressed", "true"
            )
            expect(page.locator("#caption")).to_contain_text(f"genre: {genre}")
            page.wait_for_load_state("networkidle")
            rows = [
                r.locator(".genre").all_inner_texts() for r in results.all()
            ]  # every shown book's genres
            page.locator("#results .why-button").first.click()
            expect(page.locator("#why")).to_be_visible()
            expect(page.locator("#why table").first).to_be_visible()
            page.screenshot(path=str(out), full_page=True)
            why_text = page.locator("#why").inner_text()
            page.keyboard.press("Escape")  # keyboard closes it
            expect(page.locator("#why")).to_be_hidden()
            page.locator("#map-toggle").click()  # plotly.min.js served by bookvec itself
            expect(page.locator("#map .main-svg").first).to_be_visible(timeout=180_000)
            highlighted = page.evaluate("document.getElementById('map').data[1].x.length")
            page.set_viewport_size({"width": 390, "height": 800})  # a phone
            page.wait_for_timeout(1500)  # plotly redraws the map to the new width
            overflow = page.evaluate("document.documentElement.scrollWidth") - 390
            return {
                "genre": genre,
                "rows": rows,
                "caption": page.locator("#caption").inner_text(),
                "why": why_text,
                "highlighted": highlighted,
                "overflow": overflow,
                "errors": errors,
            }
        finally:
            browser.close()


def test_search_filter_and_why_in_chromium(trained_home, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    pytest.importorskip("playwright", reason="playwright is not installed (the dev extra)")
    import bookvec

    home = tmp_path / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    title = bookvec.load(home=home).titles[11]
    out = tmp_path / "serve.png"
    with Server(home) as server:
        seen = drive(server.url + "/", title, out)
    assert seen["errors"] == []
    assert seen["rows"] and all(seen["genre"] in genres for genres in seen["rows"]), seen
    assert "Shared pages" in seen["why"]
    assert seen["highlighted"] == len(seen["rows"])  # the results, marked on the map
    assert seen["overflow"] <= 0  # no sideways scrolling at phone width
    assert out.stat().st_size > 10_000
    keep = os.environ.get("BOOKVEC_SCREENSHOT")
    if keep:
        shutil.copyfile(out, keep)
