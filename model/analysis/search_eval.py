"""Neighbour quality of each search mode, measured through the store's own search path.

The books are indexed into a temporary Qdrant Edge store exactly as `bookvec index` does it
(dense vectors + the `links` sparse vectors of ``bookvec.sparse``), then every query book
is searched with ``store.search_like(title, mode=...)``: what `bookvec search TITLE --mode X`
returns. The sparse vectors are built from the training pairs only (held-out pairs removed),
like the baselines, so that no mode sees a link the others do not.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bookvec.model.analysis.evaluate import BookLabels, neighbour_metrics
from bookvec.sparse import DEFAULT_WEIGHTING, link_weights

if TYPE_CHECKING:
    import polars as pl

    from bookvec.indexer.hybrid import Hybrid

MAX_SEARCH_QUERIES = 2_000  # store queries per mode (seeded sample; p15 has 1,411 books)


def build_store(
    directory: Path,
    book_vectors: np.ndarray,
    books: pl.DataFrame,
    train_pairs: np.ndarray,
    n_links: int,
    *,
    weighting: str = DEFAULT_WEIGHTING,
):
    """An Edge store in ``directory`` holding every book with both vectors (opened)."""
    from bookvec.indexer import BookPoint, IndexOptions
    from bookvec.indexer.edge import EdgeStore

    weights = link_weights(train_pairs, books.height, n_links, weighting, book_vectors)
    options = IndexOptions(sparse="idf" if weights.store_idf else "dot", sparse_weighting=weighting)
    titles = books.get_column("title").to_list()
    genres = books.get_column("genres").to_list()
    authors = books.get_column("author").to_list()
    sparse = weights.book_vectors(train_pairs, books.height)
    points = (
        BookPoint(
            title=title,
            vector=vector,
            payload={"genres": list(g or []), "author": a},
            sparse=vec if vec[0] else None,
        )
        for title, vector, g, a, vec in zip(
            titles, np.asarray(book_vectors), genres, authors, sparse, strict=True
        )
    )
    store = EdgeStore(directory / "books", collection="books")
    store.replace_all(
        points, vector_size=book_vectors.shape[1], model_version="evaluation", options=options
    )
    return store


def search_neighbours(
    store, titles: Sequence[str], queries: np.ndarray, k: int, mode: str, *, diverse=False
) -> np.ndarray:
    """(len(queries), k) book indices returned by the store for each query book (-1 pads a
    short list: a sparse search finds only books sharing a link)."""
    index = {title: i for i, title in enumerate(titles)}
    out = np.full((len(queries), k), -1, dtype=np.int64)
    for row, book in enumerate(queries):
        hits = store.search_like(titles[book], limit=k, mode=mode, diverse=diverse)
        found = [index[hit.title] for hit in hits]
        out[row, : len(found)] = found
    return out


def mode_metrics(neighbours: np.ndarray, labels: BookLabels, queries: np.ndarray) -> dict[str, Any]:
    """``neighbour_metrics`` where -1 (no book) counts as a neighbour sharing nothing."""
    padded = neighbours.copy()
    missing = padded < 0
    # A row index that cannot match: a phantom book with no genre and no author.
    n = labels.n_books
    if missing.any():
        import scipy.sparse as sp

        genres = sp.vstack([labels.genres, sp.csr_matrix((1, labels.genres.shape[1]), dtype=bool)])
        labels = BookLabels(
            genres.tocsr(),
            labels.genre_names,
            np.append(labels.author, -2),
            np.append(labels.author_books, 0),
        )
        padded[missing] = n
    return neighbour_metrics(padded, labels, queries)


def evaluate_modes(
    book_vectors: np.ndarray,
    books: pl.DataFrame,
    train_pairs: np.ndarray,
    n_links: int,
    queries: np.ndarray,
    *,
    k: int = 10,
    modes: Iterable[str] = ("dense", "sparse", "hybrid"),
    weighting: str = DEFAULT_WEIGHTING,
    specs: dict[str, Hybrid] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """{mode: neighbour metrics} for each mode (and each named hybrid spec in ``specs``:
    "hybrid:<name>"), searched through a temporary Edge store."""
    say = log or (lambda message: None)
    labels = BookLabels.from_books(books)
    titles = books.get_column("title").to_list()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bookvec-eval-") as tmp:
        started = time.perf_counter()
        store = build_store(
            Path(tmp), book_vectors, books, train_pairs, n_links, weighting=weighting
        )
        say(f"search.index ({weighting}): {time.perf_counter() - started:.1f} s")
        try:
            runs: list[tuple[str, str, Any]] = [(mode, mode, None) for mode in modes]
            runs += [(f"hybrid:{name}", "hybrid", spec) for name, spec in (specs or {}).items()]
            default = store.hybrid
            for label, mode, spec in runs:
                started = time.perf_counter()
                store.hybrid = spec or default
                neighbours = search_neighbours(store, titles, queries, k, mode)
                result[label] = mode_metrics(neighbours, labels, queries)
                result[label]["seconds"] = round(time.perf_counter() - started, 3)
                say(f"search.{label}: {result[label]['seconds']:.1f} s")
        finally:
            store.close()
    return result


def search_modes(
    bundle, pairs: np.ndarray, held: np.ndarray | None, n_queries: int, seed: int, k: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Neighbour metrics of each search mode for a bundle, through a temporary Edge store built
    like `bookvec index` (sparse vectors from the training pairs only)."""
    from bookvec.model.analysis.evaluate import sample_rows, training_pairs

    train = pairs if held is None else training_pairs(pairs, held, bundle.n_links)
    queries = sample_rows(bundle.n_books, n_queries, seed)
    modes = evaluate_modes(
        np.asarray(bundle.book_vectors),
        bundle.books,
        train,
        bundle.n_links,
        queries,
        k=k,
        weighting=DEFAULT_WEIGHTING,
        log=log,
    )
    return {"query_books": int(len(queries)), "sparse": DEFAULT_WEIGHTING, "modes": modes}
