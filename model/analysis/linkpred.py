"""Link prediction: held-out (book, link) pairs against sampled negatives (ROC AUC), and the
rank of each held-out link among all links of its book with the book's other known links
filtered out (MRR, Hits@k; the "filtered" setting of knowledge-graph evaluation). No torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from bookvec.errors import InputError
from bookvec.model.analysis.neighbours import (
    _TARGET_CELLS,
    DEFAULT_K,
    _map_chunks,
    default_threads,
    sample_rows,
)
from bookvec.model.analysis.pairs import _member, check_pairs, pair_keys


def sample_negatives(
    n: int, n_books: int, n_links: int, observed_keys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``n`` uniform (book, link) pairs, none in the sorted unique ``observed_keys``."""
    if observed_keys.size >= n_books * n_links:
        raise InputError("every (book, link) pair is observed: no negatives to sample")
    books = rng.integers(n_books, size=n)
    links = rng.integers(n_links, size=n)
    bad = np.flatnonzero(_member(books * n_links + links, observed_keys))
    while bad.size:
        books[bad] = rng.integers(n_books, size=bad.size)
        links[bad] = rng.integers(n_links, size=bad.size)
        bad = bad[_member(books[bad] * n_links + links[bad], observed_keys)]
    return np.stack([books, links], axis=1)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Rank-based ROC AUC (Mann-Whitney U); ties count one half."""
    scores = np.concatenate([positive, negative]).astype(np.float64)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based; tied scores share their mean rank
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _pair_scores(book_vectors: np.ndarray, link_vectors: np.ndarray, pairs: np.ndarray):
    out = np.empty(len(pairs), dtype=np.float64)
    step = 1 << 18
    for start in range(0, len(pairs), step):
        part = pairs[start : start + step]
        b = np.asarray(book_vectors[part[:, 0]], dtype=np.float32)
        v = np.asarray(link_vectors[part[:, 1]], dtype=np.float32)
        out[start : start + step] = np.einsum("ij,ij->i", b, v)
    return out


def link_ranking(
    book_vectors: np.ndarray,
    link_vectors: np.ndarray,
    held_out_pairs: np.ndarray,
    known_pairs: np.ndarray,
    *,
    k: int = DEFAULT_K,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Rank of each held-out link among all links for its book (dot-product scores), the
    book's other known links (``known_pairs``: training and held-out) left out of the count.

    A tie counts one half (the expected rank under random tie-breaking). Returns MRR and
    Hits@k averaged over the distinct held-out pairs, and how many books they come from.
    """
    n_links = link_vectors.shape[0]
    held = np.unique(pair_keys(held_out_pairs, n_links))
    if held.size == 0:
        raise InputError("no held-out pairs to rank")
    held_books, held_links = held // n_links, held % n_links
    known = sp.csr_matrix(
        (np.ones(len(known_pairs), dtype=bool), (known_pairs[:, 0], known_pairs[:, 1])),
        shape=(book_vectors.shape[0], n_links),
    )
    books, first, per_book = np.unique(held_books, return_index=True, return_counts=True)
    occurrence = np.arange(held.size) - np.repeat(first, per_book)  # j-th held-out of its book
    table = np.ascontiguousarray(np.asarray(link_vectors, dtype=np.float32).T)
    threads = threads or default_threads()
    chunk = chunk_size or max(1, min(len(books), _TARGET_CELLS // max(n_links, 1) // threads))
    rank = np.empty(held.size, dtype=np.float64)

    def work(start: int, stop: int) -> None:
        part = books[start:stop]
        scores = np.asarray(book_vectors[part], dtype=np.float32) @ table
        lo, hi = first[start], first[stop - 1] + per_book[stop - 1]
        row = np.searchsorted(part, held_books[lo:hi])
        mine = scores[row, held_links[lo:hi]]
        sub = known[part].tocoo()
        scores[sub.row, sub.col] = -np.inf
        occ = occurrence[lo:hi]
        for j in range(int(occ.max()) + 1):  # each book's j-th held-out link, all books at once
            which = np.flatnonzero(occ == j)
            rows = scores if j == 0 else scores[row[which]]  # j == 0: every row, in order
            threshold = mine[which][:, None]
            above = np.count_nonzero(rows > threshold, axis=1)
            ties = np.count_nonzero(rows == threshold, axis=1)
            rank[lo + which] = 1.0 + above + ties / 2.0

    _map_chunks(work, len(books), chunk, threads)
    return {
        "mrr": float((1.0 / rank).mean()),
        f"hits@{k}": float((rank <= k).mean()),
        "ranked": int(held.size),
        "books": int(len(books)),
    }


def link_prediction(
    book_vectors: np.ndarray,
    link_vectors: np.ndarray,
    held_out_pairs: np.ndarray,
    observed_pairs: np.ndarray,
    *,
    k: int = DEFAULT_K,
    n_negatives: int | None = None,
    max_ranked: int | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Held-out pairs against sampled negatives (AUC) and ranked among all links (MRR, Hits@k).

    ``observed_pairs`` are all known pairs (training and held-out, duplicates allowed):
    negatives are drawn uniformly among the other (book, link) pairs, seeded, one per
    held-out pair unless ``n_negatives`` says otherwise. The ranking (a product with every
    link) covers a seeded sample of ``max_ranked`` held-out pairs, or all when None.
    """
    n_books, n_links = book_vectors.shape[0], link_vectors.shape[0]
    held = check_pairs(held_out_pairs, n_books, n_links, "held-out pairs")
    observed = check_pairs(observed_pairs, n_books, n_links, "observed pairs")
    held_keys = np.unique(pair_keys(held, n_links))
    if held_keys.size == 0:
        raise InputError("no held-out pairs: link prediction needs a held-out split")
    held = np.stack([held_keys // n_links, held_keys % n_links], axis=1)
    observed_keys = np.union1d(pair_keys(observed, n_links), held_keys)
    rng = np.random.default_rng(seed)
    negatives = sample_negatives(n_negatives or len(held), n_books, n_links, observed_keys, rng)
    auc = roc_auc(
        _pair_scores(book_vectors, link_vectors, held),
        _pair_scores(book_vectors, link_vectors, negatives),
    )
    known = np.stack([observed_keys // n_links, observed_keys % n_links], axis=1)
    ranked = held[sample_rows(len(held), max_ranked, seed)]
    ranking = link_ranking(book_vectors, link_vectors, ranked, known, k=k, threads=threads)
    return {"auc": auc, **ranking, "held_out": int(len(held)), "negatives": int(len(negatives))}
