"""Sparse link vectors and the search modes, on both backends.

A planted corpus with a known answer: authors write in one genre; books of a genre share no
page (the genre is latent: only the learned, here planted, dense vectors carry it), books of an
author share the author's pages. So the sparse side must win on same-author recall, the dense
side on genre agreement, and hybrid must get both. Then: Edge and the server client return the
same hybrid (and sparse, and diverse) results, filters apply to both sides, and a store without
sparse vectors says so."""

from __future__ import annotations

import numpy as np
import pytest

from bookvec.errors import StoreError
from bookvec.indexer import BookFilter, BookPoint, IndexOptions, open_store
from bookvec.settings import QdrantSettings
from bookvec.sparse import combine, link_weights

DIM = 16
GENRES = 8
AUTHORS = 80
PER_AUTHOR = 6
N = AUTHORS * PER_AUTHOR
K = 5  # an author's other books


def planted():
    rng = np.random.default_rng(3)
    centroids = rng.standard_normal((GENRES, DIM))
    author_genre = rng.integers(GENRES, size=AUTHORS)
    pairs, vectors, payloads, titles = [], [], [], []
    next_page = 2 * AUTHORS
    for book in range(N):
        author = book // PER_AUTHOR
        genre = int(author_genre[author])
        vectors.append(3.0 * centroids[genre] + rng.standard_normal(DIM))
        pairs += [(book, author), (book, AUTHORS + author)]  # the author's page and series
        for _ in range(2):  # pages of its own
            pairs.append((book, next_page))
            next_page += 1
        titles.append(f"Book {book:03d}")
        payloads.append({"genres": [f"g{genre}"], "author": f"A{author}", "year": 1900 + book})
    pairs = np.asarray(pairs)
    weights = link_weights(pairs, N, next_page, "tfidf")
    sparse = list(weights.book_vectors(pairs, N))
    points = [
        BookPoint(title=t, vector=v, payload=p, sparse=s)
        for t, v, p, s in zip(titles, vectors, payloads, sparse, strict=True)
    ]
    return points, author_genre


OPTIONS = IndexOptions(sparse="dot", sparse_weighting="tfidf")


def load(kind: str, tmp_path, points, options=OPTIONS):
    if kind == "edge":
        store = open_store(QdrantSettings(), path=tmp_path)
    else:
        from qdrant_client import QdrantClient

        store = open_store(QdrantSettings(), client=QdrantClient(":memory:"))
    store.replace_all(points, vector_size=DIM, model_version="m", options=options)
    return store


@pytest.fixture(scope="module")
def corpus():
    return planted()


@pytest.fixture(scope="module")
def both(corpus, tmp_path_factory):
    points, _ = corpus
    stores = {
        kind: load(kind, tmp_path_factory.mktemp(kind), points) for kind in ("edge", "server")
    }
    yield stores
    for store in stores.values():
        store.close()


def quality(store, mode: str, queries, limit: int = 10) -> tuple[float, float]:
    """(genre agreement@10, same-author recall@10) of `mode`, through the store (a missing
    neighbour counts as not sharing)."""
    genre_hits = author_hits = 0
    for book in queries:
        title = f"Book {book:03d}"
        genres = store.get([title])[title].payload["genres"]
        hits = store.search_like(title, limit=limit, mode=mode)
        author_hits += sum(h.payload["author"] == f"A{book // PER_AUTHOR}" for h in hits)
        genre_hits += sum(h.payload["genres"] == genres for h in hits)
    return genre_hits / (limit * len(queries)), author_hits / (K * len(queries))


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_sparse_wins_author_dense_wins_genre_hybrid_both(both, kind):
    store = both[kind]
    queries = range(0, N, 7)
    dense = quality(store, "dense", queries)
    sparse = quality(store, "sparse", queries)
    hybrid = quality(store, "hybrid", queries)
    assert dense[0] == 1.0 and dense[1] < 0.4  # the genre, but the author only by chance
    assert sparse[1] == 1.0 and sparse[0] == 0.5  # the author's 5 books, then nothing
    assert hybrid == (1.0, 1.0)
    # Beyond the author's five books, sparse finds nothing: the genre is latent.
    more = store.search_like("Book 000", limit=3 * K, mode="sparse")
    assert len(more) == K
    assert len(store.search_like("Book 000", limit=3 * K, mode="hybrid")) == 3 * K


def by_score(hit):
    return (-round(hit.score, 5), hit.title)


def test_backends_agree_on_every_mode(both, corpus):
    edge, server = both["edge"], both["server"]
    filters = [None, BookFilter(genres_any=("g1", "g2")), BookFilter(year_from=1950, year_to=2200)]
    for mode in ("dense", "sparse", "hybrid"):
        for diverse in (False, True):
            for flt in filters:
                for book in (0, 13, 77, 301):
                    title = f"Book {book:03d}"
                    a = edge.search_like(title, limit=8, filter=flt, mode=mode, diverse=diverse)
                    b = server.search_like(title, limit=8, filter=flt, mode=mode, diverse=diverse)
                    if mode == "sparse" and not diverse:
                        # Equal sparse scores (an author's books all share the same pages)
                        # come in either order; the books and their scores must agree.
                        a, b = sorted(a, key=by_score), sorted(b, key=by_score)
                    assert [h.title for h in a] == [h.title for h in b], (mode, diverse, flt, book)
                    np.testing.assert_allclose(
                        [h.score for h in a], [h.score for h in b], atol=1e-5
                    )


def test_filters_apply_to_both_sides(both):
    flt = BookFilter(genres_any=("g3",))
    for store in both.values():
        for mode in ("sparse", "hybrid"):
            hits = store.search_like("Book 000", limit=20, filter=flt, mode=mode)
            assert all(h.payload["genres"] == ["g3"] for h in hits)
            assert "Book 000" not in [h.title for h in hits]


def test_recommend_and_vector_queries_by_mode(both, corpus):
    points, _ = corpus
    for store in both.values():
        hits = store.recommend(["Book 000", "Book 001"], ["Book 006"], limit=4, mode="sparse")
        assert {h.payload["author"] for h in hits} == {"A0"}
        assert not {"Book 000", "Book 001", "Book 006"} & {h.title for h in hits}
        # A page as the query: the books that link to it (sparse), near it (dense) or both.
        page = ([AUTHORS + 2], [1.0])
        hits = store.search(points[12].vector, sparse=page, limit=6, mode="sparse")
        assert {h.payload["author"] for h in hits} == {"A2"}
    a = both["edge"].search(points[12].vector, sparse=page, limit=6, mode="hybrid")
    b = both["server"].search(points[12].vector, sparse=page, limit=6, mode="hybrid")
    assert [h.title for h in a] == [h.title for h in b]


def test_diverse_spreads_the_results(both):
    for store in both.values():
        plain = store.search_like("Book 000", limit=10, mode="dense")
        diverse = store.search_like("Book 000", limit=10, mode="dense", diverse=True)
        assert plain[0].title == diverse[0].title
        assert [h.title for h in plain] != [h.title for h in diverse]


def test_get_returns_both_vectors(both, corpus):
    points, _ = corpus
    for store in both.values():
        record = store.get(["Book 005"], with_vectors=True)["Book 005"]
        assert len(record.vector) == DIM
        assert record.sparse is not None
        assert record.sparse[0] == list(points[5].sparse[0])
        np.testing.assert_allclose(record.sparse[1], points[5].sparse[1], rtol=1e-6)


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_upsert_writes_sparse_vectors(kind, corpus, tmp_path):
    points, _ = corpus
    store = load(kind, tmp_path, points[:60])
    try:
        new = BookPoint(
            title="New", vector=points[0].vector, payload={"genres": ["g0"]}, sparse=([0], [1.0])
        )
        assert store.upsert([new]).added == 1
        hits = store.search_like("New", limit=PER_AUTHOR, mode="sparse")
        assert {h.payload["author"] for h in hits} == {"A0"}
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_store_without_sparse_vectors_says_so(kind, corpus, tmp_path):
    points, _ = corpus
    dense_only = [BookPoint(p.title, p.vector, p.payload) for p in points[:30]]
    store = load(kind, tmp_path, dense_only, options=IndexOptions())
    try:
        assert len(store.search_like("Book 000", limit=3)) == 3  # dense still works
        with pytest.raises(StoreError, match="no sparse vectors"):
            store.search_like("Book 000", limit=3, mode="hybrid")
        with pytest.raises(StoreError, match="no sparse vectors"):
            store.upsert([points[40]])
    finally:
        store.close()


def test_combine_is_the_average_vector_rule():
    assert combine([([1, 2], [1.0, 1.0])]) == ([1, 2], [1.0, 1.0])
    # avg(pos) = {1: 0.5, 2: 1}; 2 avg(pos) - avg(neg) = {1: 0, 2: 2}: dimension 1 drops out
    assert combine([([1, 2], [1.0, 1.0]), ([2], [1.0])], [([1], [1.0])]) == ([2], [2.0])


def test_tfidf_matches_the_baseline():
    from bookvec.model.analysis.evaluate import book_link_matrix, tfidf_matrix

    pairs = np.array([[0, 0], [0, 1], [0, 1], [1, 1], [1, 2], [2, 0], [2, 2], [2, 3]])
    expected = tfidf_matrix(book_link_matrix(pairs, 3, 4)).toarray()
    weights = link_weights(pairs, 3, 4, "tfidf")
    for book, (indices, values) in enumerate(weights.book_vectors(pairs, 3)):
        row = np.zeros(4)
        row[indices] = values
        np.testing.assert_allclose(row, expected[book], rtol=1e-6)


def test_query_sparse_keeps_the_heaviest_links():
    from bookvec.errors import ConfigError
    from bookvec.indexer.hybrid import Hybrid

    query = ([5, 1, 9, 3], [0.1, 0.7, 0.5, 0.5])
    assert Hybrid(sparse_terms=0).query_sparse(query) == query  # 0: every link
    assert Hybrid(sparse_terms=4).query_sparse(query) == query
    # The two heaviest, in index order; of the tied 0.5s the lower index wins.
    assert Hybrid(sparse_terms=2).query_sparse(query) == ([1, 3], [0.7, 0.5])
    assert Hybrid(sparse_terms=3).query_sparse(query) == ([1, 3, 9], [0.7, 0.5, 0.5])
    assert Hybrid(sparse_terms=2).query_sparse(None) is None
    # Only a coherent collection cuts its queries (its values carry each page's rarity; a bm25
    # or binary query weighs its links alike, the store applying the IDF).
    from bookvec.indexer.hybrid import DEFAULT_HYBRID, for_weighting

    coherent = for_weighting("coherent")
    assert (coherent.sparse_weight, coherent.prefetch, coherent.sparse_terms) == (0.5, 50, 12)
    for weighting in ("bm25", "tfidf", "binary", None):
        assert for_weighting(weighting) == DEFAULT_HYBRID
    assert (DEFAULT_HYBRID.prefetch, DEFAULT_HYBRID.sparse_terms) == (100, 0)
    for bad in (-1, 2.5):
        with pytest.raises(ConfigError, match="sparse_terms"):
            Hybrid(sparse_terms=bad)


def test_a_pruned_sparse_side_on_both_backends(both):
    """The planted books' heaviest links (TF-IDF) are their own two pages, which no other book
    links to: a hybrid query cut to two terms finds no one by its links and ranks as dense
    does; the sparse mode keeps every link; both backends agree."""
    from dataclasses import replace

    from bookvec.indexer import hybrid

    try:
        for store in both.values():
            store.hybrid = replace(hybrid.DEFAULT_HYBRID, sparse_terms=2)
        for book in (0, 13, 77):
            title = f"Book {book:03d}"
            found = {}
            for kind, store in both.items():
                cut = store.search_like(title, limit=8, mode="hybrid")
                dense = store.search_like(title, limit=8, mode="dense")
                assert [h.title for h in cut] == [h.title for h in dense]
                sparse = store.search_like(title, limit=8, mode="sparse")
                assert {h.payload["author"] for h in sparse} == {f"A{book // PER_AUTHOR}"}
                found[kind] = [h.title for h in cut]
            assert found["edge"] == found["server"]
        for store in both.values():
            store.hybrid = replace(hybrid.DEFAULT_HYBRID, sparse_terms=4)  # every link
            assert quality(store, "hybrid", range(0, N, 7)) == (1.0, 1.0)
    finally:
        for store in both.values():
            store.hybrid = None


def test_a_book_without_links_leaves_the_graph_count_at_zero(corpus, tmp_path):
    """Edge counts no empty sparse vector among its indexed vectors: a link-less book (its
    links all cleaned away) must not make `info` report fewer than no vectors in a graph."""
    points, _ = corpus
    bare = BookPoint("No Links", points[0].vector, {"genres": ["g0"]}, sparse=([], []))
    store = load("edge", tmp_path, [*points[:30], bare])
    try:
        assert store.info().indexed_vectors == 0  # 31 points: below the indexing threshold
        assert store.get(["No Links"], with_vectors=True)["No Links"].vector is not None
    finally:
        store.close()
