"""`bookvec map` and `bookvec projector` on a bundle with planted genres (the answer is known):
8 genres as Gaussian clusters on the sphere, written with BundleWriter (no training needed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from bookvec.model.analysis.reduce import planted_clusters
from bookvec.model.bundle import BundleWriter
from tests.conftest import invoke

GENRES = (
    "fantasy", "science fiction", "mystery", "romance", "horror", "biography", "history", "poetry",
)  # fmt: skip
N_BOOKS, N_LINKS, DIM = 600, 300, 50
ODD_TITLES = {5: "Tab\tand\nnewline", 6: "L'Étranger", 7: 'Say "hello" & <goodbye>'}
HAS_EXTRA = all(find_spec(name) for name in ("umap", "matplotlib", "plotly"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="the maps extra is not installed")


def build_planted_bundle(models_dir: Path, *, seed: int = 3) -> np.ndarray:
    """A committed bundle 'planted' under ``models_dir``; returns each book's planted genre."""
    import polars as pl

    rng = np.random.default_rng(seed)
    book_vectors, planted = planted_clusters(N_BOOKS, dim=DIM, n_genres=len(GENRES), seed=seed)
    link_vectors, _ = planted_clusters(N_LINKS, dim=DIM, n_genres=len(GENRES), seed=seed + 1)
    titles = [f"{GENRES[g].title()} Book {i:03d}" for i, g in enumerate(planted)]
    for i, title in ODD_TITLES.items():
        titles[i] = title
    genres = [
        [GENRES[g]] + ([GENRES[(g + 1 + int(rng.integers(7))) % 8]] if rng.random() < 0.2 else [])
        for g in planted
    ]
    books = pl.DataFrame(
        {
            "index": pl.Series(range(N_BOOKS), dtype=pl.Int32),
            "title": titles,
            "genres": genres,
            "author": [f"Author {i % 40}" for i in range(N_BOOKS)],
            "year": pl.Series([1900 + i % 120 if i % 7 else None for i in range(N_BOOKS)]),
        }
    )
    counts = sorted(rng.integers(4, 500, N_LINKS).tolist(), reverse=True)
    links = pl.DataFrame(
        {
            "index": pl.Series(range(N_LINKS), dtype=pl.Int32),
            "name": [f"link {i}" for i in range(N_LINKS)],
            "count": pl.Series(counts, dtype=pl.Int32),
        }
    )
    with BundleWriter(models_dir, model_id="planted") as writer:
        books.write_parquet(writer.path / "books.parquet")
        links.write_parquet(writer.path / "links.parquet")
        np.save(writer.path / "book_vectors.npy", book_vectors)
        np.save(writer.path / "link_vectors.npy", link_vectors)
        for name in ("score.onnx", "fold_in.onnx"):  # never loaded by maps
            (writer.path / name).write_bytes(b"not a model")
        pl.DataFrame(
            {"book": [], "link": []}, schema={"book": pl.Int32, "link": pl.Int32}
        ).write_parquet(writer.path / "pairs.parquet")
        np.save(writer.path / "held_out_pairs.npy", np.zeros((0, 2), dtype=np.int32))
        writer.commit(
            {
                "counts": {"books": N_BOOKS, "links": N_LINKS, "pairs": 0, "dim": DIM},
                "corpus": {"synthetic": True},
                "config": {},
            }
        )
    return planted


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("maps_home")
    build_planted_bundle(home / "models")
    return home


@pytest.fixture(scope="module")
def planted(home) -> tuple[np.ndarray, list[str]]:
    """Each book's planted genre (its first genre) and the titles, in bundle order."""
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle("planted", models_dir=home / "models")
    titles = bundle.book_titles
    genres = bundle.books.get_column("genres").to_list()
    return np.array([GENRES.index(g[0]) for g in genres]), titles


@pytest.fixture(scope="module")
def first_png(home, tmp_path_factory) -> dict:
    """The first map of the bundle: UMAP computed (numba JIT included), PNG drawn."""
    out = tmp_path_factory.mktemp("png") / "books.png"
    started = time.perf_counter()
    result = invoke(
        [
            "map", "--out", str(out), "--top-genres", "8", "--width", "900", "--height", "640",
            "--highlight", "fantasy book 002", "--highlight", "L'Étranger", "-k", "4", "--json",
        ],
        home,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {
        "out": out,
        "seconds": time.perf_counter() - started,
        "summary": json.loads(result.stdout),
    }


@needs_extra
def test_png_has_requested_size_and_a_colour_per_genre(first_png):
    from PIL import Image

    from bookvec.model.analysis.plots import PALETTE

    image = Image.open(first_png["out"]).convert("RGB")
    assert image.size == (900, 640)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) >= len(GENRES)
    for colour in PALETTE[: len(GENRES)]:  # every genre's colour is drawn somewhere
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=1) <= 12).sum() >= 20, colour
    assert [g["genre"] for g in first_png["summary"]["genres"]][:1] == ["fantasy"]


@needs_extra
def test_books_outside_the_top_genres_are_drawn_grey(first_png, home, tmp_path):
    from PIL import Image

    from bookvec.model.analysis.plots import OTHER_COLOUR, PALETTE

    out = tmp_path / "top3.png"
    result = invoke(["map", "--out", str(out), "--top-genres", "3", "--json"], home)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["genres"]) == 3
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).astype(int)

    def drawn(colour: str) -> int:
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(pixels - rgb).max(axis=1) <= 12).sum())

    assert drawn(OTHER_COLOUR) >= 20
    assert drawn(PALETTE[0]) >= 20 and drawn(PALETTE[5]) == 0


@needs_extra
def test_highlighted_books_neighbours_share_their_planted_genre(first_png, planted):
    labels, titles = planted
    index = {t: i for i, t in enumerate(titles)}
    highlights = first_png["summary"]["highlights"]
    assert [h["title"] for h in highlights] == ["Fantasy Book 002", "L'Étranger"]
    for h in highlights:
        assert len(h["neighbours"]) == 4
        assert h["title"] not in [n["title"] for n in h["neighbours"]]
        scores = [n["score"] for n in h["neighbours"]]
        assert scores == sorted(scores, reverse=True)
        assert {labels[index[n["title"]]] for n in h["neighbours"]} == {labels[index[h["title"]]]}


@needs_extra
def test_second_map_comes_from_the_cache(first_png, home, tmp_path):
    cache = home / "models" / "planted" / "map_umap_books_seed0.npy"
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    started = time.perf_counter()
    result = invoke(["map", "--out", str(tmp_path / "again.png"), "--json"], home)
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cached"] is True
    assert "cached" in result.stderr
    assert cache.stat().st_mtime_ns == stamp
    assert seconds < first_png["seconds"] / 2
    manifest = json.loads((home / "models" / "planted" / "manifest.json").read_text())
    assert cache.name not in manifest["files"]  # a cache, not part of the bundle


@needs_extra
def test_umap_separates_the_planted_genres(first_png, home, planted):
    from sklearn.metrics import silhouette_score

    labels, _ = planted
    coords = np.load(home / "models" / "planted" / "map_umap_books_seed0.npy")
    assert coords.shape == (N_BOOKS, 2) and np.isfinite(coords).all()
    assert silhouette_score(coords, labels) > 0.5


@pytest.fixture(scope="module")
def html_map(first_png, home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "books.html"
    result = invoke(["map", "--out", str(out), "--highlight", "Poetry Book 036"], home)
    assert result.exit_code == 0, result.output
    return out


@needs_extra
def test_html_holds_every_title_and_no_network_url(html_map, planted):
    _, titles = planted
    html = html_map.read_text(encoding="utf-8")
    for title in titles:
        assert any(form in html for form in _json_forms(title)), title
    assert not re.search(r"https?://", html, re.IGNORECASE)
    # the only URL-like strings left are XML namespace names (identifiers for createElementNS,
    # never fetched), kept as JS-escaped strings; every other URL of plotly.js is gone
    escaped = re.findall(r"https?:\\/\\/[^\s\"'`<>]*", html, re.IGNORECASE)
    assert escaped and all(re.fullmatch(r"http:\\/\\/www\.w3\.org/[\w./]*", u) for u in escaped)
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?//", html, re.IGNORECASE)
    assert not re.search(r"[\"'`(]//[a-z0-9-]+(\.[a-z0-9-]+)+/", html, re.IGNORECASE)
    assert "bookvec-search" in html and "Plotly.newPlot" in html


def _json_forms(title: str) -> set[str]:
    """The ways a title can sit in the figure's JSON: JSON-escaped, with or without a JSON
    encoder's HTML-safe \\u escapes of <, > and &."""
    forms = {json.dumps(title, ensure_ascii=a)[1:-1] for a in (True, False)}
    for char in "<>&":
        forms |= {form.replace(char, f"\\u{ord(char):04x}") for form in forms}
    return forms


@needs_extra
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_html_scripts_still_parse(html_map, tmp_path):
    """The rewritten plotly.js and the search box are valid JavaScript (node --check)."""
    html = html_map.read_text(encoding="utf-8")
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) >= 2
    for i, script in enumerate(scripts):
        path = tmp_path / f"script{i}.js"
        path.write_text(script, encoding="utf-8")
        result = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@needs_extra
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_opens_offline_in_headless_chromium(html_map, tmp_path):
    from PIL import Image

    base = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
    ]  # fmt: skip
    shot = tmp_path / "shot.png"
    url = html_map.as_uri()
    subprocess.run(
        [*base, "--window-size=1200,800", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file()
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # the plot was drawn, not a blank page
    # the search box finds a title from the URL (#find=...) and labels it on the map
    dom = subprocess.run(
        [*base, "--dump-dom", url + "#find=horror%20book%20016"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "scatterlayer" in dom
    assert 'class="annotation-text"' in dom and "Horror Book 016" in dom


@needs_extra
def test_links_map(first_png, home, tmp_path):
    from PIL import Image

    out = tmp_path / "links.png"
    args = ["map", "--links", "--out", str(out), "--width", "600", "--height", "400"]
    result = invoke([*args, "-H", "link 3", "--json"], home)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["kind"] == "links" and summary["points"] == N_LINKS
    assert summary["highlights"][0]["title"] == "link 3"
    assert Image.open(out).size == (600, 400)
    assert (home / "models" / "planted" / "map_umap_links_seed0.npy").is_file()


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


@needs_extra
def test_projector_files_match_the_bundle(first_png, home, tmp_path, planted):
    _, titles = planted
    out = tmp_path / "projector"
    result = invoke(["projector", str(out), "--json"], home)
    assert result.exit_code == 0, result.output
    vectors = _read_tsv(out / "vectors.tsv")
    assert len(vectors) == N_BOOKS and {len(row) for row in vectors} == {DIM}
    assert np.isfinite(np.array(vectors, dtype=float)).all()
    metadata = _read_tsv(out / "metadata.tsv")
    assert metadata[0] == ["title", "author", "genres", "year", "umap_x", "umap_y"]
    assert len(metadata) == N_BOOKS + 1 and {len(row) for row in metadata} == {6}
    assert metadata[1 + 5][0] == "Tab\\tand\\nnewline"  # escaped, still one cell, one row
    assert [row[0] for row in metadata[1:]][6:] == titles[6:]
    cached = np.load(home / "models" / "planted" / "map_umap_books_seed0.npy")
    assert np.allclose(np.array([row[4:] for row in metadata[1:]], dtype=float), cached, atol=1e-4)
    config = json.loads((out / "projector_config.json").read_text())
    (embedding,) = config["embeddings"]
    assert embedding["tensorShape"] == [N_BOOKS, DIM]
    assert embedding["tensorPath"] == "vectors.tsv"
    assert embedding["metadataPath"] == "metadata.tsv"
    assert "planted" in embedding["tensorName"]


@needs_extra
def test_projector_sample_genres_keeps_only_the_top_genres(first_png, home, tmp_path):
    from bookvec.model.analysis.reduce import top_genres
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle("planted", models_dir=home / "models")
    genres = bundle.books.get_column("genres").to_list()
    top = {name for name, _ in top_genres(genres, 3)}
    expected = sum(1 for g in genres if top & set(g))
    out = tmp_path / "sample"
    result = invoke(["projector", str(out), "--sample-genres", "3"], home)
    assert result.exit_code == 0, result.output
    metadata = _read_tsv(out / "metadata.tsv")
    assert len(metadata) == expected + 1 < N_BOOKS + 1
    assert all(top & set(row[2].split(", ")) for row in metadata[1:])
    assert len(_read_tsv(out / "vectors.tsv")) == expected
    config = json.loads((out / "projector_config.json").read_text())
    assert config["embeddings"][0]["tensorShape"] == [expected, DIM]


@pytest.mark.parametrize(
    ("module", "suffix", "method"),
    [("matplotlib", "png", "umap"), ("plotly", "html", "umap"), ("umap", "png", "umap"),
     ("openTSNE", "png", "tsne")],
)  # fmt: skip
def test_missing_extra_says_how_to_install_it(home, tmp_path, monkeypatch, module, suffix, method):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    out = tmp_path / f"map.{suffix}"
    result = invoke(["map", "--out", str(out), "--seed", "99", "--method", method], home)
    assert result.exit_code == 1
    assert "install it with: pip install 'bookvec[maps]'" in result.stderr
    assert not out.exists()
    assert not list((home / "models" / "planted").glob("map_*_seed99.npy"))


def test_importing_the_cli_does_not_import_the_extra():
    code = (
        "import sys, bookvec.cli.main; "
        "print(sorted(m for m in ('umap', 'matplotlib', 'plotly', 'numba', 'sklearn')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_map_refuses_an_unknown_format_or_title(home, tmp_path):
    result = invoke(["map", "--out", str(tmp_path / "map.svg")], home)
    assert result.exit_code == 1 and "end --out with .png or .html" in result.stderr
    result = invoke(["map", "--out", str(tmp_path / "map.png"), "-H", "Fantasy Bok 002x"], home)
    assert result.exit_code == 1 and "unknown book" in result.stderr


@needs_extra
def test_exact_knn_matches_brute_force():
    from bookvec.model.analysis.reduce import exact_knn

    vectors, _ = planted_clusters(700, n_genres=5, seed=1)
    idx, dist = exact_knn(vectors, 10, block=128)
    sims = vectors @ vectors.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    assert (idx == expected).all()
    assert np.allclose(dist, 1 - np.take_along_axis(sims, expected, axis=1), atol=1e-5)


@needs_extra
def test_tsne_also_separates_the_planted_genres():
    from sklearn.metrics import silhouette_score

    from bookvec.model.analysis.reduce import reduce_2d

    vectors, labels = planted_clusters(200, n_genres=4, seed=2)
    coords = reduce_2d(vectors, method="tsne", seed=0)
    assert coords.shape == (200, 2)
    assert silhouette_score(coords, labels) > 0.5


@needs_extra
def test_umap_is_seeded(first_png):
    from bookvec.model.analysis.reduce import reduce_2d

    vectors, _ = planted_clusters(200, n_genres=4, seed=2)
    first = reduce_2d(vectors, method="umap", seed=5)
    assert np.array_equal(first, reduce_2d(vectors, method="umap", seed=5))
    assert not np.array_equal(first, reduce_2d(vectors, method="umap", seed=6))


def test_projector_cells_neutralise_control_characters():
    from bookvec.model.analysis.plots import tsv_cell

    assert tsv_cell("a\tb\nc") == "a\\tb\\nc"
    assert tsv_cell("\x1b]0;owned\x07 x\x00\r\u202e") == "\\x1b]0;owned\\x07 x\\x00\\r\\u202e"
    assert tsv_cell(None) == "" and tsv_cell(1999) == "1999"
