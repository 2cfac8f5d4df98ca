"""2-D maps of the learned vectors: UMAP or t-SNE (cosine, seeded), cached in the bundle.

Neighbours are found exactly (blocks of a matrix product, then a small compiled top-k scan)
and handed to the reducer, so a map depends only on the vectors and the seed, and no approximate
index has to be compiled first (pynndescent's JIT alone costs ~50 s in a fresh process).

The reducers come from the optional `maps` extra (umap-learn, which brings numba, and openTSNE);
nothing here imports them before a map is asked for.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import numpy as np

from bookvec.errors import BookvecError, ConfigError
from bookvec.model.linalg import normalise, top_k, top_k_rows
from bookvec.outfiles import write_atomic

if TYPE_CHECKING:
    from bookvec.model.bundle import Bundle

Method = Literal["umap", "tsne"]
Kind = Literal["books", "links"]
METHODS: tuple[str, ...] = ("umap", "tsne")
KINDS: tuple[str, ...] = ("books", "links")
EXTRA_HINT = "install it with: pip install 'bookvec[maps]'"

UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
TSNE_PERPLEXITY = 30.0

Log = Callable[[str], None]


class MissingExtraError(BookvecError):
    """An optional dependency (the `maps` extra) is not installed."""


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingExtraError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"maps need {package or module}, which is not installed", hint=EXTRA_HINT
        ) from None


# --- nearest neighbours (exact, cosine) -------------------------------------------------------


def exact_knn(vectors: np.ndarray, k: int, *, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of each row by cosine (itself first): (indices int64, distances).

    ``vectors`` must be L2-normalised; distance = 1 - cosine, clipped at 0.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n)
    idx = np.empty((n, k), dtype=np.int64)
    top = np.empty((n, k), dtype=np.float32)
    buffer = np.empty((min(block, n), n), dtype=np.float32)  # reused: no page faults per block
    for start in range(0, n, block):
        rows = x[start : start + block]
        sims = np.matmul(rows, x.T, out=buffer[: len(rows)])
        best = top_k_rows(sims, k)
        idx[start : start + len(rows)] = best
        top[start : start + len(rows)] = np.take_along_axis(sims, best, axis=1)
    return idx, np.maximum(1.0 - top, 0.0).astype(np.float32)


def nearest(vectors: np.ndarray, i: int, k: int) -> list[tuple[int, float]]:
    """The ``k`` rows nearest to row ``i`` by cosine, itself excluded: [(row, cosine)]."""
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(vectors[i], dtype=np.float32)
    sims[i] = -np.inf
    k = min(k, len(sims) - 1)
    if k <= 0:
        return []
    return [(int(j), float(sims[j])) for j in top_k(sims, k)]


# --- reductions --------------------------------------------------------------------------------


def reduce_2d(
    vectors: np.ndarray, *, method: str = "umap", seed: int = 0, log: Log | None = None
) -> np.ndarray:
    """Cosine-faithful 2-D coordinates (float32, shape (n, 2)) of L2-normalised ``vectors``."""
    if method not in METHODS:
        raise ConfigError(f"unknown map method {method!r}", hint="use umap or tsne")
    n = len(vectors)
    if n < 4:
        raise ConfigError(f"a map needs at least 4 points, this set has {n}")
    say = log or (lambda message: None)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/sklearn/numba chatter; errors still raise
        if method == "umap":
            umap = require("umap", "umap-learn")
            k = min(UMAP_NEIGHBOURS, n - 1)
            started = time.perf_counter()
            knn_idx, knn_dist = exact_knn(x, k)
            say(f"  {k} nearest neighbours of {n:,} points: {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            reducer = umap.UMAP(
                n_neighbors=k,
                min_dist=UMAP_MIN_DIST,
                metric="cosine",
                random_state=seed,
                precomputed_knn=(knn_idx, knn_dist, None),
                n_components=2,
            )
            coords = reducer.fit_transform(x)
            say(f"  UMAP layout: {time.perf_counter() - started:.1f} s")
        else:
            coords = _tsne(x, seed, say)
    return np.asarray(coords, dtype=np.float32)


def _tsne(x: np.ndarray, seed: int, say: Log) -> np.ndarray:
    """openTSNE (FFT-accelerated above 10,000 points) on the exact cosine kNN graph, PCA
    initialisation, the usual early exaggeration then 500 iterations."""
    require("openTSNE", "openTSNE")
    from openTSNE import TSNEEmbedding, affinity, initialization
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    n = len(x)
    perplexity = min(TSNE_PERPLEXITY, (n - 2) / 3.0)
    k = min(n - 2, int(3.0 * perplexity))
    started = time.perf_counter()
    idx, dist = exact_knn(x, k + 1)
    # drop each point itself (the first column, save exact duplicates) from its own neighbours
    keep = idx != np.arange(n)[:, None]
    keep[keep.sum(axis=1) > k, -1] = False
    idx, dist = idx[keep].reshape(n, k), dist[keep].reshape(n, k)
    say(f"  {k} nearest neighbours of {n:,} points: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    threads = 1 if n < 10_000 else (os.cpu_count() or 1)  # small: threads cost more than they give
    affinities = affinity.PerplexityBasedNN(
        knn_index=PrecomputedNeighbors(idx, dist.astype(np.float64)),
        perplexity=perplexity,
        n_jobs=threads,
        random_state=seed,
    )
    init = initialization.pca(x, random_state=seed)
    embedding = TSNEEmbedding(init, affinities, n_jobs=threads, random_state=seed)
    embedding = embedding.optimize(n_iter=250, exaggeration=12, momentum=0.5)
    embedding = embedding.optimize(n_iter=500, momentum=0.8)
    say(f"  t-SNE layout: {time.perf_counter() - started:.1f} s")
    return np.asarray(embedding)


# --- the cache in the bundle -------------------------------------------------------------------


def cache_path(bundle: Bundle, kind: str, method: str, seed: int, extra_key: str = "") -> Path:
    """Where the coordinates of one map live: a cache beside the bundle's files, not in its
    manifest (the bundle never changes, so neither do they). ``extra_key``: the
    ``points_key`` of the points mapped with the bundle's (the store's upserted books)."""
    suffix = f"_u{extra_key}" if extra_key else ""
    return bundle.path / f"map_{method}_{kind}_seed{seed}{suffix}.npy"


def points_key(titles: Sequence[str], vectors: np.ndarray) -> str:
    """A short hash of extra points (titles and vectors): their map is cached under it, so a
    book upserted, changed or deleted since is never drawn at stale coordinates."""
    digest = hashlib.sha256()
    for title in titles:
        digest.update(title.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def map_coordinates(
    bundle: Bundle,
    *,
    kind: str = "books",
    method: str = "umap",
    seed: int = 0,
    recompute: bool = False,
    log: Log | None = None,
    extra: tuple[Sequence[str], np.ndarray] | None = None,
) -> tuple[np.ndarray, bool]:
    """The 2-D coordinates of the bundle's book (or link) vectors, and whether they came from
    the cache. Computed once per (kind, method, seed) and kept in the bundle directory.

    ``extra``: (titles, vectors) of more points mapped with the books (the store's upserted
    books), their rows after the bundle's. The reducer is not kept, so they cannot be placed
    into the cached layout: the whole set is reduced again once per (kind, method, seed,
    ``points_key``), and the one cache of the previous extra points is replaced; the bundle's
    own map (no extra points) stays as it is."""
    if kind not in KINDS:
        raise ConfigError(f"unknown map kind {kind!r}", hint="use books or links")
    say = log or (lambda message: None)
    vectors = np.asarray(bundle.book_vectors if kind == "books" else bundle.link_vectors)
    key = ""
    if extra is not None and len(extra[0]):
        key = points_key(extra[0], extra[1])
        vectors = np.vstack([vectors, np.asarray(extra[1], dtype=vectors.dtype)])
    path = cache_path(bundle, kind, method, seed, key)
    if not recompute and path.is_file():
        try:
            coords = np.load(path)
        except (OSError, ValueError):
            coords = None
        if coords is not None and coords.shape == (len(vectors), 2) and np.isfinite(coords).all():
            say(f"Using the cached {method.upper()} map of {len(vectors):,} {kind} ({path.name})")
            return coords.astype(np.float32, copy=False), True
    cacheable = os.access(path.parent, os.W_OK)  # checked before the minutes of computing
    if not cacheable:
        warnings.warn(
            f"the model directory {path.parent} is not writable (read-only?): the map is "
            "computed but not cached, so the next one computes it again",
            stacklevel=2,
        )
    say(f"{method.upper()} of {len(vectors):,} {kind[:-1]} vectors (cosine, seed {seed})...")
    started = time.perf_counter()
    coords = reduce_2d(vectors, method=method, seed=seed, log=say)
    if cacheable:
        if key:  # the map of earlier upserted books is stale for good
            for stale in path.parent.glob(f"map_{method}_{kind}_seed{seed}_u*.npy"):
                if stale != path:
                    stale.unlink(missing_ok=True)
        _save_cache(path, coords, started, say)
    return coords, False


def _save_cache(path: Path, coords: np.ndarray, started: float, say: Log) -> None:
    buffer = io.BytesIO()
    np.save(buffer, coords)
    try:
        write_atomic(path, buffer.getvalue(), durable=False)  # a cache: a crash may lose it
        say(f"Map computed in {time.perf_counter() - started:.1f} s, cached as {path.name}")
    except OSError as exc:
        say(f"Map computed in {time.perf_counter() - started:.1f} s (not cached: {exc})")


# --- genres for colouring ----------------------------------------------------------------------


def top_genres(genres: Sequence[Sequence[str] | None], n: int) -> list[tuple[str, int]]:
    """The ``n`` genres held by most books: [(genre, books)], most first, ties by name."""
    counts: Counter[str] = Counter()
    for book_genres in genres:
        counts.update(set(book_genres or ()))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[: max(n, 0)]


def genre_labels(genres: Sequence[Sequence[str] | None], top: Sequence[str]) -> list[str | None]:
    """Each book's colour: the first of its genres (infobox order) among ``top``, else None."""
    wanted = set(top)
    labels: list[str | None] = []
    for book_genres in genres:
        labels.append(next((g for g in book_genres or () if g in wanted), None))
    return labels


# --- planted structure (tests and benchmarks) --------------------------------------------------


def planted_clusters(
    n: int, *, dim: int = 50, n_genres: int = 8, spread: float = 0.12, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` L2-normalised vectors around ``n_genres`` random directions (Zipf-like sizes):
    (vectors float32 (n, dim), planted genre int64 (n,))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_genres, dim))
    centres = normalise(centres)
    weights = 1.0 / np.arange(1, n_genres + 1) ** 0.7
    labels = rng.choice(n_genres, size=n, p=weights / weights.sum())
    vectors = centres[labels] + rng.normal(scale=spread, size=(n, dim))
    return normalise(vectors), labels.astype(np.int64)
