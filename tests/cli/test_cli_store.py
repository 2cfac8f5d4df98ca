"""The store commands end to end on a home of their own: `bookvec index` with scale options,
`bookvec delete`, and `bookvec upsert` streaming more books than one batch holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import invoke


@pytest.fixture(scope="module")
def home(trained_home, tmp_path_factory) -> Path:
    """The trained model of `trained_home` (not its store: these tests change the store)."""
    home = tmp_path_factory.mktemp("store-home")
    shutil.copytree(trained_home / "models", home / "models")
    result = invoke(["index"], home)
    assert result.exit_code == 0, result.output
    return home


def run(home: Path, *args: str, input: str | None = None) -> dict:
    result = invoke([*args, "--json"], home, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def titles(home: Path) -> list[str]:
    from bookvec.indexer import open_store
    from bookvec.settings import QdrantSettings

    store = open_store(QdrantSettings(), path=home / "store", read_only=True)
    try:
        return store.titles()
    finally:
        store.close()


def model_links(home: Path, n: int = 40) -> list[str]:
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=home / "models").link_names[:n]


def test_index_options_are_stored_with_the_collection(home):
    defaults = run(home, "index")
    assert defaults["index"] == {
        "hnsw_m": 16,
        "hnsw_ef_construct": 100,
        "hnsw_ef": 128,
        "quantization": "none",
        "sparse": "dot",  # coherent weights: rows normalised, no store IDF
        "sparse_weighting": "coherent",
    }
    assert (defaults["shards"], defaults["replicas"]) == (1, 1)
    tuned = run(
        home,
        *("index", "--hnsw-m", "32", "--hnsw-ef-construct", "64", "--hnsw-ef", "64"),
        *("--quantization", "int8"),
    )
    assert tuned["index"]["hnsw_m"] == 32 and tuned["index"]["hnsw_ef"] == 64
    assert tuned["index"]["hnsw_ef_construct"] == 64
    assert tuned["index"]["quantization"] == "int8"
    assert tuned["points"] == defaults["points"]
    hits = json.loads(invoke(["search", titles(home)[0], "--json"], home).stdout)
    assert len(hits) == 10  # searches run with the stored settings
    run(home, "index")  # back to the defaults for the other tests


def test_cli_defaults_match_the_library():
    from bookvec.cli import index
    from bookvec.indexer import IndexOptions
    from bookvec.sparse import DEFAULT_WEIGHTING

    assert (index.DEFAULT_HNSW_M, index.DEFAULT_HNSW_EF_CONSTRUCT, index.DEFAULT_HNSW_EF) == (
        IndexOptions().hnsw_m,
        IndexOptions().hnsw_ef_construct,
        IndexOptions().hnsw_ef,
    )
    assert index.DEFAULT_WEIGHTING == DEFAULT_WEIGHTING


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shards", "2"], "BOOKVEC_QDRANT_URL"),
        (["--replicas", "2"], "BOOKVEC_QDRANT_URL"),
        (["--quantization", "int4"], "none or int8"),
    ],
)
def test_index_refuses_what_the_embedded_store_cannot_do(home, args, message):
    result = invoke(["index", *args], home)
    assert result.exit_code == 1
    assert message in result.output


def test_delete_resolves_titles_and_reports(home):
    everything = titles(home)
    first, second = next(t for t in everything if t != t.lower()), everything[-1]
    preview = run(home, "delete", first.lower(), "--dry-run")
    assert preview["titles"] == [first] and preview["deleted"] == 1
    assert first in titles(home)  # a dry run removes nothing
    exact = invoke(["delete", first.lower(), "--exact"], home)
    assert exact.exit_code == 1 and first in titles(home)
    done = run(home, "delete", first.lower(), second)
    assert done["titles"] == [first, second]
    assert done["deleted"] == 2 and done["remaining"] == len(everything) - 2
    assert first not in titles(home) and second not in titles(home)
    missing = invoke(["delete", "No Such Book At All"], home)
    assert missing.exit_code == 1 and "unknown book" in missing.output
    run(home, "index")  # restore


def test_streaming_upsert_of_more_books_than_a_batch(home, tmp_path):
    from bookvec.library.upserting import BATCH

    links = model_links(home)
    n = BATCH + 150
    path = tmp_path / "many.jsonl"
    rows = [
        {"title": f"Streamed Book {i}", "links": links[i % 7 :: 5][:6], "genres": ["fantasy"]}
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    before = len(titles(home))

    dry = run(home, "upsert", str(path), "--dry-run")
    assert (dry["added"], dry["updated"], dry["unchanged"], dry["dry_run"]) == (n, 0, 0, True)
    assert len(titles(home)) == before

    first = run(home, "upsert", str(path))
    assert (first["added"], first["updated"], first["unchanged"]) == (n, 0, 0)
    assert len(titles(home)) == before + n

    rows[5]["genres"] = ["horror"]
    text = "\n".join(json.dumps(row) for row in rows) + "\n"
    again = run(home, "upsert", "-", input=text)  # stdin, one book changed
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 1, n - 1)
    search = ["search", "Streamed Book 6", "-g", "horror", "--limit", "1000", "--json"]
    hits = json.loads(invoke(search, home).stdout)
    assert "Streamed Book 5" in [h["title"] for h in hits]
    assert all("horror" in h["genres"] for h in hits)
    run(home, "index")  # restore


def test_upsert_reads_the_input_lazily(home, monkeypatch):
    """Books are folded in one batch at a time, not all read first."""
    from bookvec.library import upserting as command

    seen: list[int] = []
    links = model_links(home)

    class Book:
        def __init__(self, i: int) -> None:
            self.title, self.links, self.line = f"Lazy {i}", links[:5], i

    def books():
        for i in range(25):
            seen.append(i)
            yield Book(i)

    def fold(chunk, bundle, runtime, weights=None):
        from bookvec.library.actions import FoldInResult

        return FoldInResult(points=[f"point of {book.title}" for book in chunk])

    monkeypatch.setattr("bookvec.library.actions.fold_in_books", fold)
    stream = command.folded_points(books(), None, None, [], lambda n: None, batch=10)
    assert next(stream) == "point of Lazy 0"
    assert len(seen) == 10  # the first batch only


def test_upsert_writes_the_sparse_vector_of_the_links(home, tmp_path):
    """An upserted book carries its links as a sparse vector (weighted with the bundle's
    IDF): a sparse search from it finds the books that share its pages."""
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=home / "models")
    pairs = bundle.pairs
    book = int(pairs[0, 0])
    mine = [bundle.link_names[k] for k in pairs[pairs[:, 0] == book, 1]]
    path = tmp_path / "sparse.jsonl"
    path.write_text(json.dumps({"title": "Sparse Newcomer", "links": mine}) + "\n")
    assert run(home, "upsert", str(path))["added"] == 1
    args = ["search", "Sparse Newcomer", "--mode", "sparse", "--json", "-k", "10", "--exact"]
    hits = json.loads(invoke(args, home).stdout)
    assert bundle.book_titles[book] in [hit["title"] for hit in hits]  # the same pages
    index = bundle.book_index
    for hit in hits:  # and nothing that shares no page with it
        theirs = {bundle.link_names[k] for k in pairs[pairs[:, 0] == index[hit["title"]], 1]}
        assert theirs & set(mine)
    run(home, "delete", "Sparse Newcomer")


def test_info_says_how_searches_use_the_graph():
    from bookvec.cli.info import _hnsw

    assert _hnsw({"hnsw_ef": 128, "indexed_vectors": 0}) == "no graph yet: every search is exact"
    measured = {
        "ef": 256,
        "target": 0.99,
        "recall_at_10": 0.9905,
        "filtered_recall_at_10": 0.9955,
        "queries": 200,
    }
    line = _hnsw({"hnsw_ef": 256, "indexed_vectors": 370_200, "hnsw_calibration": measured})
    assert line == (
        "hnsw_ef 256: recall@10 0.9905, genre-filtered 0.9955 on 200 books (target 0.99)"
    )
    measured["filtered_search"] = "acorn"
    line = _hnsw({"hnsw_ef": 256, "indexed_vectors": 370_200, "hnsw_calibration": measured})
    assert line.endswith("(target 0.99); filtered searches: acorn")
    assert _hnsw({"hnsw_ef": 64, "indexed_vectors": 10, "hnsw_calibration": None}) == "hnsw_ef 64"
    assert _hnsw({"error": "no store"}) is None
