"""(book, link) pairs as arrays and matrices, shared by the evaluation's parts (no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from bookvec.errors import InputError

Features = np.ndarray | sp.spmatrix | sp.sparray


def check_pairs(pairs: Any, n_books: int, n_links: int, what: str = "pairs") -> np.ndarray:
    """``pairs`` as an int64 (P, 2) array of in-range (book, link) indices, or InputError."""
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise InputError(f"{what} must be an integer (P, 2) array, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    for col, n, name in ((0, n_books, "book"), (1, n_links, "link")):
        bad = np.flatnonzero((arr[:, col] < 0) | (arr[:, col] >= n))
        if bad.size:
            raise InputError(
                f"{what}: row {bad[0]} has {name} index {arr[bad[0], col]}, outside [0, {n})"
            )
    return arr


def pair_keys(pairs: np.ndarray, n_links: int) -> np.ndarray:
    """One int64 per (book, link) pair: ``book * n_links + link``."""
    return pairs[:, 0].astype(np.int64) * n_links + pairs[:, 1].astype(np.int64)


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.searchsorted(sorted_keys, keys).clip(max=sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def training_pairs(pairs: np.ndarray, held_out_pairs: np.ndarray, n_links: int) -> np.ndarray:
    """``pairs`` without any copy of a held-out pair (what the model was trained on)."""
    if len(held_out_pairs) == 0:
        return pairs
    held = np.unique(pair_keys(held_out_pairs, n_links))
    return pairs[~_member(pair_keys(pairs, n_links), held)]


def book_link_matrix(
    pairs: np.ndarray, n_books: int, n_links: int, *, binary: bool = False
) -> sp.csr_matrix:
    """The (n_books, n_links) float32 matrix of pair counts (1/0 with ``binary``)."""
    data = np.ones(len(pairs), dtype=np.float32)
    matrix = sp.csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(n_books, n_links))
    matrix.sum_duplicates()
    if binary:
        matrix.data[:] = 1.0
    return matrix
