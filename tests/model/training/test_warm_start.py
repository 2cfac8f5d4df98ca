"""Warm start: a planted genre block arriving with its own pages becomes its own neighbourhood,
the same seed gives the same vectors, another cleaning is refused, an interrupted warm start
leaves the current model and the store as they were, and `bookvec index` after it writes only
what changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bookvec.errors import ConfigError
from bookvec.model.bundle import current_model_id, open_bundle
from bookvec.model.corpus.prepare import CleaningConfig
from bookvec.model.training.pipeline import train_bundle
from tests.conftest import invoke, one_error_line

BLOCK_BOOKS, BLOCK_PAGES, SHARED = 40, 20, 10


def _block_records(block: int, rng: np.random.Generator) -> list[list]:
    """Books of genre ``block``: 8 of the block's own pages and 2 pages every genre shares."""
    records = []
    for i in range(BLOCK_BOOKS):
        own = rng.choice(BLOCK_PAGES, 8, replace=False)
        shared = rng.choice(SHARED, 2, replace=False)
        links = [f"Page {block}-{p}" for p in own] + [f"Shared {s}" for s in shared]
        infobox = {"genre": f"Genre {block}", "author": f"Author {block}-{i % 5}"}
        records.append([f"Book {block}-{i}", infobox, links])
    return records


def _write(path: Path, records: list[list]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    rng = np.random.default_rng(5)
    old = [r for b in range(3) for r in _block_records(b, rng)]
    new = old + _block_records(3, rng)
    models = root / "models"
    quiet = {"progress": False, "evaluate": False, "checkpoints": False, "models_dir": models}
    parent = train_bundle(_write(root / "old.ndjson", old), **quiet)
    new_path = _write(root / "new.ndjson", new)
    warm = train_bundle(new_path, warm_start=parent, **quiet)
    return {"new": new_path, "parent": parent, "warm": warm, "q": quiet}


def _block_share(bundle, titles: list[str], block: int) -> float:
    """Share of the 10 nearest books (by cosine, among all) of ``titles`` in ``block``."""
    vectors = np.asarray(bundle.book_vectors, dtype=np.float64)
    rows = [bundle.book_index[t] for t in titles]
    scores = vectors[rows] @ vectors.T
    scores[np.arange(len(rows)), rows] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :10]
    names = bundle.book_titles
    return float(np.mean([[names[j].startswith(f"Book {block}-") for j in r] for r in top]))


def test_new_genre_block_lands_as_its_own_neighbourhood(blocks):
    warm = blocks["warm"]
    changes = warm.manifest.warm_start
    assert changes["parent"] == blocks["parent"].model_id
    assert changes["books"] == {
        "kept": 3 * BLOCK_BOOKS,
        "changed": 0,
        "added": BLOCK_BOOKS,
        "removed": 0,
        "added_without_known_links": 0,
    }
    assert changes["links"]["added"] == BLOCK_PAGES  # the new block's own pages
    assert changes["links"]["removed"] == 0
    new_titles = [f"Book 3-{i}" for i in range(BLOCK_BOOKS)]
    assert _block_share(warm, new_titles, 3) >= 0.9
    for block in range(3):  # the old neighbourhoods stay
        old_titles = [f"Book {block}-{i}" for i in range(BLOCK_BOOKS)]
        assert _block_share(warm, old_titles, block) >= 0.9


def test_same_seed_same_warm_started_vectors(blocks):
    first = blocks["warm"]
    second = train_bundle(blocks["new"], warm_start=blocks["parent"].path, **blocks["q"])
    for name in ("book_embeddings_raw.npy", "link_embeddings_raw.npy"):
        assert np.array_equal(np.load(first.file(name)), np.load(second.file(name)))


def test_warm_start_from_other_cleaning_is_refused(blocks):
    with pytest.raises(ConfigError, match=r"other cleaning settings \(min_books 4 -> 2\)"):
        train_bundle(
            blocks["new"],
            warm_start=blocks["parent"],
            cleaning=CleaningConfig(min_books=2),
            **blocks["q"],
        )


def test_cli_refuses_other_cleaning(mutable_home, small_corpus):
    result = invoke(
        ["train", "--warm-start", "--data", str(small_corpus), "--min-books", "2"], mutable_home
    )
    one_error_line(result, "cannot warm-start", "min_books 4 -> 2")


def test_interrupted_warm_start_leaves_model_and_store_untouched(mutable_home, small_corpus):
    models = mutable_home / "models"
    before = current_model_id(models)
    bundles_before = sorted(p.name for p in models.iterdir())
    store_before = json.loads(invoke(["info", "--json"], mutable_home).stdout)["store"]

    def stop(row: dict) -> None:
        raise KeyboardInterrupt  # as Ctrl-C after the first epoch

    with pytest.raises(KeyboardInterrupt):
        train_bundle(
            small_corpus,
            warm_start=open_bundle(None, models_dir=models),
            models_dir=models,
            progress=False,
            on_epoch=stop,
        )
    assert current_model_id(models) == before
    assert sorted(p.name for p in models.iterdir()) == bundles_before  # no half bundle left
    assert json.loads(invoke(["info", "--json"], mutable_home).stdout)["store"] == store_before


def test_cli_warm_start_then_incremental_index(mutable_home, small_corpus, tmp_path):
    lines = small_corpus.read_text(encoding="utf-8").splitlines()
    dropped = [json.loads(line)[0] for line in lines[:20]]
    extra = []
    for i, line in enumerate(lines[20:40]):  # 20 new books: copies of known ones, renamed
        record = json.loads(line)
        record[0] = f"Arrived Book {i}"
        extra.append(json.dumps(record))
    changed = tmp_path / "changed.ndjson"
    changed.write_text("\n".join(lines[20:] + extra) + "\n", encoding="utf-8")

    result = invoke(["train", "--warm-start", "--data", str(changed), "--json"], mutable_home)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["warm_start"]["books"]["added"] == 20
    assert summary["warm_start"]["books"]["removed"] == 20

    result = invoke(["index", "--json"], mutable_home)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    counts = report["incremental"]
    assert counts["added"] == 20 and counts["removed"] == 20
    assert (
        counts["added"] + counts["moved"] + counts["changed"] + counts["unchanged"]
        == (summary["books"])
    )
    assert (
        counts["added"]
        <= counts["written"]
        <= counts["added"] + counts["moved"] + (counts["changed"])
    )
    assert report["points"] == summary["books"]
    info = json.loads(invoke(["info", "--json"], mutable_home).stdout)
    assert info["store"]["points"] == summary["books"]
    result = invoke(["search", "Arrived Book 0", "--limit", "50", "--json"], mutable_home)
    assert result.exit_code == 0, result.output
    hits = {hit["title"] for hit in json.loads(result.stdout)}
    assert len(hits) == 50 and not set(dropped) & hits


def test_unchanged_rows_stay_as_the_parent_had_them(blocks):
    """The default schedule trains only new and changed rows: the old blocks' books (none
    changed) and pages keep their parent rows bit for bit; the bundle records the schedule."""
    parent, warm = blocks["parent"], blocks["warm"]
    books = [np.load(b.file("book_embeddings_raw.npy")) for b in (parent, warm)]
    links = [np.load(b.file("link_embeddings_raw.npy")) for b in (parent, warm)]
    for title, row in parent.book_index.items():
        assert np.array_equal(books[1][warm.book_index[title]], books[0][row])
    for name, row in parent.link_index.items():
        assert np.array_equal(links[1][warm.link_index[name]], links[0][row])
    schedule = warm.manifest.warm_start["schedule"]
    assert schedule["warm_rest_lr"] == 0 and schedule["warm_stop_on"] == "new"
    assert "val_auc_new" in warm.manifest.history[0]
