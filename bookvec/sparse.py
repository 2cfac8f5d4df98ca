"""The sparse side of a book: its cleaned links as a sparse vector, link index = dimension.

Beside its learned (dense) vector every book point in the store carries the links its article
makes, weighted one of three ways. The weights come from the bundle alone (its pairs: every
book's links), so a book upserted later is weighted against the same vocabulary and IDF as the
books indexed with the model:

- ``binary``: 1 per link; the store's IDF modifier weighs the query side, so a book's score is
  the sum of Qdrant's IDF, ln((N - df + 0.5) / (df + 0.5) + 1), over the links it shares with
  the query (N and df counted by the store over the points it holds);
- ``tfidf``: tf x sklearn's smooth IDF, ln((1 + n) / (1 + df)) + 1, rows L2-normalised (tf:
  how often the article links the page); no store
  modifier, so a score is the TF-IDF cosine of the two books, in [0, 1] (the TF-IDF baseline
  of ``bookvec evaluate``, searched by Qdrant);
- ``bm25``: BM25's document side, tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len)), with
  the store's IDF modifier on the query side: long link lists weigh less;
- ``coherent``: tfidf with each page's IDF times c^2, c the length of the mean of the unit
  vectors of the books that link to it (1 when the model put them all in one place, near 0
  for a page linked from all over the catalogue). Rarity alone weighs an author's page like
  a page as rare that unrelated books link to; the learned vectors tell them apart. The
  weights come from the bundle's vectors as well as its pairs.

No torch, no qdrant here: the indexer only receives (indices, values).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookvec.errors import ConfigError

WEIGHTINGS = ("binary", "tfidf", "bm25", "coherent")
# Chosen by measurement (`benchmarks/modes.py --weightings bm25 coherent --sweep`, through the
# store; README "Search modes"): sparse search's same-author recall@10, full-shape synthetic
# (seed 0) / p15 (6 seeds): bm25 0.297 / 0.763, coherent 0.343 / 0.792 (TF-IDF's baseline
# 0.282 / 0.786); as hybrid's sparse side (weight 0.5, hybrid.WEIGHTING_SPECS) coherent keeps
# most of it (0.337 / 0.785; bm25 at its weight 1: 0.298 / 0.762) for genre agreement 0.759 /
# 0.533 (bm25: 0.765 / 0.544).
DEFAULT_WEIGHTING = "coherent"
# Weightings whose query side the store weighs with its IDF modifier.
STORE_IDF = frozenset({"binary", "bm25"})
# Weightings whose rows are tf x a weight per link, L2-normalised (a score is a cosine).
NORMALISED = frozenset({"tfidf", "coherent"})
# Weightings made from the model's book vectors as well as its pairs.
NEEDS_VECTORS = frozenset({"coherent"})
# BM25's usual k1 and b. `benchmarks/bm25_sweep.py` (3 seeds, hybrid genre agreement /
# same-author recall@10): k1 20, b 0.25 lifts p15 to 0.554 / 0.776 (these: 0.546 / 0.763) but
# drops the synthetic corpus's same-author recall to 0.218 (these: 0.293; TF-IDF 0.281).
BM25_K1, BM25_B = 1.2, 0.75

SparseVector = tuple[list[int], list[float]]


def check_weighting(name: str) -> str:
    if name not in WEIGHTINGS:
        raise ConfigError(
            f"unknown sparse weighting {name!r}", hint="use one of " + ", ".join(WEIGHTINGS)
        )
    return name


@dataclass(frozen=True)
class LinkWeights:
    """How one corpus weighs a book's links (from its pairs; see the module docstring)."""

    weighting: str
    idf: np.ndarray  # float64 (n_links,): tfidf's IDF, coherent's IDF x c^2 (else ones)
    avg_len: float  # mean distinct links a book (bm25)

    @property
    def n_links(self) -> int:
        return int(self.idf.shape[0])

    @property
    def store_idf(self) -> bool:
        """Whether the store must weigh queries with its IDF modifier."""
        return self.weighting in STORE_IDF

    def vector(self, links: Iterable[int]) -> SparseVector:
        """One book's sparse vector from its link indices, sorted. A link the article makes
        several times counts that many times (tf) in tfidf and bm25, once in binary."""
        indices, tf = _distinct(np.fromiter(links, dtype=np.int64), counts=True)
        if indices.size and (indices[0] < 0 or indices[-1] >= self.n_links):
            bad = indices[0] if indices[0] < 0 else indices[-1]
            raise ConfigError(f"link index {int(bad)} outside the model's {self.n_links} links")
        return indices.tolist(), self._values(indices, tf.astype(np.float64)).tolist()

    def vectors(self, rows: Sequence[Sequence[int]]) -> list[SparseVector]:
        """``vector`` of each row, for many books in a few numpy calls (one at a time, the
        numpy calls cost more than the arithmetic). The same numbers, bit for bit: each value
        is the same elementwise expression, and a row's norm (tfidf, coherent) the same
        `_row_norms` sum over the same values."""
        if not rows:
            return []
        from itertools import chain

        sizes = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(sizes.sum()))
        if flat.size and (flat.min() < 0 or flat.max() >= self.n_links):
            bad = flat.min() if flat.min() < 0 else flat.max()
            raise ConfigError(f"link index {int(bad)} outside the model's {self.n_links} links")
        owner = np.repeat(np.arange(len(rows), dtype=np.int64), sizes)
        keys, tf = _distinct(owner * max(self.n_links, 1) + flat, counts=True)
        owners, indices = np.divmod(keys, max(self.n_links, 1))
        tf = tf.astype(np.float64)
        if self.weighting == "binary":
            values = np.ones(indices.size, dtype=np.float64)
        elif self.weighting in NORMALISED:
            values = tf * self.idf[indices]
            values /= _row_norms(values, owners, len(rows))[owners]
        else:  # bm25: the row's length is its number of links, repeats counted
            norm = 1.0 - BM25_B + BM25_B * sizes.astype(np.float64) / max(self.avg_len, 1e-12)
            values = tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * norm[owners])
        bounds = np.searchsorted(owners, np.arange(len(rows) + 1)).tolist()
        flat_i, flat_v = indices.tolist(), values.tolist()
        return [(flat_i[a:b], flat_v[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _values(self, indices: np.ndarray, tf: np.ndarray) -> np.ndarray:
        if self.weighting == "binary" or indices.size == 0:
            return np.ones(indices.size, dtype=np.float64)
        if self.weighting in NORMALISED:
            values = tf * self.idf[indices]
            return values / _row_norms(values, np.zeros(values.size, dtype=np.int64), 1)[0]
        norm = 1.0 - BM25_B + BM25_B * tf.sum() / max(self.avg_len, 1e-12)
        return tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * norm)

    def book_vectors(self, pairs: np.ndarray, n_books: int) -> Iterator[SparseVector]:
        """The sparse vector of every book 0..n_books-1 from (book, link) pairs, in order
        (a book without pairs gets an empty vector)."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))
        books, links = pairs[order, 0], pairs[order, 1]
        bounds = np.searchsorted(books, np.arange(n_books + 1))
        for book in range(n_books):
            yield self.vector(links[bounds[book] : bounds[book + 1]])


def _row_norms(values: np.ndarray, owners: np.ndarray, n_rows: int) -> np.ndarray:
    """The L2 norm of each row's values (``owners``: each value's row, sorted), 1 where a row
    is empty or all zero. One `reduceat` for a row or for many: the same sums, bit for bit."""
    norms = np.ones(n_rows, dtype=np.float64)
    if values.size:
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        sums = np.sqrt(np.add.reduceat(values * values, starts))
        norms[owners[starts]] = np.where(sums > 0, sums, 1.0)
    return norms


def _distinct(keys: np.ndarray, *, counts: bool = False) -> Any:
    """np.unique of int64 keys (with counts), by a sort: numpy 2's hash-based unique took ~2 s
    for a corpus's 1.2M pairs here, the sort 0.05 s."""
    ordered = np.sort(keys)
    first = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct = ordered[first]
    if not counts:
        return distinct
    starts = np.flatnonzero(first)
    return distinct, np.diff(np.append(starts, ordered.size))


def link_weights(
    pairs: np.ndarray,
    n_books: int,
    n_links: int,
    weighting: str = DEFAULT_WEIGHTING,
    book_vectors: np.ndarray | None = None,
) -> LinkWeights:
    """The weights of ``weighting`` measured on a corpus's (book, link) pairs (and, for
    ``coherent``, its books' vectors: (n_books, dim), any scale)."""
    check_weighting(weighting)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keys = _distinct(pairs[:, 0] * max(n_links, 1) + pairs[:, 1])  # distinct (book, link)
    df = np.bincount(keys % max(n_links, 1), minlength=n_links).astype(np.float64)
    idf = np.ones(n_links, dtype=np.float64)
    if weighting in NORMALISED:
        idf = np.log((1.0 + n_books) / (1.0 + df)) + 1.0
    if weighting in NEEDS_VECTORS:
        idf = idf * coherence(keys, n_books, n_links, df, book_vectors) ** 2
    books_with_links = max(1, _distinct(keys // max(n_links, 1)).size)
    return LinkWeights(weighting, idf, float(len(pairs) / books_with_links))


def coherence(
    keys: np.ndarray, n_books: int, n_links: int, df: np.ndarray, book_vectors: np.ndarray | None
) -> np.ndarray:
    """Per link, the length of the mean unit vector of the distinct books linking to it (0 for
    a link no book has). ``keys``: distinct book * n_links + link."""
    import scipy.sparse as sp

    if book_vectors is None:
        raise ConfigError("the coherent weighting needs the model's book vectors")
    vectors = np.asarray(book_vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != n_books:
        raise ConfigError(f"book vectors of shape {vectors.shape} for {n_books} books")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    books, links = np.divmod(keys, max(n_links, 1))
    # (links x books) @ unit vectors: the sum per link in one pass over the pairs (a sort and
    # gather of every pair's vector took 25x as long: 1 s for the full corpus's 733k pairs)
    incidence = sp.csr_matrix(
        (np.ones(keys.size, dtype=np.float32), (links, books)), shape=(n_links, n_books)
    )
    total = np.asarray(incidence @ unit, dtype=np.float64)
    return np.linalg.norm(total, axis=1) / np.maximum(df, 1.0)


def combine(
    positive: Sequence[SparseVector], negative: Sequence[SparseVector] = ()
) -> SparseVector:
    """Qdrant's average_vector rule on sparse vectors: avg(pos) + (avg(pos) - avg(neg)), or
    avg(pos) alone; dimensions summing to zero are dropped."""
    total: dict[int, float] = {}

    def add(vectors: Sequence[SparseVector], scale: float) -> None:
        for indices, values in vectors:
            for index, value in zip(indices, values, strict=True):
                total[index] = total.get(index, 0.0) + scale * value

    add(positive, (2.0 if negative else 1.0) / len(positive))
    if negative:
        add(negative, -1.0 / len(negative))
    indices = sorted(i for i, v in total.items() if v != 0.0)
    return indices, [total[i] for i in indices]
