"""The batch paths of scoring and hybrid search give what the row-by-row ones gave: rounding
(``round6``), the formula fusion done in Python (``hybrid.fuse``) and ``Model.score`` over a
list of tuples (checked for the whole batch) against the same pairs as lists (row by row)."""

from __future__ import annotations

import numpy as np
import pytest

import bookvec
from bookvec.errors import InputError
from bookvec.indexer import hybrid
from bookvec.library.pairs import round6


def test_round6_is_round_to_six_places():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.random(200_000).astype(np.float32),
            # every value a hair either side of a half of 1e-6 (where rint could differ)
            (np.arange(100_000) / 1e6 + 5e-7).astype(np.float32),
            np.array([0.0, 1.0, 5e-7, 1.5e-6, 0.9999995], dtype=np.float32),
        ]
    )
    assert round6(values) == [round(float(v), 6) for v in values]


def test_fuse_is_the_formula_dense_plus_weighted_sparse():
    spec = hybrid.Hybrid(sparse_weight=0.5, normalise=False)
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    sparse = {"c": 2.0, "d": 1.0, "e": 1.0}
    best = hybrid.fuse([dense, sparse], spec, limit=4)
    # c: 0.1 + 1.0; a: 0.9; d, e: 0.5 (a side that did not return a point counts 0), tied:
    # the order they came in; b (0.5) is also tied, and came first
    assert [k for k, _ in best] == ["c", "a", "b", "d"]
    assert best[0][1] == float(np.float32(0.1 + 0.5 * 2.0))
    assert hybrid.fuse([{}, {}], spec, limit=3) == []


def test_the_normalised_formula_divides_sparse_by_its_best_score():
    spec = hybrid.Hybrid(sparse_weight=0.5)  # normalised: dense + 0.5 * sparse / 2.0
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    sparse = {"c": 2.0, "d": 1.0, "e": 1.0}
    best = hybrid.fuse([dense, sparse], spec, limit=5)
    assert [k for k, _ in best] == ["a", "c", "b", "d", "e"]
    assert best[1][1] == float(np.float32(0.1 + 0.5 * 2.0 / 2.0))
    assert best[3][1] == float(np.float32(0.25))
    # the weight is scale-free: sparse scores ten times larger give the same ranking
    tenfold = {k: 10 * v for k, v in sparse.items()}
    assert [k for k, _ in hybrid.fuse([dense, tenfold], spec, limit=5)] == [k for k, _ in best]
    assert spec.formula_weight(None) == 0.5 and spec.formula_weight(0.0) == 0.5


def test_a_point_only_the_sparse_side_found_keeps_its_cosine():
    spec = hybrid.Hybrid(sparse_weight=0.5)  # dense + 0.5 * sparse / 2.0
    query = [1.0, 0.0]
    dense = {"a": 0.9, "b": 0.6, "f": 0.3}
    sparse = {"c": 2.0, "d": 0.4, "e": 0.1}
    # unit vectors whose cosines stay below the dense side's lowest (0.3), as a point the
    # dense side did not return has
    stored = {"c": [0.28, 0.96], "d": [0.2, 0.9797958971], "e": [0.1, 0.9949874371]}
    asked: list[list[str]] = []

    def vectors(keys):
        asked.append(keys)
        return {k: stored[k] for k in keys}

    best = hybrid.fuse([dense, sparse], spec, 2, query, vectors)
    # c: 0.28 + 0.5 passes b; d (at most 0.3 + 0.1) and e (0.3 + 0.025) cannot reach b's 0.6,
    # so only c's vector is asked for
    assert best == [("a", float(np.float32(0.9))), ("c", float(np.float32(0.28 + 0.5)))]
    assert asked == [["c"]]
    everything = hybrid.fuse([dense, sparse], spec, 6, query, vectors)  # no bar below 6 known
    assert asked[-1] == ["c", "d", "e"] and [k for k, _ in everything][:2] == ["a", "c"]
    assert hybrid.fuse([dense, sparse], spec, 2)[1] == ("b", float(np.float32(0.6)))  # no query


@pytest.fixture(scope="module")
def model(trained_home):
    return bookvec.load(home=trained_home)


def test_batch_scoring_matches_row_by_row(model):
    titles, links = model.titles, model.link_names
    pairs = [(titles[i % len(titles)], links[(i * 7) % len(links)]) for i in range(500)]
    pairs[3] = (titles[3].upper() + "!", links[5])  # a loose title: resolved row by row
    batch = model.score(pairs)
    rows = model.score([list(p) for p in pairs])  # not tuples: the row-by-row path
    assert batch == rows
    assert batch[3].book == titles[3] and len(batch) == 500
    expected = model.runtime.score(
        np.asarray([model.book_index(b) for b, _ in pairs]),
        np.asarray([model.link_index(k) for _, k in pairs]),
    )
    assert batch.probabilities == [round(float(p), 6) for p in expected]


def test_batch_scoring_reports_the_first_bad_row_or_skips_them(model):
    titles, links = model.titles, model.link_names
    pairs = [(titles[0], links[0]), (titles[1], "no such page at all"), ("No Such Xq", links[1])]
    with pytest.raises(InputError) as first:
        model.score(pairs, source="pairs.csv")
    assert first.value.line == 2
    kept = model.score(pairs, skip_invalid=True)
    assert [s.book for s in kept] == [titles[0]]
    assert [line for line, _ in kept.rejects] == [2, 3]
    assert kept == model.score([list(p) for p in pairs], skip_invalid=True)
