"""The embedded store chooses its hnsw_ef by measured recall once a write builds the graph."""

from __future__ import annotations

import numpy as np

from bookvec.indexer import BookFilter, BookPoint, IndexOptions, open_store
from bookvec.indexer.calibrate import LADDER
from bookvec.settings import QdrantSettings

DIM = 16
GENRES = ("fantasy", "crime", "romance", "poetry")


def clustered(n: int, start: int = 0, seed: int = 0) -> list[BookPoint]:
    """Books in 40 tight clusters (the shape that makes HNSW miss neighbours at a small ef),
    a genre each, drawn independently of the cluster."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((40, DIM))
    which = rng.integers(0, 40, n)
    vectors = centres[which] + 0.15 * rng.standard_normal((n, DIM))
    return [
        BookPoint(f"Book {start + i}", vectors[i], {"genres": [GENRES[(start + i) % 4]]})
        for i in range(n)
    ]


def exact_recall(store, data: list[BookPoint], queries: list[BookPoint], genre: bool) -> float:
    unit = np.array([p.vector / np.linalg.norm(p.vector) for p in data])
    titles = [p.title for p in data]
    found = total = 0
    for query in queries:
        keep = np.ones(len(data), bool)
        flt = None
        if genre:
            g = query.payload["genres"][0]
            keep = np.array([p.payload["genres"][0] == g for p in data])
            flt = BookFilter(genres_any=(g,))
        scores = np.where(keep, unit @ (query.vector / np.linalg.norm(query.vector)), -9)
        truth = {titles[i] for i in np.argsort(-scores)[:10]}
        got = {h.title for h in store.search(query.vector, limit=10, filter=flt)}
        found += len(truth & got)
        total += 10
    return found / total


def spread(n: int, start: int = 0, seed: int = 0) -> list[BookPoint]:
    """Books spread evenly over 16 dimensions: with a sparse graph (m 4, ef_construct 8) the
    first values of the ladder miss some of their neighbours."""
    vectors = np.random.default_rng(seed).standard_normal((n, DIM))
    return [
        BookPoint(f"Book {start + i}", vectors[i], {"genres": [GENRES[(start + i) % 4]]})
        for i in range(n)
    ]


def test_hnsw_ef_is_the_smallest_that_reaches_the_target(tmp_path, graph_everywhere):
    data = spread(3000)
    options = IndexOptions(recall_target=0.99, hnsw_m=4, hnsw_ef_construct=8)
    with open_store(QdrantSettings(), path=tmp_path) as store:
        store.replace_all(data, vector_size=DIM, model_version="a", options=options)
        info = store.info()
        found = info.calibration
        assert info.indexed_vectors == 3000
        assert found["reached"] and found["ef"] in LADDER[1:] and found["queries"] == 200
        assert found["recall_at_10"] >= 0.99 and found["filtered_recall_at_10"] >= 0.99
        assert info.index.hnsw_ef == found["ef"]  # searches use it
        # books outside the sample, checked against numpy: as good as measured, and better
        # than with the ladder's first value
        others = spread(150, start=10_000, seed=5)
        chosen = exact_recall(store, data, others, genre=False)
        assert chosen >= 0.98 and exact_recall(store, data, others, genre=True) >= 0.98
        store.set_hnsw_ef(LADDER[0])
        assert exact_recall(store, data, others, genre=False) < min(chosen, 0.99)


def test_a_low_target_takes_the_first_value_and_a_given_ef_is_kept(tmp_path, graph_everywhere):
    data = clustered(2000)
    with open_store(QdrantSettings(), path=tmp_path / "low") as store:
        store.replace_all(
            data, vector_size=DIM, model_version="a", options=IndexOptions(recall_target=0.5)
        )
        assert store.info().index.hnsw_ef == LADDER[0]
    with open_store(QdrantSettings(), path=tmp_path / "given") as store:
        store.replace_all(
            data, vector_size=DIM, model_version="a", options=IndexOptions(hnsw_ef=77)
        )
        info = store.info()
        assert info.index.hnsw_ef == 77 and info.calibration is None


def test_an_upsert_that_grows_the_graph_measures_again(tmp_path, graph_everywhere):
    with open_store(QdrantSettings(), path=tmp_path) as store:
        store.replace_all(  # below the threshold: no graph, the target waits for one
            clustered(10),
            vector_size=DIM,
            model_version="a",
            options=IndexOptions(recall_target=0.99),
        )
        assert store.info().calibration == {"target": 0.99}
        store.upsert(clustered(2000, start=100))  # the graph is built now
        first = store.info().calibration
        assert first["reached"] and first["target"] == 0.99
        store.upsert(clustered(3, start=50_000))  # too few for a build: kept as it was
        assert store.info().calibration == first
        assert store.count() == 2013


def test_small_stores_are_exact_and_say_so(tmp_path):
    with open_store(QdrantSettings(), path=tmp_path) as store:
        store.replace_all(
            clustered(300),
            vector_size=DIM,
            model_version="a",
            options=IndexOptions(recall_target=0.99),
        )
        info = store.info()
        assert info.indexed_vectors == 0 and info.index.hnsw_ef == 128
        assert info.calibration == {"target": 0.99}
