"""docs/python.md runs: its ```python blocks, in order, in one namespace, on the real sample
(p15, trained here; skipped when absent) and on the synthetic corpus; its neighbours, hits and
scores equal what `bookvec search --json` and `bookvec score --json` print for the same
queries."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke

DOC = ROOT / "docs" / "python.md"
TITLES = re.compile(r"^BOOK, SERIES, PAGE, GENRE = .*$", re.MULTILINE)


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


def run_walkthrough(home: Path, monkeypatch, titles: str | None = None) -> dict:
    monkeypatch.setenv("BOOKVEC_HOME", str(home))
    code = blocks()
    assert len(code) >= 8 and TITLES.search(code[0])
    if titles is not None:
        code[0] = TITLES.sub(titles, code[0])
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        for number, block in enumerate(code, 1):
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)  # noqa: S102
    namespace["_printed"] = printed.getvalue()
    return namespace


def cli_json(home: Path, *args: str):
    result = invoke(list(args), home)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def check_against_the_cli(ns: dict, home: Path, tmp_path: Path) -> None:
    series, book, genre = ns["SERIES"], ns["BOOK"], ns["GENRE"]
    dense = cli_json(home, "search", series, "--mode", "dense", "--json")
    ours = [n.to_dict() for n in ns["neighbours"]]
    assert [r["title"] for r in ours] == [r["title"] for r in dense]
    assert [r["score"] for r in ours] == pytest.approx([r["score"] for r in dense], abs=2e-6)
    hits = cli_json(home, "search", book, "--genre", genre, "--limit", "5", "--json")
    assert ns["hits"].records() == hits
    path = tmp_path / "pairs.csv"
    ns["pairs"].write_csv(path)
    assert ns["scores"].records() == cli_json(home, "score", "--pairs", str(path), "--json")
    assert 0.0 <= ns["accuracy"] <= 1.0 and ns["report"].added == 1


@pytest.mark.slow
def test_walkthrough_on_p15(p15_path, tmp_path, monkeypatch):
    home = tmp_path / "home"
    for args in (["train", "--data", str(p15_path), "--seed", "0"], ["index"]):
        result = invoke(args, home)
        assert result.exit_code == 0, result.output
    ns = run_walkthrough(home, monkeypatch)
    check_against_the_cli(ns, home, tmp_path)
    assert ns["neighbours"][0].title == "The King of Attolia"  # the same series, as shown
    assert all(ns["GENRE"] in hit.genres for hit in ns["hits"])
    assert ns["accuracy"] > 0.4  # 5 genres: chance is about 0.2


def test_walkthrough_on_the_synthetic_corpus(mutable_home, tmp_path, monkeypatch):
    import bookvec

    m = bookvec.load(home=mutable_home)
    books = m.bundle.books.filter(m.bundle.books["genres"].list.len() > 0)
    book, series = books["title"][0], books["title"][1]
    genre, page = books["genres"][0][0], m.link_names[0]
    titles = f"BOOK, SERIES, PAGE, GENRE = {book!r}, {series!r}, {page!r}, {genre!r}"
    ns = run_walkthrough(mutable_home, monkeypatch, titles)
    check_against_the_cli(ns, mutable_home, tmp_path)
    assert ns["accuracy"] > 0.4  # planted genres: the vectors tell them apart
