"""Issue 12 through the CLI: `bookvec upsert` then `bookvec index` keeps every upserted book
(folded in again, counted apart), `delete` removes from the store and the catalogue, `index`
rebuilds a damaged store from the model plus the catalogue, the catalogue as a corpus for the
next training, and names that are not paths (collections, model ids).

Store-level cases and the kill -9 / write-error property: test_reliability_store_loss.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bookvec.model.bundle import open_bundle
from tests.conftest import invoke, one_error_line


def _new_books(bundle, n: int, path: Path, prefix: str = "Upserted Book") -> Path:
    names = bundle.link_names
    lines = [
        json.dumps(
            {
                "title": f"{prefix} {i}",
                "links": [names[(7 * i + k) % len(names)] for k in range(6)] + ["Not A Known Page"],
                "genres": ["fantasy"],
                "author": f"Writer {i}",
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _points(home: Path) -> int:
    return _json(invoke(["info", "--json"], home))["store"]["points"]


def _live(home: Path) -> Path:
    root = home / "store" / "books"
    return root / (root / "CURRENT").read_text().strip()


def test_upsert_then_index_keeps_every_upserted_book(mutable_home, tmp_path):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    trained = bundle.n_books
    assert _points(mutable_home) == trained
    new = _new_books(bundle, 25, tmp_path / "new.jsonl")
    assert _json(invoke(["upsert", str(new), "--json"], mutable_home))["added"] == 25
    before = _json(invoke(["search", "Upserted Book 3", "--json", "-k", "5"], mutable_home))

    report = _json(invoke(["index", "--json"], mutable_home))
    assert report["points"] == trained + 25
    assert (report["bundle_books"], report["upserted_books"]) == (trained, 25)
    assert report["unplaced_books"] == 0
    assert _points(mutable_home) == trained + 25
    # folded in again under the same model: the same neighbours, and the same file is unchanged
    after = _json(invoke(["search", "Upserted Book 3", "--json", "-k", "5"], mutable_home))
    assert [h["title"] for h in after] == [h["title"] for h in before]
    again = _json(invoke(["upsert", str(new), "--json"], mutable_home))
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 25)

    text = invoke(["index"], mutable_home)
    assert text.exit_code == 0, text.output
    assert f"({trained:,} trained, 25 upserted)" in text.stderr

    # delete removes from both: the next index does not bring it back
    assert _json(invoke(["delete", "Upserted Book 0", "--exact", "--json"], mutable_home))[
        "deleted"
    ]
    report = _json(invoke(["index", "--json"], mutable_home))
    assert (report["points"], report["upserted_books"]) == (trained + 24, 24)


def test_index_rebuilds_a_damaged_store_from_model_and_catalogue(mutable_home, tmp_path):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    new = _new_books(bundle, 10, tmp_path / "new.jsonl")
    assert invoke(["upsert", str(new)], mutable_home).exit_code == 0
    shutil.rmtree(_live(mutable_home) / "shard")  # the shard is gone
    one_error_line(invoke(["search", "Upserted Book 1"], mutable_home), "store damaged")
    one_error_line(invoke(["upsert", str(new)], mutable_home), "store damaged")  # no new store
    result = invoke(["index", "--json"], mutable_home)
    assert result.exit_code == 0, result.output
    assert "store damaged" in result.stderr and "rebuilding" in result.stderr
    assert json.loads(result.stdout)["upserted_books"] == 10
    assert _points(mutable_home) == bundle.n_books + 10


def test_index_works_when_current_names_a_missing_generation(mutable_home):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    live = _live(mutable_home)
    shutil.rmtree(live)
    one_error_line(invoke(["search", "anything"], mutable_home), "store damaged", "bookvec index")
    assert "store damaged" in invoke(["info"], mutable_home).stdout  # info shows it, exit 0
    assert invoke(["index"], mutable_home).exit_code == 0
    assert _points(mutable_home) == bundle.n_books


def test_a_missing_pointer_is_recovered_and_an_upsert_keeps_every_book(mutable_home, tmp_path):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    (mutable_home / "store" / "books" / "CURRENT").unlink()
    new = _new_books(bundle, 1, tmp_path / "one.jsonl")
    result = invoke(["upsert", str(new)], mutable_home)
    assert result.exit_code == 0 and "newest complete generation" in result.stderr
    assert _points(mutable_home) == bundle.n_books + 1  # the probe's case: 1 point of 1,411


def test_catalogue_as_a_training_corpus(mutable_home, tmp_path):
    from bookvec.library.actions import bundle_cleaning
    from bookvec.library.catalogue import raw_books
    from bookvec.library.store import open_store
    from bookvec.model.corpus.prepare import prepare_books

    bundle = open_bundle(None, models_dir=mutable_home / "models")
    new = _new_books(bundle, 12, tmp_path / "new.jsonl")
    assert invoke(["upsert", str(new)], mutable_home).exit_code == 0
    os.environ["BOOKVEC_HOME"] = str(mutable_home)
    try:
        store = open_store(None, None, "books", read_only=True)
        books = store.upserted()
        store.close()
    finally:
        del os.environ["BOOKVEC_HOME"]
    records = list(raw_books(books))
    assert [r.title for r in records] == sorted(f"Upserted Book {i}" for i in range(12))
    assert records[0].infobox["author"].startswith("Writer") and records[0].genres == ["fantasy"]
    assert "not a known page" in records[0].links  # kept for a model that may know it
    prepared = prepare_books(records, bundle_cleaning(bundle), source_sha256="x")
    assert prepared.books.height > 0
    assert set(prepared.books.get_column("title").to_list()) <= {r.title for r in records}


def test_collection_names_and_model_ids_are_not_paths(mutable_home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g-keep").mkdir()
    for value in (str(outside), "../x", "..", ".hidden", "a/b", "x" * 65, ""):
        result = invoke(["index", "--collection", value], mutable_home)
        if value == "":  # empty: the default collection
            continue
        one_error_line(result, "collection name", "not a valid name")
    result = invoke(["search", "x"], mutable_home, BOOKVEC_COLLECTION="../../etc")
    one_error_line(result, "collection name")
    assert (outside / "g-keep").is_dir()
    one_error_line(invoke(["index", "--model", "..\\..\\x"], mutable_home), "model id")
    # a model id is looked up under models/, never in the working directory
    current = (mutable_home / "models" / "CURRENT").read_text().strip()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        shutil.copytree(mutable_home / "models" / current, tmp_path / "decoy")
        one_error_line(invoke(["index", "--model", "decoy"], mutable_home), "no model bundle")
        assert invoke(["index", "--model", "./decoy"], mutable_home).exit_code == 0
    finally:
        os.chdir(cwd)


def test_the_vector_scorer_is_the_score_graph(trained_home):
    import numpy as np

    from bookvec.library.catalogue import VectorScorer
    from bookvec.model.runtime import Runtime

    bundle = open_bundle(None, models_dir=trained_home / "models")
    runtime = Runtime(bundle.path)
    scorer = VectorScorer(bundle, runtime)
    rng = np.random.default_rng(0)
    for book in rng.choice(bundle.n_books, 5, replace=False):
        links = rng.choice(bundle.n_links, 50, replace=False)
        expected = runtime.score(np.full(50, book), links)
        got = scorer.score(bundle.book_vectors[book], links)
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_links_and_score_know_upserted_books(mutable_home, tmp_path):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    new = _new_books(bundle, 3, tmp_path / "new.jsonl")
    assert invoke(["upsert", str(new)], mutable_home).exit_code == 0
    link = bundle.link_names[7]  # the first link of "Upserted Book 1"
    result = _json(invoke(["score", "Upserted Book 1", link, "--json"], mutable_home))
    assert result["upserted"] is True and 0 < result["probability"] < 1
    rows = _json(invoke(["links", "Upserted Book 1", "--json", "-k", "2000"], mutable_home))
    assert len(rows) == bundle.n_links
    assert sum(r["observed"] for r in rows) == 6
    by_title = {r["title"]: r["score"] for r in rows}
    assert abs(by_title[link] - result["probability"]) < 1e-6
    one_error_line(invoke(["score", "Nowhere Book Zzz", link], mutable_home), "Nowhere")
    trained = bundle.book_titles[0]
    why = _json(invoke(["explain", "Upserted Book 1", trained, "--json"], mutable_home))
    assert why["a"] == "Upserted Book 1" and why["a_upserted"] is True and "b_upserted" not in why
    assert -1 <= why["similarity"] <= 1 and why["pulling_links"]
    text = invoke(["explain", "Upserted Book 1", "Upserted Book 2"], mutable_home)
    assert text.exit_code == 0 and "Upserted Book 2 (upserted)" in text.stdout


def test_vectors_export_holds_the_upserted_books_marked(mutable_home, tmp_path):
    import polars as pl

    bundle = open_bundle(None, models_dir=mutable_home / "models")
    new = _new_books(bundle, 4, tmp_path / "new.jsonl")
    assert invoke(["upsert", str(new)], mutable_home).exit_code == 0
    out = tmp_path / "v.parquet"
    summary = _json(invoke(["vectors", str(out), "--json"], mutable_home))
    assert (summary["rows"], summary["upserted"]) == (bundle.n_books + 4, 4)
    frame = pl.read_parquet(out)
    upserted = frame.filter(pl.col("source") == "upserted")
    assert sorted(upserted.get_column("title").to_list()) == [
        f"Upserted Book {i}" for i in range(4)
    ]
    assert upserted.get_column("author").to_list()[0].startswith("Writer")


def test_prepare_with_extra_books_keeps_the_extra_version(small_corpus):
    from bookvec.model.corpus.prepare import prepare
    from bookvec.model.corpus.read import RawBook, read_books

    plain = prepare(small_corpus)
    first = next(iter(read_books(small_corpus)))
    links = plain.links.get_column("name").to_list()[:5]
    extra = [
        RawBook(title=first.title, infobox={"author": "Someone Else"}, links=links),
        RawBook(title="A Catalogue Book", infobox={}, links=links, genres=["fantasy"]),
    ]
    mixed = prepare(small_corpus, extra=extra)
    assert mixed.n_books == plain.n_books + 1
    assert mixed.source_sha256 != plain.source_sha256  # another run, never resumed as this one
    books = mixed.books.get_column("title").to_list()
    row = books.index(first.title)
    assert mixed.books.get_column("author")[row] == "Someone Else"
    held = sorted(int(k) for b, k in mixed.pairs if b == row)
    assert held == sorted(mixed.links.get_column("name").to_list().index(n) for n in links)


def test_train_include_upserted_learns_the_catalogue_books(mutable_home, small_corpus, tmp_path):
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    new = _new_books(bundle, 12, tmp_path / "new.jsonl")
    assert invoke(["upsert", str(new)], mutable_home).exit_code == 0
    args = ["train", "--data", str(small_corpus), "--epochs", "1", "--no-evaluate"]
    result = invoke([*args, "--include-upserted", "--json"], mutable_home)
    summary = _json(result)
    assert summary["upserted_included"] == 12
    assert "including 12 upserted books" in result.stderr
    trained = open_bundle(summary["model"], models_dir=mutable_home / "models")
    assert trained.n_books == bundle.n_books + 12
    assert {f"Upserted Book {i}" for i in range(12)} <= set(trained.book_titles)

    warm_args = ["train", "--warm-start", "--data", str(small_corpus), "--no-evaluate"]
    warm = _json(invoke([*warm_args, "--include-upserted", "--json"], mutable_home))
    assert warm["upserted_included"] == 12 and warm["books"] == bundle.n_books + 12


def test_train_include_upserted_without_a_store(tmp_path, small_corpus):
    home = tmp_path / "fresh"
    args = ["train", "--data", str(small_corpus), "--epochs", "1", "--no-evaluate"]
    summary = _json(invoke([*args, "--include-upserted", "--json"], home))
    assert summary["upserted_included"] == 0 and summary["books"] == 600


def test_map_and_projector_show_the_upserted_books_marked(mutable_home, tmp_path):
    import pytest

    from tests.model.analysis.test_maps import HAS_EXTRA

    if not HAS_EXTRA:
        pytest.skip("the maps extra is not installed")
    bundle = open_bundle(None, models_dir=mutable_home / "models")
    n = bundle.n_books
    first = invoke(["upsert", str(_new_books(bundle, 4, tmp_path / "a.jsonl"))], mutable_home)
    assert first.exit_code == 0, first.output
    out = tmp_path / "projector"
    summary = _json(invoke(["projector", str(out), "--json"], mutable_home))
    assert (summary["books"], summary["upserted"]) == (n + 4, 4)
    rows = [line.split("\t") for line in (out / "metadata.tsv").read_text().splitlines()]
    assert rows[0][-1] == "source" and len(rows) == n + 5
    marked = sorted(row[0] for row in rows[1:] if row[-1] == "upserted")
    assert marked == [f"Upserted Book {i}" for i in range(4)]
    assert {row[-1] for row in rows[1:]} == {"trained", "upserted"}

    page = tmp_path / "map.html"
    args = ["map", "--out", str(page), "--json", "--highlight", "Upserted Book 1", "-k", "2"]
    drawn = _json(invoke(args, mutable_home))
    assert (drawn["points"], drawn["upserted"], drawn["cached"]) == (n + 4, 4, True)
    assert drawn["highlights"][0]["title"] == "Upserted Book 1"
    html = page.read_text()
    assert "Upserted Book 1 (upserted)" in html and "upserted (4)" in html

    # one more upserted book: the cached coordinates are stale, never reused
    more = _new_books(bundle, 1, tmp_path / "b.jsonl", prefix="Later Book")
    assert invoke(["upsert", str(more)], mutable_home).exit_code == 0
    png = tmp_path / "map.png"
    again = _json(invoke(["map", "--out", str(png), "--json"], mutable_home))
    assert (again["points"], again["upserted"], again["cached"]) == (n + 5, 5, False)
    assert png.stat().st_size > 0
    caches = list((mutable_home / "models").glob("*/map_umap_books_seed0_u*.npy"))
    assert len(caches) == 1  # the earlier set's map was removed


def test_an_upsert_during_a_reindex_fails_fast_instead_of_being_left_out(mutable_home, tmp_path):
    """A reindex reads the catalogue and writes the new generation under one writer lock: an
    upsert by another process in between is refused (StoreLockedError), never silently lost."""
    import pytest

    import bookvec.library.catalogue as catalogue
    from bookvec.errors import StoreLockedError
    from bookvec.indexer import BookPoint, open_store
    from bookvec.settings import QdrantSettings

    bundle = open_bundle(None, models_dir=mutable_home / "models")
    store = open_store(QdrantSettings(), path=mutable_home / "store")
    other = open_store(QdrantSettings(), path=mutable_home / "store")
    real_gather = catalogue.gather
    refused = []

    def gather_then_race(*args, **kwargs):
        vector = [1.0] + [0.0] * (bundle.dim - 1)
        with pytest.raises(StoreLockedError):
            other.upsert([BookPoint("Racing Book", vector, {"source": "upsert", "links": "[]"})])
        refused.append(True)
        return real_gather(*args, **kwargs)

    catalogue.gather = gather_then_race
    try:
        done = catalogue.reindex(bundle, store)
    finally:
        catalogue.gather = real_gather
        store.close()
    assert refused and done.points == bundle.n_books
    assert "Racing Book" not in other.titles()  # refused, not half-stored
    other.upsert([BookPoint("Racing Book", [1.0] + [0.0] * (bundle.dim - 1), {"source": "upsert"})])
    assert "Racing Book" in other.titles()  # once the reindex is done, it goes through
    other.close()
