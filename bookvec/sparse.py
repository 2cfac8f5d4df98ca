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
  the store's IDF modifier on the query side: long link lists weigh less.

No torch, no qdrant here: the indexer only receives (indices, values).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookvec.errors import ConfigError

WEIGHTINGS = ("binary", "tfidf", "bm25")
# Chosen by measurement (`benchmarks/modes.py --sweep`, seed 0, through the store; README
# "Search modes"): same-author recall@10 of sparse search, full-shape synthetic / p15:
# binary+IDF -/0.706, tfidf 0.281/0.773, bm25 0.289/0.755; as hybrid's sparse side bm25 keeps
# its author signal on both corpora, tfidf loses half of it on the synthetic one (0.148).
DEFAULT_WEIGHTING = "bm25"
# Weightings whose query side the store weighs with its IDF modifier.
STORE_IDF = frozenset({"binary", "bm25"})
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
    idf: np.ndarray  # float64 (n_links,): the tfidf weighting's IDF (ones for the others)
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
        is the same elementwise expression; tfidf (a norm per row) goes row by row."""
        if self.weighting == "tfidf" or not rows:
            return [self.vector(row) for row in rows]
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
        else:  # bm25: the row's length is its number of links, repeats counted
            norm = 1.0 - BM25_B + BM25_B * sizes.astype(np.float64) / max(self.avg_len, 1e-12)
            values = tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * norm[owners])
        bounds = np.searchsorted(owners, np.arange(len(rows) + 1)).tolist()
        flat_i, flat_v = indices.tolist(), values.tolist()
        return [(flat_i[a:b], flat_v[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _values(self, indices: np.ndarray, tf: np.ndarray) -> np.ndarray:
        if self.weighting == "binary" or indices.size == 0:
            return np.ones(indices.size, dtype=np.float64)
        if self.weighting == "tfidf":
            values = tf * self.idf[indices]
            return values / np.linalg.norm(values)
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
    pairs: np.ndarray, n_books: int, n_links: int, weighting: str = DEFAULT_WEIGHTING
) -> LinkWeights:
    """The weights of ``weighting`` measured on a corpus's (book, link) pairs."""
    check_weighting(weighting)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keys = _distinct(pairs[:, 0] * max(n_links, 1) + pairs[:, 1])  # distinct (book, link)
    df = np.bincount(keys % max(n_links, 1), minlength=n_links).astype(np.float64)
    idf = np.ones(n_links, dtype=np.float64)
    if weighting == "tfidf":
        idf = np.log((1.0 + n_books) / (1.0 + df)) + 1.0
    books_with_links = max(1, _distinct(keys // max(n_links, 1)).size)
    return LinkWeights(weighting, idf, float(len(pairs) / books_with_links))


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
