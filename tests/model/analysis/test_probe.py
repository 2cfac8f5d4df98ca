"""The genre probe: learned vectors as features beat one-hot ids and random vectors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bookvec.errors import ConfigError
from bookvec.model.analysis import evaluate as ev
from bookvec.model.analysis import probe
from tests.model.analysis.test_evaluate import planted


@pytest.fixture(scope="module")
def corpus():
    return planted(n_books=600, n_genres=6, seed=5)


def test_genre_targets_take_the_first_common_genre():
    genres = [["rare", "b"], ["a"], ["a", "b"], None, ["b", "a"], ["rare2"], ["c"], ["c"]]
    rows, labels, classes = probe.genre_targets(genres, n_top=3)
    # counts: a 3, b 3, c 2, rare 1, rare2 1 -> top 3: a, b (ties by name), c
    assert classes == ["a", "b", "c"]
    assert rows.tolist() == [0, 1, 2, 4, 6, 7]
    assert [classes[i] for i in labels] == ["b", "a", "a", "b", "c", "c"]


def test_one_hot_ids_is_the_identity():
    eye = probe.one_hot_ids(4)
    np.testing.assert_array_equal(eye.toarray(), np.eye(4))


def test_probe_beats_one_hot_and_random_on_planted_vectors(corpus):
    features = probe.probe_features(
        corpus.book_vectors, train_pairs=corpus.pairs, n_links=corpus.n_links, seed=0
    )
    assert set(features) == set(probe.FEATURE_SETS)
    result = probe.run_probe(features, corpus.books, seed=0)
    genre = result["genre"]
    assert genre["books"] == 600 and len(genre["classes"]) == 6
    scores = {name: row["accuracy"] for name, row in genre["results"].items()}
    assert scores["bookvec"] > 0.95
    assert scores["binary_links"] > 0.9
    # an unseen book's one-hot id is a column no training row had: majority class at best
    assert scores["one_hot"] <= genre["majority_share"] + 1e-9
    assert scores["bookvec"] >= 3 * scores["one_hot"]
    assert scores["random"] < 0.4
    assert genre["results"]["bookvec"]["macro_f1"] > 0.95
    same = result["same_author"]["results"]
    assert same["bookvec"] > 0.9 and same["random"] < 0.1
    # 200 authors of 3 books among 600: chance that "any other book" is a co-author = 2/599
    assert same["one_hot"] == pytest.approx(2 / 599)


def test_probe_reuses_neighbours_and_query_books(corpus):
    labels = ev.BookLabels.from_books(corpus.books)
    queries = np.arange(0, 600, 3)
    neighbours = {"bookvec": ev.nearest_neighbours(corpus.book_vectors, 10, queries=queries)}
    features = {"bookvec": corpus.book_vectors}
    result = probe.run_probe(
        features, corpus.books, labels, neighbours=neighbours, queries=queries, folds=3
    )
    assert result["same_author"]["books"] == 200
    assert result["genre"]["folds"] == 3


def test_rare_classes_are_dropped_and_too_few_skip():
    books = pl.DataFrame({"genres": [["a"]] * 6 + [["b"]] * 2, "author": [None] * 8})
    vectors = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    result = probe.run_probe({"bookvec": vectors}, books, folds=5)
    assert result["genre"]["classes"] == ["a"]
    assert "skipped" in result["genre"]
    with pytest.raises(ConfigError):
        probe.run_probe({"bookvec": vectors}, books, folds=1)
