"""Point ids, content hashes, BookFilter and the point checks both backends share."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from bookvec.errors import ConfigError, ModelMismatchError, StoreError
from bookvec.indexer import BookFilter, BookPoint, content_hash, point_id
from bookvec.indexer.points import classify, prepare, prepare_all, recommend_vector


def test_point_id_is_pinned():
    # Changing it changes every point id in every existing store: upserts would duplicate books.
    assert point_id("War and Peace") == "40a179d5-9f9d-5482-920c-ad87517c0b73"
    assert str(uuid.UUID(point_id("x"))) == point_id("x")


def test_point_id_normalises_unicode():
    assert point_id("Les Mise\u0301rables") == point_id("Les Mis\u00e9rables")
    assert point_id("a") != point_id("A")


def test_content_hash():
    payload = {"title": "T", "genres": ["crime"], "year": 1900}
    vector = [0.1, -0.2, 0.3]
    base = content_hash(payload, vector)
    assert content_hash({**payload, "source": "upsert", "content_hash": "x"}, vector) == base
    assert content_hash(dict(reversed(payload.items())), vector) == base
    assert content_hash(payload, [0.1 + 1e-9, -0.2, 0.3]) == base
    assert content_hash(payload, [0.1, -0.2, 0.31]) != base
    assert content_hash({**payload, "year": 1901}, vector) != base
    assert content_hash(payload, [-1e-9, 0.0, 0.0]) == content_hash(payload, [0.0, 0.0, 0.0])


def test_book_filter():
    assert BookFilter(genres_any="crime").genres_any == ("crime",)
    assert BookFilter(genres_all=["a", "b"]).genres_all == ("a", "b")
    assert BookFilter().is_empty and not BookFilter(year_to=1900).is_empty
    with pytest.raises(ConfigError, match="earlier year first"):
        BookFilter(year_from=2000, year_to=1900)


def test_prepare_completes_the_payload():
    item = prepare(BookPoint("T", [3.0, 4.0], {"title": "other", "author": "A"}), 2)
    assert item.id == point_id("T")
    assert item.payload["title"] == "T" and item.payload["authors"] == ["A"]
    assert item.payload["genres"] == [] and len(item.payload["content_hash"]) == 32
    kept = prepare(BookPoint("T", [3.0, 4.0], {"content_hash": "given"}), 2)
    assert kept.payload["content_hash"] == "given"


@pytest.mark.parametrize(
    "vector, error",
    [([1.0], ModelMismatchError), ([0.0, 0.0], StoreError), ([np.inf, 1.0], StoreError)],
)
def test_prepare_refuses_bad_vectors(vector, error):
    with pytest.raises(error):
        prepare(BookPoint("T", vector, {}), 2)


def test_classify_and_last_one_wins():
    items = prepare_all(
        [
            BookPoint("A", [1.0, 0.0], {}),
            BookPoint("B", [0.0, 1.0], {}),
            BookPoint("A", [1.0, 1.0], {}),
        ],
        2,
    )
    assert [i.title for i in items] == ["B", "A"] and items[1].vector == [1.0, 1.0]
    a, b = items[1], items[0]
    stored = {b.id: b.payload["content_hash"], a.id: "old"}
    to_write, report = classify([*items, *prepare_all([BookPoint("C", [1.0, 2.0], {})], 2)], stored)
    assert [i.title for i in to_write] == ["A", "C"]
    assert (report.added, report.updated, report.unchanged) == (1, 1, 1)


def test_recommend_vector_is_qdrants_average_vector():
    pos, neg = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]
    assert recommend_vector(pos, neg) == [0.0, 0.0]
    assert recommend_vector(pos, []) == [0.5, 0.5]
