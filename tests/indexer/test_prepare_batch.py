"""prepare_batch checks a batch's sparse vectors in a few numpy calls: the same points, and the
same first error, as preparing each point alone (`prepare`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookvec.indexer import BookPoint
from bookvec.indexer.points import prepare, prepare_batch

DIM = 4
VECTOR = np.ones(DIM, dtype=np.float32)

index = st.one_of(st.integers(-2, 40), st.floats(0, 40), st.sampled_from([np.int64(3), True]))
value = st.one_of(
    st.floats(-5, 5),
    st.integers(-3, 3),
    st.sampled_from([float("nan"), float("inf"), np.float32(0.25), "0.5"]),
)
pair = st.integers(0, 6).flatmap(
    lambda n: st.tuples(
        st.lists(index, min_size=n, max_size=n),
        st.lists(value, min_size=max(0, n - 1), max_size=n + 1),
    )
)
sparse = st.one_of(st.none(), pair)


def outcome(fn):
    try:
        return "ok", fn()
    except Exception as exc:  # noqa: BLE001 - the kind and message are what is compared
        return type(exc).__name__, str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(sparse, min_size=1, max_size=6))
def test_a_batch_is_prepared_as_each_point_alone(pairs):
    points = [BookPoint(f"B {i}", VECTOR, {}, sparse=s) for i, s in enumerate(pairs)]
    batch = outcome(lambda: prepare_batch(points, DIM))
    alone = outcome(lambda: [prepare(point, DIM) for point in points])
    assert batch == alone


def test_sorted_and_unsorted_indices_and_points_without_sparse():
    points = [
        BookPoint("a", VECTOR, {}, sparse=([1, 5, 9], [0.5, 0.25, 1.0])),
        BookPoint("b", VECTOR, {}),
        BookPoint("c", VECTOR, {}, sparse=(np.array([7, 2]), np.array([1, 2], dtype=np.float32))),
        BookPoint("d", VECTOR, {}, sparse=([], [])),
    ]
    got = [item.sparse for item in prepare_batch(points, DIM)]
    assert got == [([1, 5, 9], [0.5, 0.25, 1.0]), None, ([7, 2], [1.0, 2.0]), ([], [])]
    assert all(type(i) is int for i in got[2][0]) and all(type(v) is float for v in got[2][1])


@pytest.mark.parametrize(
    "bad, message",
    [
        (([3, 3], [1.0, 2.0]), "repeated or negative"),
        (([2, -1], [1.0, 2.0]), "repeated or negative"),
        (([1, 2], [1.0]), "2 indices and 1 values"),
        (([1], [float("nan")]), "NaN or infinite"),
    ],
)
def test_a_bad_sparse_vector_is_named_by_its_title(bad, message):
    points = [
        BookPoint("Good", VECTOR, {}, sparse=([0], [1.0])),
        BookPoint("Bad", VECTOR, {}, sparse=bad),
    ]
    with pytest.raises(Exception, match=message) as info:
        prepare_batch(points, DIM)
    assert "'Bad'" in str(info.value)
