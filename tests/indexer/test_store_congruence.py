"""One behaviour suite, two backends: Qdrant Edge on a tmp dir and the server client on
`QdrantClient(":memory:")`. A seeded corpus with planted genres, authors and years gives known
answers (an exact numpy oracle), and a diff test runs the same queries on both backends.
At 2,000 x 50-d both search exactly, so ids must agree in order and scores to 1e-5."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bookvec.errors import (
    ConfigError,
    DataNotFoundError,
    ModelMismatchError,
    StoreError,
    TitleNotFoundError,
)
from bookvec.indexer import BookFilter, BookPoint, open_store, point_id
from bookvec.settings import QdrantSettings

BACKENDS = ["edge", "server"]
DIM = 50
N = 2000
GENRES = ["fantasy", "science fiction", "crime", "romance", "history", "poetry", "horror", "satire"]
COUNTRIES = ["united kingdom", "united states", "france", "russia", None]
MODEL = "model-a"


@dataclass
class Corpus:
    titles: list[str]
    vectors: np.ndarray  # raw (not normalised), as given to the store
    payloads: list[dict]

    def points(self, sl: slice = slice(None)) -> list[BookPoint]:
        return [
            BookPoint(title=t, vector=v, payload=dict(p))
            for t, v, p in zip(self.titles[sl], self.vectors[sl], self.payloads[sl], strict=True)
        ]

    @property
    def unit(self) -> np.ndarray:
        return self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)


def make_corpus(n: int = N, seed: int = 7, prefix: str = "Book") -> Corpus:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((len(GENRES), DIM))
    author_offsets = rng.standard_normal((100, DIM))
    titles, vectors, payloads = [], [], []
    for i in range(n):
        main = i % len(GENRES)
        genres = [GENRES[main]]
        if rng.random() < 0.3:
            genres.append(GENRES[(main + 1 + rng.integers(len(GENRES) - 1)) % len(GENRES)])
        author = int(rng.integers(100))
        authors = [f"Author {author}"]
        if rng.random() < 0.15:
            authors.append(f"Author {int(rng.integers(100))}")
        vector = 3.0 * centroids[main] + 0.8 * author_offsets[author] + rng.standard_normal(DIM)
        year = None if rng.random() < 0.05 else int(1800 + rng.integers(220))
        titles.append(f"{prefix} {i:04d}")
        vectors.append(vector)
        payloads.append(
            {
                "genres": genres,
                "author": authors[0],
                "authors": authors,
                "country": COUNTRIES[int(rng.integers(len(COUNTRIES)))],
                "language": "english",
                "publisher": None,
                "year": year,
                "source": "test",
            }
        )
    return Corpus(titles, np.asarray(vectors, dtype=np.float32), payloads)


def matches(payload: dict, flt: BookFilter | None) -> bool:
    if flt is None:
        return True
    genres = set(payload["genres"])
    year = payload["year"]
    return (
        (not flt.genres_any or bool(genres & set(flt.genres_any)))
        and set(flt.genres_all) <= genres
        and (flt.author is None or flt.author in payload["authors"])
        and (flt.country is None or payload["country"] == flt.country)
        and (flt.year_from is None or (year is not None and year >= flt.year_from))
        and (flt.year_to is None or (year is not None and year <= flt.year_to))
    )


def oracle(corpus: Corpus, query, limit: int, flt=None, exclude=()) -> list[tuple[str, float]]:
    """Exact cosine search in numpy: what both backends must return."""
    q = np.asarray(query, dtype=np.float64)
    scores = corpus.unit.astype(np.float64) @ (q / np.linalg.norm(q))
    keep = [
        i
        for i, (t, p) in enumerate(zip(corpus.titles, corpus.payloads, strict=True))
        if t not in exclude and matches(p, flt)
    ]
    order = sorted(keep, key=lambda i: -scores[i])[:limit]
    return [(corpus.titles[i], float(scores[i])) for i in order]


def open_backend(kind: str, tmp_path, client=None):
    if kind == "edge":
        return open_store(QdrantSettings(), path=tmp_path)
    from qdrant_client import QdrantClient

    return open_store(QdrantSettings(), client=client or QdrantClient(":memory:"))


def reopen(kind: str, store, tmp_path, **kwargs):
    """A second handle on the same store (for the server: the same in-memory client)."""
    if kind == "edge":
        return open_store(QdrantSettings(), path=tmp_path, **kwargs)
    return open_store(QdrantSettings(), client=store.client, **kwargs)


def assert_same(hits, expected, tol=1e-5):
    assert [h.title for h in hits] == [t for t, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=tol)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus()


@pytest.fixture(scope="module")
def stores(corpus, tmp_path_factory):
    built = {}
    for kind in BACKENDS:
        store = open_backend(kind, tmp_path_factory.mktemp(f"{kind}-store"))
        assert store.replace_all(corpus.points(), vector_size=DIM, model_version=MODEL) == N
        built[kind] = store
    yield built
    for store in built.values():
        store.close()


@pytest.fixture(params=BACKENDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def loaded(stores, kind):
    return stores[kind]


@pytest.fixture
def small() -> Corpus:
    return make_corpus(n=300, seed=11)


@pytest.fixture
def fresh(kind, small, tmp_path):
    """A store of its own (300 books), for tests that change it."""
    store = open_backend(kind, tmp_path)
    store.replace_all(small.points(), vector_size=DIM, model_version=MODEL)
    yield store
    store.close()


# --- reading -------------------------------------------------------------------------------------


def test_info(loaded, kind):
    info = loaded.info()
    assert info.backend == kind
    assert (info.model_version, info.vector_size, info.points) == (MODEL, DIM, N)


def test_search_is_exact(loaded, corpus):
    rng = np.random.default_rng(1)
    for _ in range(5):
        query = rng.standard_normal(DIM)
        assert_same(loaded.search(query, limit=10), oracle(corpus, query, 10))


def test_nearest_books_share_the_planted_genre(loaded, corpus):
    for i in range(0, N, 97):
        main = corpus.payloads[i]["genres"][0]
        hits = loaded.search_like(corpus.titles[i], limit=5)
        assert all(main in h.payload["genres"] for h in hits), (corpus.titles[i], hits)


FILTERS = [
    BookFilter(genres_any=("crime",)),
    BookFilter(genres_any=("crime", "poetry")),
    BookFilter(genres_all=("fantasy", "horror")),
    BookFilter(author="Author 7"),
    BookFilter(country="france"),
    BookFilter(year_from=1900, year_to=1950),
    BookFilter(year_from=2000),
    BookFilter(year_to=1810, genres_any=("romance", "satire")),
    BookFilter(genres_any=("history",), country="russia", year_from=1850),
]


@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_filters(loaded, corpus, flt):
    query = np.random.default_rng(2).standard_normal(DIM)
    hits = loaded.search(query, limit=15, filter=flt)
    assert hits and all(matches(h.payload, flt) for h in hits)
    assert_same(hits, oracle(corpus, query, 15, flt))
    assert loaded.count(flt) == sum(matches(p, flt) for p in corpus.payloads)


def test_author_filter_matches_co_authors(loaded, corpus):
    co = next(p for p in corpus.payloads if len(p["authors"]) > 1)["authors"][1]
    hits = loaded.search(corpus.vectors[0], limit=500, filter=BookFilter(author=co))
    assert any(h.payload["author"] != co for h in hits)
    assert all(co in h.payload["authors"] for h in hits)


def test_search_like_excludes_the_example(loaded, corpus):
    title = corpus.titles[42]
    hits = loaded.search_like(title, limit=10, filter=BookFilter(genres_any=("crime",)))
    assert title not in [h.title for h in hits]
    expected = oracle(corpus, corpus.vectors[42], 10, BookFilter(genres_any=("crime",)), {title})
    assert_same(hits, expected)


def test_search_excludes_titles(loaded, corpus):
    query = corpus.vectors[5]
    excluded = {h.title for h in loaded.search(query, limit=3)}
    hits = loaded.search(query, limit=10, exclude_titles=excluded)
    assert_same(hits, oracle(corpus, query, 10, exclude=excluded))


def test_recommend_average_vector(loaded, corpus):
    pos, neg = [3, 11, 19], [4, 12]
    titles = [corpus.titles[i] for i in pos + neg]
    unit = corpus.unit.astype(np.float64)
    query = 2 * unit[pos].mean(axis=0) - unit[neg].mean(axis=0)
    hits = loaded.recommend(titles[:3], titles[3:], limit=10)
    assert not set(titles) & {h.title for h in hits}
    assert_same(hits, oracle(corpus, query, 10, exclude=set(titles)))
    only_positive = loaded.recommend(titles[:1], limit=5)
    assert_same(only_positive, oracle(corpus, unit[3], 5, exclude={titles[0]}))


def test_recommend_needs_a_positive(loaded):
    with pytest.raises(ConfigError):
        loaded.recommend([], ["Book 0001"])


def test_unknown_titles(loaded, corpus):
    with pytest.raises(TitleNotFoundError, match="No Such Book"):
        loaded.search_like("No Such Book")
    with pytest.raises(TitleNotFoundError, match="Missing Negative"):
        loaded.recommend([corpus.titles[0]], ["Missing Negative"])


def test_get(loaded, corpus):
    records = loaded.get([corpus.titles[1], "nope", corpus.titles[2]], with_vectors=True)
    assert list(records) == [corpus.titles[1], corpus.titles[2]]
    record = records[corpus.titles[1]]
    assert record.id == point_id(corpus.titles[1])
    assert record.payload["genres"] == corpus.payloads[1]["genres"]
    assert record.payload["content_hash"]
    np.testing.assert_allclose(record.vector, corpus.unit[1], atol=1e-6)
    assert loaded.get([corpus.titles[1]])[corpus.titles[1]].vector is None


def test_titles(loaded, corpus):
    assert loaded.titles() == sorted(corpus.titles)


def test_wrong_query_size(loaded):
    with pytest.raises(ModelMismatchError, match="bookvec index"):
        loaded.search([0.1] * (DIM + 1))
    with pytest.raises(ConfigError):
        loaded.search([0.1] * DIM, limit=0)


# --- writing -------------------------------------------------------------------------------------


def test_upsert_added_updated_unchanged(fresh, small):
    points = small.points(slice(0, 20))
    assert tuple(vars(fresh.upsert(points)).values()) == (0, 0, 20)
    changed = [BookPoint(p.title, p.vector, {**p.payload, "publisher": "Tor"}) for p in points[:5]]
    new = make_corpus(n=3, seed=99, prefix="New").points()
    report = fresh.upsert([*changed, *new, *points[5:10]])
    assert (report.added, report.updated, report.unchanged) == (3, 5, 5)
    assert fresh.count() == 303
    assert fresh.get([points[0].title])[points[0].title].payload["publisher"] == "Tor"
    assert fresh.search_like(new[0].title, limit=1)  # the new book is searchable
    again = fresh.upsert([*changed, *new])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 8)


def test_upsert_checks_every_point_before_writing(fresh):
    good = BookPoint("Good", np.ones(DIM), {})
    for bad in (np.zeros(DIM), np.full(DIM, np.nan)):
        with pytest.raises(StoreError):
            fresh.upsert([good, BookPoint("Bad", bad, {})])
    with pytest.raises(ModelMismatchError):
        fresh.upsert([good, BookPoint("Short", np.ones(DIM - 1), {})])
    assert not fresh.get(["Good"])


def test_delete_and_count(fresh, small):
    assert fresh.delete([small.titles[0], small.titles[1], "not there"]) == 2
    assert fresh.count() == 298
    assert not fresh.get([small.titles[0]])
    assert fresh.delete([small.titles[0]]) == 0


def test_model_mismatch_is_refused(fresh):
    fresh.ensure_collection(vector_size=DIM, model_version=MODEL)  # same model: nothing to do
    with pytest.raises(ModelMismatchError, match="bookvec index"):
        fresh.ensure_collection(vector_size=DIM, model_version="model-b")
    with pytest.raises(ModelMismatchError, match="bookvec index"):
        fresh.ensure_collection(vector_size=DIM + 14, model_version=MODEL)


def test_empty_store(kind, tmp_path):
    store = open_backend(kind, tmp_path)
    assert store.info() is None
    with pytest.raises(DataNotFoundError, match="bookvec index"):
        store.search([1.0] * DIM)
    store.ensure_collection(vector_size=DIM, model_version=MODEL)
    info = store.info()
    assert (info.model_version, info.vector_size, info.points) == (MODEL, DIM, 0)
    assert store.upsert(make_corpus(n=5).points()).added == 5
    store.close()


def test_read_only_refuses_writes(kind, fresh, small, tmp_path):
    reader = reopen(kind, fresh, tmp_path, read_only=True)
    assert reader.count() == 300
    with pytest.raises(StoreError, match="read-only"):
        reader.upsert(small.points(slice(0, 1)))
    with pytest.raises(StoreError, match="read-only"):
        reader.delete([small.titles[0]])
    reader.close()


def test_replace_all_serves_old_data_until_the_switch(kind, fresh, small, tmp_path):
    reader = reopen(kind, fresh, tmp_path, read_only=True)
    new = make_corpus(n=120, seed=5, prefix="Next")
    seen = []

    def progress(n: int) -> None:  # runs between batches, before the switch
        seen.append(n)
        assert reader.count() == 300
        assert reader.get([small.titles[0]]) and not reader.get([new.titles[0]])
        assert reader.search_like(small.titles[0], limit=1)

    count = fresh.replace_all(
        iter(new.points()), vector_size=DIM, model_version="model-b", progress=progress
    )
    assert count == 120 and sum(seen) == 120
    assert reader.count() == 120  # the reader follows the switch at its next call
    assert reader.info().model_version == "model-b"
    assert not reader.get([small.titles[0]])
    assert_same(reader.search(new.vectors[0], limit=5), oracle(new, new.vectors[0], 5))
    reader.close()


def test_failed_replace_all_keeps_the_old_data(fresh, small):
    def broken():
        yield from small.points(slice(0, 10))
        yield BookPoint("Broken", [1.0] * (DIM - 1), {})

    with pytest.raises(ModelMismatchError):
        fresh.replace_all(broken(), vector_size=DIM, model_version="model-b")
    assert fresh.count() == 300
    assert fresh.info().model_version == MODEL


# --- the two backends agree ----------------------------------------------------------------------


def test_backends_agree(stores, corpus):
    edge, server = stores["edge"], stores["server"]
    rng = np.random.default_rng(3)
    queries = []
    for i in range(50):
        flt = FILTERS[i % len(FILTERS)] if i % 3 else None
        title = corpus.titles[int(rng.integers(N))]
        if i % 5 == 0:
            queries.append(lambda s, t=title, f=flt: s.search_like(t, limit=10, filter=f))
        elif i % 5 == 1:
            pos = [corpus.titles[int(j)] for j in rng.integers(N, size=2)]
            neg = [corpus.titles[int(rng.integers(N))]]
            queries.append(lambda s, p=pos, n=neg, f=flt: s.recommend(p, n, limit=10, filter=f))
        else:
            vector = rng.standard_normal(DIM)
            queries.append(lambda s, v=vector, f=flt: s.search(v, limit=10, filter=f))
    for query in queries:
        a, b = query(edge), query(server)
        assert a, "every query should find something"
        assert [h.id for h in a] == [h.id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        assert [h.payload for h in a] == [h.payload for h in b]


# --- scale settings and streaming ---------------------------------------------------------------


def test_index_options_are_stored_with_the_collection(kind, small, tmp_path):
    from bookvec.indexer import IndexOptions

    store = open_backend(kind, tmp_path)
    options = IndexOptions(hnsw_m=32, hnsw_ef=64, quantization="int8")
    store.replace_all(small.points(), vector_size=DIM, model_version=MODEL, options=options)
    assert store.info().index == options
    again = reopen(kind, store, tmp_path, read_only=True)
    assert again.info().index == options
    query = small.vectors[3]
    assert_same(again.search(query, limit=5), oracle(small, query, 5))  # exact at this size
    again.close()
    store.replace_all(small.points(), vector_size=DIM, model_version=MODEL)
    assert store.info().index == IndexOptions()
    store.close()


def test_upsert_streams_in_batches(fresh, small):
    from bookvec.indexer.points import BATCH

    n = BATCH + 40
    new = make_corpus(n=n, seed=21, prefix="Stream")
    changed = BookPoint(new.titles[0], new.vectors[0], {**new.payloads[0], "publisher": "Tor"})

    def stream():  # a generator: the store must not need its length
        yield from new.points()
        yield changed  # the same title again, in the next batch: the later one wins

    dry = fresh.upsert(stream(), dry_run=True)
    assert (dry.added, dry.updated, dry.unchanged) == (n + 1, 0, 0)  # nothing stored to compare
    assert fresh.count() == 300
    report = fresh.upsert(stream())
    assert (report.added, report.updated, report.unchanged) == (n, 1, 0)
    assert fresh.count() == 300 + n
    assert fresh.get([new.titles[0]])[new.titles[0]].payload["publisher"] == "Tor"
    again = fresh.upsert(iter([changed, *new.points(slice(1, None))]))
    assert (again.added, again.updated, again.unchanged) == (0, 0, n)
