"""Baselines: what a data scientist tries first on the book x link matrix: random vectors,
cosine on binary link vectors, TF-IDF cosine, truncated SVD of TF-IDF, and ALS (``implicit``,
when installed). No torch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bookvec.errors import ConfigError
from bookvec.model.analysis.pairs import Features, book_link_matrix

BASELINES = ("random", "binary_links", "tfidf", "svd", "als")


@dataclass
class Baseline:
    """A baseline's book features (for neighbours) and, when it scores pairs, link factors."""

    name: str
    books: Features
    links: np.ndarray | None = None  # (n_links, d): dot product with ``books`` scores a pair
    seconds: float = 0.0


def random_vectors(n: int, dim: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def tfidf_matrix(counts: sp.csr_matrix) -> sp.csr_matrix:
    """sklearn's TfidfTransformer (smooth idf, sublinear off, rows L2-normalised)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    return sp.csr_matrix(TfidfTransformer().fit_transform(counts), dtype=np.float32)


def implicit_available() -> bool:
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


def baseline_features(
    train_pairs: np.ndarray,
    n_books: int,
    n_links: int,
    *,
    names: Iterable[str] = BASELINES,
    dim: int = 50,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Baseline]:
    """The baselines named (those in ``BASELINES``), built from the training pairs only.

    "als" is left out (with a log line) when the ``implicit`` package is not installed.
    """
    names = list(dict.fromkeys(names))
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ConfigError(f"unknown baseline(s) {sorted(unknown)}; known: {', '.join(BASELINES)}")
    say = log or (lambda message: None)
    counts = book_link_matrix(train_pairs, n_books, n_links)
    out: dict[str, Baseline] = {}
    tfidf = None
    for name in names:
        started = time.perf_counter()
        if name == "random":
            rng_books = random_vectors(n_books, dim, seed)
            out[name] = Baseline(name, rng_books, random_vectors(n_links, dim, seed + 1))
        elif name == "binary_links":
            binary = counts.copy()
            binary.data[:] = 1.0
            out[name] = Baseline(name, binary)
        elif name in ("tfidf", "svd"):
            tfidf = tfidf if tfidf is not None else tfidf_matrix(counts)
            if name == "tfidf":
                out[name] = Baseline(name, tfidf)
            else:
                out[name] = _svd(tfidf, dim, seed)
        elif name == "als":
            if not implicit_available():
                say("als baseline skipped: the `implicit` package is not installed")
                continue
            out[name] = _als(counts, dim, seed)
        out[name].seconds = time.perf_counter() - started
    return out


def _svd(tfidf: sp.csr_matrix, dim: int, seed: int) -> Baseline:
    from sklearn.decomposition import TruncatedSVD

    dim = max(1, min(dim, min(tfidf.shape) - 1))
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=5, random_state=seed)
    books = svd.fit_transform(tfidf).astype(np.float32)  # U * S
    return Baseline("svd", books, np.ascontiguousarray(svd.components_.T, dtype=np.float32))


def _als(counts: sp.csr_matrix, dim: int, seed: int) -> Baseline:
    """implicit's ALS (CPU) on the count matrix: books are users, links items."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's own advice: BLAS threads fight its own
        model = AlternatingLeastSquares(
            factors=dim, iterations=15, regularization=0.05, alpha=1.0, random_state=seed
        )
        model.fit(counts, show_progress=False)
    return Baseline(
        "als",
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
    )


def popularity_links(train_pairs: np.ndarray, n_books: int, n_links: int) -> Baseline:
    """Link prediction's strawman: every book scores a link by how many books link to it."""
    counts = np.bincount(train_pairs[:, 1], minlength=n_links).astype(np.float32)
    return Baseline("popularity", np.ones((n_books, 1), dtype=np.float32), counts[:, None])
