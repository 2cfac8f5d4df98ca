"""Incremental reindex on both backends: a planted set of added, moved, nudged (within the
tolerance), payload-changed and removed books gives exact counts, and the store ends holding
exactly the new set under the new model version."""

from __future__ import annotations

import numpy as np
import pytest

from bookvec.indexer import BookPoint
from bookvec.indexer.incremental import diff_points, reindex_incremental
from tests.indexer.test_store_congruence import BACKENDS, DIM, make_corpus, open_backend, reopen


def _planted(corpus):
    """New points: 0-19 moved far, 20-39 nudged (< tolerance), 40-49 payload changed, 50-59
    removed, 30 new books; the rest as they were."""
    rng = np.random.default_rng(3)
    points = []
    for i, point in enumerate(corpus.points()):
        vector = np.asarray(point.vector, dtype=np.float64)
        payload = dict(point.payload)
        if i < 20:
            vector = rng.standard_normal(DIM)
        elif i < 40:
            unit = vector / np.linalg.norm(vector)
            vector = unit + 0.004 * rng.standard_normal(DIM)  # L2 move ~0.03 < 0.05
        elif i < 50:
            payload["genres"] = ["changed"]
        elif i < 60:
            continue
        points.append(BookPoint(point.title, vector.astype(np.float32), payload))
    extra = make_corpus(30, seed=11, prefix="New")
    return points + extra.points()


@pytest.mark.parametrize("kind", BACKENDS)
def test_incremental_reindex_counts_and_result(kind, tmp_path):
    corpus = make_corpus(300)
    store = open_backend(kind, tmp_path)
    store.replace_all(corpus.points(), vector_size=DIM, model_version="model-a")
    reader = reopen(kind, store, tmp_path, read_only=True)  # another handle, open throughout
    new = _planted(corpus)

    changes = diff_points(store, new, tolerance=0.05)
    assert changes.counts() == {
        "added": 30,
        "moved": 20,
        "changed": 10,
        "unchanged": 300 - 60 + 20,  # the nudged ones keep their stored point
        "removed": 10,
        "written": 60,
        "tolerance": 0.05,
    }
    reindex_incremental(store, new, model_version="model-b", tolerance=0.05)
    info = store.info()
    assert info.model_version == "model-b" and info.points == 300 - 10 + 30
    assert sorted(store.titles()) == sorted(p.title for p in new)
    got = store.get([p.title for p in new], with_vectors=True)
    for i, point in enumerate(new):
        stored = np.asarray(got[point.title].vector)
        wanted = np.asarray(point.vector, dtype=np.float64)
        wanted /= np.linalg.norm(wanted)
        if 20 <= i < 40:  # nudged: the old vector stays, within the tolerance
            old = corpus.unit[i]
            np.testing.assert_allclose(stored, old, atol=1e-5)
            assert np.linalg.norm(stored - wanted) < 0.05
        else:
            np.testing.assert_allclose(stored, wanted, atol=1e-5)
    assert got[new[45].title].payload["genres"] == ["changed"]
    # running it again finds nothing to do
    again = diff_points(store, new, tolerance=0.05)
    assert (again.written, again.removed) == (0, 0)
    assert reader.info().model_version == "model-b"  # it follows to the new model
    np.testing.assert_allclose(
        reader.get([new[0].title], with_vectors=True)[new[0].title].vector,
        got[new[0].title].vector,
        atol=1e-6,
    )
    reader.close()
    store.close()
