"""The coherent sparse weighting (bookvec.sparse): a page weighs its IDF times c^2, c the length
of the mean unit vector of the books linking to it.

Planted: two clusters of books pointing opposite ways. An author's page is linked by four
books of one cluster, a stray page by two books of each (one of them also the author's): the
same document frequency, so TF-IDF weighs them alike; the coherent weighting keeps the
author's page and all but drops the stray one, and a sparse search from the book that links
both finds the author's other books first."""

from __future__ import annotations

import numpy as np
import pytest

from bookvec.errors import ConfigError
from bookvec.indexer import BookPoint, IndexOptions, open_store
from bookvec.settings import QdrantSettings
from bookvec.sparse import link_weights

DIM = 8
AUTHOR, STRAY, OWN = 0, 1, 2  # page ids; each book also links a page of its own (OWN + book)


def planted():
    rng = np.random.default_rng(0)
    axis = np.eye(DIM)[0]
    vectors = np.concatenate(
        [axis + 0.05 * rng.standard_normal((6, DIM)), -axis + 0.05 * rng.standard_normal((6, DIM))]
    )
    pairs = [(b, AUTHOR) for b in (0, 1, 2, 3)] + [(b, STRAY) for b in (3, 4, 6, 7)]
    pairs += [(b, OWN + b) for b in range(12)]
    return np.asarray(pairs), vectors, OWN + 12


def test_a_page_weighs_by_how_close_its_books_are():
    pairs, vectors, n_links = planted()
    tfidf = link_weights(pairs, 12, n_links, "tfidf")
    coherent = link_weights(pairs, 12, n_links, "coherent", vectors)
    assert tfidf.idf[AUTHOR] == tfidf.idf[STRAY]  # same document frequency
    assert coherent.idf[AUTHOR] == pytest.approx(tfidf.idf[AUTHOR], rel=0.01)  # c ~ 1
    assert coherent.idf[STRAY] < 0.01 * tfidf.idf[STRAY]  # two books each way: c ~ 0
    # a page one book links is as coherent as can be: its weight is its IDF
    np.testing.assert_allclose(coherent.idf[OWN:], tfidf.idf[OWN:], rtol=1e-6)
    assert np.all(coherent.idf <= tfidf.idf * (1 + 1e-6))
    # the vectors' scale does not matter (each is made unit first)
    scaled = link_weights(pairs, 12, n_links, "coherent", vectors * np.arange(1, 13)[:, None])
    np.testing.assert_allclose(scaled.idf, coherent.idf, rtol=1e-5)
    # rows are L2-normalised, as tfidf's: a score is a cosine
    for _, values in coherent.book_vectors(pairs, 12):
        assert np.linalg.norm(values) == pytest.approx(1.0)


def test_the_coherence_is_the_mean_unit_vectors_length():
    """Against a plain loop over each page's distinct books (repeats of a pair count once)."""
    rng = np.random.default_rng(1)
    pairs = np.stack([rng.integers(0, 60, 900), rng.integers(0, 40, 900)], axis=1)
    vectors = rng.standard_normal((60, 5))
    tfidf = link_weights(pairs, 60, 40, "tfidf")
    coherent = link_weights(pairs, 60, 40, "coherent", vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for link in range(40):
        books = sorted(set(pairs[pairs[:, 1] == link, 0].tolist()))
        c = np.linalg.norm(unit[books].mean(axis=0)) if books else 0.0
        assert coherent.idf[link] == pytest.approx(tfidf.idf[link] * c**2, rel=1e-5, abs=1e-9)


def test_it_needs_the_vectors_of_every_book():
    pairs, vectors, n_links = planted()
    with pytest.raises(ConfigError, match="needs the model's book vectors"):
        link_weights(pairs, 12, n_links, "coherent")
    with pytest.raises(ConfigError, match="for 12 books"):
        link_weights(pairs, 12, n_links, "coherent", vectors[:5])


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_sparse_search_finds_the_authors_book_first(kind, tmp_path):
    """Book 3 links the author's page and the stray page; book 0 shares only the author's
    page, book 6 only the stray page. TF-IDF ties them; coherent ranks book 0 first."""
    pairs, vectors, n_links = planted()
    order = {}
    for weighting in ("tfidf", "coherent"):
        weights = link_weights(pairs, 12, n_links, weighting, vectors)
        points = [
            BookPoint(title=f"Book {b:02d}", vector=vectors[b], payload={}, sparse=s)
            for b, s in enumerate(weights.book_vectors(pairs, 12))
        ]
        if kind == "edge":
            store = open_store(QdrantSettings(), path=tmp_path / weighting)
        else:
            from qdrant_client import QdrantClient

            store = open_store(QdrantSettings(), client=QdrantClient(":memory:"))
        try:
            options = IndexOptions(sparse="dot", sparse_weighting=weighting)
            store.replace_all(points, vector_size=DIM, model_version="m", options=options)
            hits = store.search_like("Book 03", limit=12, mode="sparse")
            order[weighting] = {h.title: h.score for h in hits}
        finally:
            store.close()
    tied = order["tfidf"]
    assert tied["Book 00"] == pytest.approx(tied["Book 06"], rel=1e-5)
    found = order["coherent"]
    assert found["Book 00"] > 10 * found["Book 06"]
    assert max(found, key=found.get) in {"Book 00", "Book 01", "Book 02"}


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_coherent_collection_fuses_at_its_own_weight(kind, tmp_path):
    """Hybrid on a coherent collection is dense + 0.5 x sparse / best sparse (its weight,
    hybrid.for_weighting), on both backends and after reopening; a bm25 one keeps 1; a spec
    assigned to the store wins over either."""
    from dataclasses import replace

    from bookvec.indexer import hybrid

    pairs, vectors, n_links = planted()
    weights = link_weights(pairs, 12, n_links, "coherent", vectors)
    points = [
        BookPoint(title=f"Book {b:02d}", vector=vectors[b], payload={}, sparse=s)
        for b, s in enumerate(weights.book_vectors(pairs, 12))
    ]

    def opened():
        if kind == "edge":
            return open_store(QdrantSettings(), path=tmp_path / "store")

        return open_store(QdrantSettings(), client=client)

    client = None
    if kind == "server":
        from qdrant_client import QdrantClient

        client = QdrantClient(":memory:")
    store = opened()
    options = IndexOptions(sparse="dot", sparse_weighting="coherent")
    store.replace_all(points, vector_size=DIM, model_version="m", options=options)
    store.close()
    store = opened()
    try:
        hits = store.search_like("Book 03", limit=5, mode="hybrid")
        assert store.hybrid.sparse_weight == 0.5
        query = vectors[3] / np.linalg.norm(vectors[3])
        sparse = {h.title: h.score for h in store.search_like("Book 03", limit=12, mode="sparse")}
        best = max(sparse.values())
        for hit in hits:  # the formula, from the two sides' own scores
            b = int(hit.title.split()[1])
            cosine = float(query @ (vectors[b] / np.linalg.norm(vectors[b])))
            expected = cosine + 0.5 * sparse.get(hit.title, 0.0) / best
            assert hit.score == pytest.approx(expected, abs=1e-5)
        store.hybrid = replace(hybrid.DEFAULT_HYBRID, sparse_weight=2.0)
        assert store.hybrid.sparse_weight == 2.0
        store.hybrid = None  # back to the collection's own
        assert store.hybrid.sparse_weight == 0.5
        store.replace_all(
            points,
            vector_size=DIM,
            model_version="m",
            options=IndexOptions(sparse="dot", sparse_weighting="bm25"),
        )
        store.search_like("Book 03", limit=5, mode="hybrid")
        assert store.hybrid == hybrid.DEFAULT_HYBRID
    finally:
        store.close()
