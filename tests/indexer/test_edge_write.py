"""The embedded store's write side: when the HNSW build leaves the calling process."""

from __future__ import annotations

import numpy as np
import qdrant_edge as edge

from bookvec.indexer import BookPoint, IndexOptions, edge_shard, open_store
from bookvec.indexer import edge as edge_store
from bookvec.settings import QdrantSettings

DIM = 8


def points(n: int, *, sparse: bool) -> list[BookPoint]:
    rng = np.random.default_rng(0)
    return [
        BookPoint(
            f"Book {i}",
            rng.standard_normal(DIM),
            {"genres": ["fantasy"]},
            sparse=([i % 50, 60 + i % 7], [1.0, 0.5]) if sparse else None,
        )
        for i in range(n)
    ]


def shard_with(tmp_path, n: int, *, sparse: bool, threshold_kb: int) -> edge.EdgeShard:
    options = IndexOptions(sparse="idf" if sparse else "none")
    shard = edge_shard.create_shard(
        tmp_path / "shard", DIM, options, indexing_kb=threshold_kb, full_scan_kb=threshold_kb
    )
    items = [
        edge_shard.Prepared(
            f"00000000-0000-0000-0000-{i:012d}", p.title, list(p.vector), {}, p.sparse
        )
        for i, p in enumerate(points(n, sparse=sparse))
    ]
    edge_shard._write(shard, [items], None)
    return shard


def test_unindexed_count_leaves_the_sparse_vectors_out(tmp_path):
    """Edge's indexed_vectors_count counts every stored sparse vector as indexed: with one per
    point, a plain segment looked fully indexed and the HNSW build never left the process."""
    shard = shard_with(tmp_path, 600, sparse=True, threshold_kb=1)
    try:
        assert shard.info().indexed_vectors_count == 600  # the sparse ones, no graph yet
        assert edge_shard.dense_indexed(shard) == 0
        assert edge_shard._needs_index(shard, 32)
        assert not edge_shard._needs_index(shard, 601)
        shard.optimize()
        assert edge_shard.dense_indexed(shard) == 600  # now in the graph
        assert not edge_shard._needs_index(shard, 32)
    finally:
        shard.close()


def test_unindexed_count_without_sparse_vectors(tmp_path):
    shard = shard_with(tmp_path, 300, sparse=False, threshold_kb=1)
    try:
        assert edge_shard.dense_indexed(shard) == 0 and edge_shard._needs_index(shard, 32)
        shard.optimize()
        assert edge_shard.dense_indexed(shard) == 300
    finally:
        shard.close()


def test_the_threshold_counts_sparse_vectors_when_they_weigh_more(tmp_path):
    """Edge indexes a segment once its dense OR its sparse vectors reach the threshold's
    bytes: with 20 entries a point (~240 bytes) before 8-d dense vectors' 32 bytes would."""
    shard = shard_with(tmp_path, 100, sparse=False, threshold_kb=1)
    try:
        assert edge_shard.index_threshold(shard, DIM, 10_240) == 320  # 32 bytes a point
    finally:
        shard.close()
    options = IndexOptions(sparse="idf")
    path = tmp_path / "wide"
    shard = edge_shard.create_shard(path, DIM, options, indexing_kb=10, full_scan_kb=10)
    try:
        rng = np.random.default_rng(1)
        items = [
            edge_shard.Prepared(
                f"00000000-0000-0000-0000-{i:012d}",
                f"B {i}",
                rng.standard_normal(DIM).tolist(),
                {},
                (sorted(rng.choice(1000, 20, replace=False).tolist()), [1.0] * 20),
            )
            for i in range(300)
        ]
        edge_shard._write(shard, [items], None)
        threshold = edge_shard.index_threshold(shard, DIM, 10_240)
        assert threshold == 10_240 // (edge_shard.SPARSE_ENTRY_BYTES * 20) == 42
        shard.optimize()  # Edge agrees: 300 points of 20 entries are past 10 KB
        assert edge_shard.dense_indexed(shard) == 300
    finally:
        shard.close()


def test_a_build_past_the_threshold_is_optimized_in_a_child(tmp_path, monkeypatch):
    """Sparse store, above the (lowered) threshold: the graph is built by the child process,
    the store's info counts dense vectors in the graph, and searches find the points."""
    monkeypatch.setattr(edge_store, "INDEXING_THRESHOLD_KB", 1)  # 32 8-d points
    children = []
    real = edge_shard._optimize_in_child
    monkeypatch.setattr(
        edge_shard,
        "_optimize_in_child",
        lambda path, in_place: children.append(path) or real(path, in_place=in_place),
    )
    data = points(500, sparse=True)
    with open_store(QdrantSettings(), path=tmp_path) as store:
        store.replace_all(
            data, vector_size=DIM, model_version="a", options=IndexOptions(sparse="idf")
        )
        assert len(children) == 1
        assert store.info().indexed_vectors == 500
        assert store.count() == 500
        hit = store.search(data[7].vector, limit=1)[0]
        assert hit.title == "Book 7"
        store.upsert(points(10, sparse=True)[:3])  # unchanged: nothing written, no build
        assert len(children) == 1


def test_unfiltered_fields_are_written_as_one_string_and_read_back():
    from bookvec.indexer.points import PACKED, edge_payload, stored_payload

    payload = {
        "title": "T",
        "genres": ["fantasy"],
        "author": "Zoë",
        "language": None,
        "publisher": "Gollancz",
        "content_hash": "ab" * 16,
        "links": '["a", "b"]',
        "year": 1999,
    }
    written = edge_payload(payload)
    assert set(written) == {"title", "genres", "year", PACKED}
    assert written["title"] == "T" and written["year"] == 1999  # what filters and listings read
    assert stored_payload(written) == payload
    assert payload["author"] == "Zoë"  # not changed in place
    odd = {"author": "a\ud800", "publisher": "P", "content_hash": "c"}  # a lone surrogate
    assert edge_payload(odd) == odd  # left as it was: JSON cannot carry it
    assert edge_payload({"author": 3, "publisher": "P"}) == {"author": 3, "publisher": "P"}


def test_packed_store_filters_reads_and_finds_upserts_unchanged(tmp_path):
    from bookvec.indexer import BookFilter, point_id
    from bookvec.indexer.points import PACKED

    data = [
        BookPoint(
            f"Book {i}",
            np.random.default_rng(i).standard_normal(DIM),
            {"genres": ["fantasy"], "author": "Ann Leckie", "publisher": "Orbit", "year": 2000 + i},
        )
        for i in range(5)
    ]
    with open_store(QdrantSettings(), path=tmp_path) as store:
        store.replace_all(data, vector_size=DIM, model_version="a")
        shard = store._require()[1]
        (raw,) = shard.retrieve([point_id("Book 1")], with_payload=True, with_vector=False)
        assert PACKED in raw.payload and "author" not in raw.payload
        got = store.get(["Book 1"])["Book 1"].payload
        assert got["author"] == "Ann Leckie" and got["publisher"] == "Orbit"
        assert len(got["content_hash"]) == 32
        by_author = BookFilter(author="ann leckie", year_from=2003)
        assert {h.title for h in store.search(data[0].vector, limit=9, filter=by_author)} == {
            "Book 3",
            "Book 4",
        }
        assert store.search(data[2].vector, limit=1)[0].payload["author"] == "Ann Leckie"
        report = store.upsert(data)  # content hashes read back from the packed string
        assert (report.added, report.updated, report.unchanged) == (0, 0, 5)
