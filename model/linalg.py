"""The vector arithmetic everything shares: one normalise, one exact top-k (numpy; scipy only
for sparse input). No torch: training, the analysis, the runtime and the library use these."""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-12  # a norm below this is a zero row: it stays zero
_BLOCK = 64  # columns per block in the exact top-k (see ``top_k_rows``)


def normalise(features: Any, *, dtype: Any = np.float32) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero), as ``dtype``; sparse stays sparse
    CSR. A 1-D vector is one row."""
    if not isinstance(features, np.ndarray) and hasattr(features, "tocsr"):
        import scipy.sparse as sp

        matrix = sp.csr_matrix(features, dtype=dtype, copy=True)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        matrix.data *= np.repeat(scale, np.diff(matrix.indptr)).astype(dtype)
        return matrix
    dense = np.asarray(features, dtype=dtype)
    norms = np.linalg.norm(dense, axis=-1, keepdims=True)
    return dense / np.maximum(norms, EPS)


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores of each row, largest first (exact; ties in
    column order).

    Scanning for the top k of 37k numbers with ``argpartition`` costs about as much as the
    matrix product that made them. Instead: the maximum of each block of 64 columns, the k
    blocks with the largest maxima (the top k elements can only lie in those: any other block
    is beaten by k block maxima), then ``argpartition`` over those k x 64 candidates.
    """
    rows, n = scores.shape
    k = min(k, n)
    if k <= 0:
        return np.zeros((rows, 0), dtype=np.int64)
    if k == n:
        top = np.tile(np.arange(n), (rows, 1))
    elif n <= k * _BLOCK * 4:
        top = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    else:
        maxima = np.maximum.reduceat(scores, np.arange(0, n, _BLOCK), axis=1)
        n_blocks = maxima.shape[1]
        best = np.argpartition(maxima, n_blocks - k, axis=1)[:, n_blocks - k :]
        columns = (best[:, :, None] * _BLOCK + np.arange(_BLOCK)).reshape(rows, -1)
        outside = columns >= n  # the last block may be short
        candidates = np.take_along_axis(scores, np.minimum(columns, n - 1), axis=1)
        candidates[outside] = -np.inf
        pick = np.argpartition(candidates, candidates.shape[1] - k, axis=1)[:, -k:]
        top = np.take_along_axis(columns, pick, axis=1)
    top = np.sort(top, axis=1)  # column order first, so that the stable sort breaks ties by it
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest of a 1-D array, largest first (ties in index order)."""
    return top_k_rows(np.asarray(scores)[None, :], k)[0]
