"""Exact k nearest neighbours by cosine, and how good they are: genre agreement@k,
same-author recall@k, whether the nearest book shares the author (no torch)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from bookvec.errors import ConfigError, InputError
from bookvec.model.analysis.pairs import Features
from bookvec.model.linalg import normalise, top_k_rows

if TYPE_CHECKING:
    import polars as pl

DEFAULT_K = 10
_TARGET_CELLS = 1 << 24  # scores in flight, all threads together (64 MB of float32)


def default_threads() -> int:
    """Worker threads for the chunked products: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _map_chunks(work: Callable[[int, int], None], n: int, chunk: int, threads: int) -> None:
    """Run ``work(start, stop)`` over ``range(0, n, chunk)`` on ``threads`` threads, BLAS
    limited to one thread each (numpy, scipy and BLAS release the GIL; measured on 2 cores:
    1.6x faster than one thread with 2-thread BLAS, which oversubscribes a busy machine)."""
    from threadpoolctl import threadpool_limits

    spans = [(start, min(n, start + chunk)) for start in range(0, n, chunk)]
    with threadpool_limits(1):
        if threads <= 1 or len(spans) == 1:
            for start, stop in spans:
                work(start, stop)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(work, start, stop) for start, stop in spans]:
                future.result()


def sample_rows(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """All of ``range(n)`` when ``limit`` is None or >= n, else ``limit`` of them (sorted)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ConfigError(f"sample size {limit} must be at least 1 (or None for all)")
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def nearest_neighbours(
    features: Features,
    k: int = DEFAULT_K,
    *,
    queries: np.ndarray | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """int32 (len(queries), k): the ``k`` nearest rows of each query row by cosine, nearest
    first, the query itself excluded (``queries``: row indices, default all rows).

    Exact: chunked (sparse or dense) matrix products against all rows, then a top-k per row.
    Rows without features (all zero) are at cosine 0 to everything: their neighbours are
    arbitrary, and they are nobody's neighbour before a positive cosine.
    """
    n = features.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k={k} must be at least 1 and below the number of books ({n})")
    queries = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    unit = normalise(features)
    sparse = sp.issparse(unit)
    other = unit.T.tocsr() if sparse else np.ascontiguousarray(unit.T)
    threads = threads or default_threads()
    chunk = chunk_size or max(1, min(len(queries), _TARGET_CELLS // n // threads))
    out = np.empty((len(queries), k), dtype=np.int32)

    def work(start: int, stop: int) -> None:
        rows = queries[start:stop]
        block = unit[rows] @ other
        scores = block.toarray() if sparse else block
        scores[np.arange(stop - start), rows] = -np.inf
        out[start:stop] = top_k_rows(scores, k)

    _map_chunks(work, len(queries), chunk, threads)
    return out


# ---------------------------------------------------------------------------------------------
# Neighbour quality


@dataclass(frozen=True)
class BookLabels:
    """What the neighbour metrics compare: canonical genres and authors, one row per book."""

    genres: sp.csr_matrix  # (n_books, n_genres) bool
    genre_names: list[str]
    author: np.ndarray  # int64 author id per book; -1 where unknown
    author_books: np.ndarray  # books by the same author, per book (0 where unknown)

    @property
    def n_books(self) -> int:
        return self.author.shape[0]

    @classmethod
    def from_lists(
        cls, genres: Sequence[Sequence[str] | None], authors: Sequence[str | None]
    ) -> BookLabels:
        if len(genres) != len(authors):
            raise InputError(f"{len(genres)} genre lists for {len(authors)} authors")
        names: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for i, book_genres in enumerate(genres):
            for genre in dict.fromkeys(book_genres or ()):
                rows.append(i)
                cols.append(names.setdefault(genre, len(names)))
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(genres), len(names))
        )
        keys = [" ".join(a.split()).casefold() if a and a.strip() else None for a in authors]
        ids: dict[str, int] = {}
        author = np.array(
            [-1 if key is None else ids.setdefault(key, len(ids)) for key in keys], dtype=np.int64
        )
        sizes = np.bincount(author[author >= 0], minlength=max(len(ids), 1))
        author_books = np.where(author >= 0, sizes[author.clip(min=0)], 0)
        return cls(matrix, list(names), author, author_books)

    @classmethod
    def from_books(cls, books: pl.DataFrame) -> BookLabels:
        """From a bundle's or prepared corpus's books frame (``genres`` and ``author``)."""
        missing = {"genres", "author"} - set(books.columns)
        if missing:
            raise InputError(f"books frame lacks column(s) {', '.join(sorted(missing))}")
        return cls.from_lists(books.get_column("genres").to_list(), books["author"].to_list())


def _query_rows(neighbours: np.ndarray, queries: np.ndarray | None) -> np.ndarray:
    if queries is None:
        return np.arange(neighbours.shape[0])
    queries = np.asarray(queries, dtype=np.int64)
    if queries.shape != (neighbours.shape[0],):
        raise InputError(f"{len(queries)} query rows for {neighbours.shape[0]} neighbour rows")
    return queries


def genre_agreement(
    neighbours: np.ndarray, labels: BookLabels, queries: np.ndarray | None = None
) -> tuple[float | None, int]:
    """Mean share of a book's neighbours sharing >= 1 genre with it, over the query books
    that have a genre (a neighbour without one counts as not sharing).

    ``neighbours[i]`` are the neighbours of book ``queries[i]`` (default: book i).
    Returns (value, books counted).
    """
    queries = _query_rows(neighbours, queries)
    genres = labels.genres.astype(np.float32)
    mine = genres[queries]
    has = np.diff(mine.indptr) > 0
    if not has.any():
        return None, 0
    shared = np.zeros(neighbours.shape, dtype=bool)
    for t in range(neighbours.shape[1]):
        overlap = mine.multiply(genres[neighbours[:, t]]).sum(axis=1)
        shared[:, t] = np.asarray(overlap).ravel() > 0
    return float(shared[has].mean()), int(has.sum())


def author_metrics(
    neighbours: np.ndarray, labels: BookLabels, queries: np.ndarray | None = None
) -> dict[str, Any]:
    """Over the query books whose author has >= 2 books: recall@k of the author's other
    books (found / min(k, other books), so that a perfect ranking scores 1 even for an author
    of more than k + 1 books) and the share whose nearest book is by the same author (the
    same-author probe)."""
    k = neighbours.shape[1]
    queries = _query_rows(neighbours, queries)
    eligible = labels.author_books[queries] >= 2
    if not eligible.any():
        return {f"author_recall@{k}": None, "author_nn@1": None, "author_books": 0}
    author = labels.author[queries[eligible]]
    same = labels.author[neighbours[eligible]] == author[:, None]
    others = labels.author_books[queries[eligible]] - 1
    recall = same.sum(axis=1) / np.minimum(others, k)
    return {
        f"author_recall@{k}": float(recall.mean()),
        "author_nn@1": float(same[:, 0].mean()),
        "author_books": int(eligible.sum()),
    }


def neighbour_metrics(
    neighbours: np.ndarray, labels: BookLabels, queries: np.ndarray | None = None
) -> dict[str, Any]:
    """Genre agreement@k and the author metrics (k = the neighbour array's width)."""
    k = neighbours.shape[1]
    agreement, with_genre = genre_agreement(neighbours, labels, queries)
    return {
        f"genre_agreement@{k}": agreement,
        "genre_books": with_genre,
        **author_metrics(neighbours, labels, queries),
    }


def author_nn_chance(labels: BookLabels, queries: np.ndarray | None = None) -> float | None:
    """The same-author probe for features that make every pair equally similar (one-hot ids):
    the nearest book is then any other book, by the same author with chance (size-1)/(n-1)."""
    sizes = labels.author_books if queries is None else labels.author_books[queries]
    sizes = sizes[sizes >= 2]
    if sizes.size == 0 or labels.n_books < 2:
        return None
    return float(((sizes - 1) / (labels.n_books - 1)).mean())
