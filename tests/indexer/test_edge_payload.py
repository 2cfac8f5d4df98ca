"""The embedded store writes a one-string keyword list as that string (qdrant-edge-py converts
a list for several strings' price; issue 15, item 3): filters match as before, every reader
gets lists back, and a store written with lists (before this) reads and filters the same."""

from __future__ import annotations

import numpy as np
import qdrant_edge as edge

from bookvec.indexer import BookFilter, BookPoint, point_id
from bookvec.indexer.points import SCALAR_LISTS, edge_payload, stored_payload
from tests.indexer.test_store_congruence import DIM, MODEL, open_backend

BOOKS = [  # title, genres, authors: one, two and no values
    ("Solo", ["fantasy"], ["Ann Leckie"]),
    ("Pair", ["fantasy", "crime"], ["Ann Leckie", "Bo Sun"]),
    ("Bare", [], []),
]


def points() -> list[BookPoint]:
    rng = np.random.default_rng(5)
    return [
        BookPoint(title, rng.standard_normal(DIM), {"genres": g, "authors": a, "country": "France"})
        for title, g, a in BOOKS
    ]


def test_edge_payload_round_trip() -> None:
    payload = {"genres": ["fantasy"], "authors": ["A", "B"], "author_keys": [], "year": 1}
    written = edge_payload(payload)
    assert written == {"genres": "fantasy", "authors": ["A", "B"], "author_keys": [], "year": 1}
    assert payload["genres"] == ["fantasy"]  # not changed in place
    assert stored_payload(written) == payload
    assert edge_payload({"genres": ["a", "b"]}) == {"genres": ["a", "b"]}
    assert edge_payload({"genres": [3]}) == {"genres": [3]}  # only a string is unwrapped
    assert stored_payload(None) == {}


def _raw(store, title: str) -> dict:
    shard = store._require()[1]
    (rec,) = shard.retrieve([point_id(title)], with_payload=True, with_vector=False)
    return dict(rec.payload)


def test_edge_store_writes_singletons_and_reads_lists(tmp_path) -> None:
    store = open_backend("edge", tmp_path)
    try:
        store.replace_all(points(), vector_size=DIM, model_version=MODEL)
        raw = _raw(store, "Solo")
        assert raw["genres"] == "fantasy" and raw["authors"] == "Ann Leckie"
        assert raw["author_keys"] == "ann leckie"
        assert _raw(store, "Pair")["genres"] == ["fantasy", "crime"]
        got = store.get(["Solo", "Pair", "Bare"])
        assert got["Solo"].payload["genres"] == ["fantasy"]
        assert got["Solo"].payload["authors"] == ["Ann Leckie"]
        assert got["Solo"].payload["author_keys"] == ["ann leckie"]
        assert got["Bare"].payload["genres"] == [] and got["Bare"].payload["authors"] == []
        hits = store.search(np.ones(DIM), limit=5, filter=BookFilter(genres_any=("fantasy",)))
        assert {h.title for h in hits} == {"Solo", "Pair"}
        assert all(isinstance(h.payload[k], list) for h in hits for k in SCALAR_LISTS)
        both = BookFilter(genres_all=("fantasy", "crime"))
        assert {h.title for h in store.search(np.ones(DIM), limit=5, filter=both)} == {"Pair"}
        by_author = BookFilter(author="ann leckie")
        assert {h.title for h in store.search(np.ones(DIM), limit=5, filter=by_author)} == {
            "Solo",
            "Pair",
        }
        assert store.count(BookFilter(genres_any=("crime",))) == 1
    finally:
        store.close()


def test_store_written_with_lists_reads_the_same(tmp_path) -> None:
    """A shard whose payloads hold one-element lists (as bookvec wrote them before) filters
    and reads exactly as one written now."""
    store = open_backend("edge", tmp_path)
    try:
        store.replace_all(points(), vector_size=DIM, model_version=MODEL)
        shard = store._require()[1]
        pid = point_id("Solo")
        old = {**_raw(store, "Solo"), "genres": ["fantasy"], "authors": ["Ann Leckie"]}
        old["author_keys"] = ["ann leckie"]
        shard.update(edge.UpdateOperation.set_payload([pid], old))
        assert _raw(store, "Solo")["genres"] == ["fantasy"]
        assert store.get(["Solo"])["Solo"].payload["authors"] == ["Ann Leckie"]
        hits = store.search(np.ones(DIM), limit=5, filter=BookFilter(author="Ann Leckie"))
        assert {h.title for h in hits} == {"Solo", "Pair"}
    finally:
        store.close()


def test_every_search_mode_reads_lists(tmp_path) -> None:
    """Hybrid search fetches the winners' payloads itself (edge_read): lists there too."""
    from bookvec.indexer import IndexOptions

    store = open_backend("edge", tmp_path)
    try:
        with_links = [
            BookPoint(p.title, p.vector, p.payload, sparse=([0, i + 1], [1.0, 1.0]))
            for i, p in enumerate(points())
        ]
        options = IndexOptions(sparse="idf", sparse_weighting="bm25")
        store.replace_all(with_links, vector_size=DIM, model_version=MODEL, options=options)
        for mode in ("dense", "sparse", "hybrid"):
            found = store.search_like("Pair", limit=5, mode=mode)
            assert {h.title for h in found} == {"Solo", "Bare"}, mode
            solo = next(h for h in found if h.title == "Solo")
            assert solo.payload["genres"] == ["fantasy"], mode
            assert solo.payload["authors"] == ["Ann Leckie"], mode
    finally:
        store.close()
