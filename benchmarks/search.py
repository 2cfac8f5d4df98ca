"""Benchmark the vector store side by side in one run: bookvec's search path on Qdrant Edge,
numpy exact search (the limit) and qdrant-client local mode, on the same points and queries.

    python benchmarks/search.py                          # synthetic clusters, 37,020 and 300,000
    python benchmarks/search.py --model current          # + the current trained bundle
    python benchmarks/search.py --sizes 37020 --json     # one quick size, one JSON object
    python benchmarks/search.py --recall-curve           # + recall@10 vs hnsw_ef at the largest

Datasets: `synthetic` is planted clusters (10 genres, 50-d, a full book payload per point);
`model` is a trained bundle's book vectors and payloads; to reach sizes above the bundle's own
count, every extra point is a copy of a book moved off it by Gaussian noise of the typical
nearest-neighbour distance (its genres kept), so the points keep the real vectors' shape.

Per dataset and size: upsert points/s into Edge (bookvec's `replace_all`: checks, payload,
batched writes; loading separate from the HNSW build that follows above ~51k points); p50/p95
latency of `EdgeStore.search` unfiltered and genre-filtered; recall@10 against numpy exact
search (the same filter); numpy's own latency (per-genre matrices precomputed: the fastest
exact search numpy can do); qdrant-client local mode through the same `ServerStore` code a
server user runs. Local mode is pure Python and scans every point per filtered query, so at
300k it runs only a few queries (`--local-queries`); the output says how many.
Then `bookvec search` end to end as a user runs it (process start to output; median wall).

Headline keys at the top of --json come from the first dataset's smallest size, except
`recall_at_10`: the worst recall@10 over every run (that is the largest size).
Machine: 2 shared cores; timings move with the load of other processes (reported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# numpy on one thread, like one Edge query on one segment (on 2 shared cores, threaded BLAS
# for a 37k x 50 product mostly waits for the other thread).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from bookvec.indexer import BookFilter, BookPoint, IndexOptions, open_store, point_id  # noqa: E402
from bookvec.settings import QdrantSettings  # noqa: E402

warnings.filterwarnings("ignore", message="Local mode is not recommended")

GENRES = [
    "fantasy",
    "science fiction",
    "crime",
    "romance",
    "historical",
    "poetry",
    "horror",
    "satire",
    "thriller",
    "young adult",
]
COUNTRIES = ["united kingdom", "united states", "france", "russia", "germany", None]
K = 10
EF_CURVE = (16, 32, 64, 128, 256, 512)


@dataclass
class Dataset:
    name: str
    titles: list[str]
    vectors: np.ndarray  # unit float32 (n, d)
    payloads: list[dict]
    genre_of: np.ndarray  # first genre index per point (for the filter queries)
    genre_names: list[str]
    sparse: list | None = None  # (indices, values) per point: the links' sparse vectors

    @property
    def n(self) -> int:
        return len(self.titles)

    def points(self):
        sparse = self.sparse or [None] * self.n
        for title, vector, payload, links in zip(
            self.titles, self.vectors, self.payloads, sparse, strict=True
        ):
            yield BookPoint(title=title, vector=vector, payload=payload, sparse=links or None)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, seed: int = 0, dim: int = 50) -> Dataset:
    """Planted clusters: 10 genre centroids, 2,000 author offsets, noise."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((len(GENRES), dim))
    authors = rng.standard_normal((2000, dim))
    genre = rng.integers(len(GENRES), size=n)
    author = rng.integers(len(authors), size=n)
    vectors = unit(3.0 * centroids[genre] + authors[author] + rng.standard_normal((n, dim)))
    second = rng.random(n) < 0.3
    other = (genre + 1 + rng.integers(len(GENRES) - 1, size=n)) % len(GENRES)
    years = rng.integers(1800, 2020, size=n)
    countries = rng.integers(len(COUNTRIES), size=n)
    payloads = []
    for i in range(n):
        genres = [GENRES[genre[i]]] + ([GENRES[other[i]]] if second[i] else [])
        name = f"Author {author[i]}"
        payloads.append(
            {
                "genres": genres,
                "author": name,
                "authors": [name],
                "country": COUNTRIES[countries[i]],
                "language": "english",
                "publisher": None,
                "year": int(years[i]),
                "source": "bundle",
                "content_hash": f"{i:032x}",
            }
        )
    titles = [f"Synthetic Book {i:06d}" for i in range(n)]
    return Dataset(
        "synthetic",
        titles,
        vectors,
        payloads,
        genre,
        list(GENRES),
        links(rng, genre, author, vectors),
    )


def links(rng, genre: np.ndarray, author: np.ndarray, vectors, per_book: int = 21) -> list:
    """Sparse link vectors shaped like the corpus (~21 links a book, 42k pages): the author's
    page, 6 pages of the genre's 400, the rest Zipf over all pages; the default weighting
    (coherent: from the points' vectors too)."""
    from bookvec.sparse import DEFAULT_WEIGHTING, link_weights

    n, n_pages = len(genre), 42_000
    rows = [np.stack([np.arange(n), author], axis=1)]
    genre_pages = 2000 + genre[:, None] * 400 + rng.integers(400, size=(n, 6))
    rows.append(np.stack([np.repeat(np.arange(n), 6), genre_pages.ravel()], axis=1))
    zipf = np.minimum(rng.zipf(1.3, size=(n, per_book - 7)) + 6000, n_pages - 1)
    rows.append(np.stack([np.repeat(np.arange(n), per_book - 7), zipf.ravel()], axis=1))
    pairs = np.concatenate(rows)
    weights = link_weights(pairs, n, n_pages, DEFAULT_WEIGHTING, vectors)
    return list(weights.book_vectors(pairs, n))


def from_model(ref: str, n: int, seed: int = 0) -> Dataset:
    """A bundle's books; above its count, jittered copies of them (see the module doc)."""
    from bookvec.library.actions import bundle_points
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None if ref == "current" else ref)
    from bookvec.library.actions import bundle_link_weights
    from bookvec.sparse import DEFAULT_WEIGHTING

    base = list(bundle_points(bundle, bundle_link_weights(bundle, DEFAULT_WEIGHTING)))
    sparse = [p.sparse for p in base]
    vectors = unit(np.asarray([p.vector for p in base], dtype=np.float32))
    titles = [p.title for p in base]
    payloads = [dict(p.payload) for p in base]
    rng = np.random.default_rng(seed)
    if n > len(base):
        sample = rng.choice(len(base), size=min(500, len(base)), replace=False)
        cos = vectors[sample] @ vectors.T
        cos[np.arange(len(sample)), sample] = -1.0
        nn_dist = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cos.max(axis=1)))
        sigma = float(np.median(nn_dist)) / np.sqrt(vectors.shape[1])
        extra = n - len(base)
        source = rng.integers(len(base), size=extra)
        noise = rng.standard_normal((extra, vectors.shape[1])).astype(np.float32) * sigma
        vectors = np.concatenate([vectors, unit(vectors[source] + noise)])
        for j, s in enumerate(source):
            sparse.append(sparse[s])
            titles.append(f"{titles[s]} (copy {j})")
            payloads.append({**payloads[s], "content_hash": f"c{j:031x}"})
    else:
        vectors, titles, payloads, sparse = vectors[:n], titles[:n], payloads[:n], sparse[:n]
    counts: dict[str, int] = {}
    for payload in payloads:
        for genre in payload.get("genres") or []:
            counts[genre] = counts.get(genre, 0) + 1
    top = [g for g, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:10]]
    index = {g: i for i, g in enumerate(top)}
    first = [next((index[g] for g in p.get("genres") or [] if g in index), -1) for p in payloads]
    name = f"model {bundle.model_id}"
    return Dataset(name, titles, vectors, payloads, np.array(first), top, sparse)


# --- measuring -----------------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return round(float(np.percentile(ms, 50)), 4), round(float(np.percentile(ms, 95)), 4)


def timed(fn, queries) -> tuple[list[float], list]:
    times, results = [], []
    for query in queries:
        start = time.perf_counter()
        results.append(fn(*query))
        times.append(time.perf_counter() - start)
    return times, results


class Exact:
    """numpy exact cosine search. `top`: the whole matrix product, then the genre mask (what
    exact filtered search costs); `top_prefiltered`: each genre's rows copied out beforehand
    (a per-genre index built ahead: the least work exact search can do)."""

    def __init__(self, data: Dataset) -> None:
        self.matrix = data.vectors
        member = [set(p.get("genres") or []) for p in data.payloads]
        self.masks, self.by_genre = {}, {}
        for genre in data.genre_names:
            mask = np.array([genre in m for m in member])
            rows = np.flatnonzero(mask)
            self.masks[genre] = mask
            self.by_genre[genre] = (rows, np.ascontiguousarray(self.matrix[rows]))

    @staticmethod
    def _best(scores: np.ndarray) -> np.ndarray:
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best], kind="stable")]

    def top(self, query: np.ndarray, genre: str | None) -> np.ndarray:
        scores = self.matrix @ query
        if genre is not None:
            scores = np.where(self.masks[genre], scores, -np.inf)
        return self._best(scores)

    def top_prefiltered(self, query: np.ndarray, genre: str) -> np.ndarray:
        rows, matrix = self.by_genre[genre]
        return rows[self._best(matrix @ query)]


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return round(hits / sum(len(t) for t in truth), 4)


def build_edge(data: Dataset, root: Path, options: IndexOptions) -> tuple[object, dict]:
    store = open_store(QdrantSettings(), path=root)
    marks: list[float] = []
    start = time.perf_counter()
    store.replace_all(
        data.points(),
        vector_size=data.vectors.shape[1],
        model_version="benchmark",
        progress=lambda n: marks.append(time.perf_counter()),
        options=options,
    )
    total = time.perf_counter() - start
    loaded = marks[-1] - start
    info = store.info()
    return store, {
        "edge_upsert_points_per_s": round(data.n / loaded),
        "edge_load_s": round(loaded, 2),
        "edge_index_build_s": round(total - loaded, 2),  # optimize (HNSW) + flush
        "edge_indexed_vectors": info.indexed_vectors,
    }


def raw_edge(data: Dataset, path: Path) -> dict:
    """Where a bulk load's time goes: building qdrant_edge.Point objects (payload conversion,
    Python) and Edge's own insert of ready points (Rust, 4 payload indexes)."""
    import qdrant_edge as edge

    from bookvec.indexer.edge import _create
    from bookvec.indexer.points import batched, prepare_batch

    items = [i for b in batched(data.points()) for i in prepare_batch(b, data.vectors.shape[1])]
    start = time.perf_counter()
    points = [edge.Point(i.id, i.vector, i.payload) for i in items]
    convert = time.perf_counter() - start
    shard = _create(path, data.vectors.shape[1], IndexOptions())
    start = time.perf_counter()
    for i in range(0, len(points), 2048):
        shard.update(edge.UpdateOperation.upsert_points(points[i : i + 2048]))
    insert = time.perf_counter() - start
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    return {
        "edge_point_conversion_us": round(convert / data.n * 1e6, 1),
        "edge_insert_only_points_per_s": round(data.n / insert),
    }


def edge_floor(store, sparse_of):
    """Edge's own part of a hybrid search: the two sides' candidate lists in one batch, as
    the store asks for them (its prefetch, the query's sparse cut), with no bookvec code
    around it: no hybrid search through Edge can take less."""
    import qdrant_edge as edge

    from bookvec.indexer import filters
    from bookvec.indexer.hybrid import SPARSE

    _, shard = store._require()
    spec = store.hybrid

    def search(vector, genre):
        flt = BookFilter(genres_any=(genre,)) if genre else None
        indices, values = sparse_of[id(vector)]
        sparse = spec.query_sparse(([int(i) for i in indices], [float(x) for x in values]))
        sides = [
            edge.QueryRequest(
                limit=spec.prefetch,
                query=edge.Query.Nearest([float(x) for x in vector]),
                filter=filters.to_edge(flt),
                params=store._params_for(flt),
                with_payload=False,
                with_vector=False,
            ),
            edge.QueryRequest(
                limit=spec.prefetch,
                query=edge.Query.Nearest(edge.SparseVector(*sparse), using=SPARSE),
                filter=filters.to_edge(flt),
                with_payload=False,
                with_vector=False,
            ),
        ]
        return shard.query_batch(edge.QueryBatchRequest(sides))

    return search


def build_local(data: Dataset):
    from qdrant_client import QdrantClient

    store = open_store(QdrantSettings(), client=QdrantClient(":memory:"))
    start = time.perf_counter()
    store.replace_all(data.points(), vector_size=data.vectors.shape[1], model_version="benchmark")
    return store, round(data.n / (time.perf_counter() - start))


def run_one(data: Dataset, args, workdir: Path) -> dict:
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(np.flatnonzero(data.genre_of >= 0), size=args.queries, replace=False)
    queries = [(data.vectors[i], data.genre_names[data.genre_of[i]]) for i in picks]
    ids = [point_id(t) for t in data.titles]
    exact = Exact(data)
    out: dict = {"dataset": data.name, "points": data.n, "queries": args.queries}

    def edge_search(vector, genre):
        flt = BookFilter(genres_any=(genre,)) if genre else None
        return [h.id for h in edge.search(vector, limit=K, filter=flt)]

    def numpy_search(vector, genre):
        return exact.top(vector, genre)

    home = workdir / f"home-{data.name.split()[0]}-{data.n}"
    from bookvec.library.actions import sparse_options
    from bookvec.sparse import DEFAULT_WEIGHTING

    edge, built = build_edge(data, home / "store", sparse_options(DEFAULT_WEIGHTING, **args.index))
    out.update(built)
    out.update(raw_edge(data, workdir / "raw"))
    for label, genre_of in (("unfiltered", lambda g: None), ("filtered", lambda g: g)):
        qs = [(v, genre_of(g)) for v, g in queries]
        timed(edge_search, qs)  # once untimed: the shard's pages in memory, as in a warm server
        t_edge, found = timed(edge_search, qs)
        t_numpy, best = timed(numpy_search, qs)
        truth = [[ids[i] for i in b] for b in best]
        prefix = "" if label == "unfiltered" else "filtered_"
        out[f"edge_{prefix}p50_ms"], out[f"edge_{prefix}p95_ms"] = percentiles(t_edge)
        out[f"numpy_{prefix}p50_ms"], out[f"numpy_{prefix}p95_ms"] = percentiles(t_numpy)
        out[f"recall_at_10_{label}"] = recall(found, truth)
        if label == "filtered":
            t_pre, _ = timed(exact.top_prefiltered, qs)
            out["numpy_prefiltered_p50_ms"] = percentiles(t_pre)[0]
    out["recall_at_10"] = min(out["recall_at_10_unfiltered"], out["recall_at_10_filtered"])

    if args.recall_curve and data.n == max(args.sizes):
        out["recall_curve"] = curve(edge, data, queries, ids, exact)

    # Hybrid (the default mode): the book's dense and sparse vectors, Qdrant's fusion.
    vectors = [q[0] for q in queries]
    sparse_of = {id(v): data.sparse[int(i)] for v, i in zip(vectors, picks, strict=True)}

    def hybrid_search(vector, genre):
        flt = BookFilter(genres_any=(genre,)) if genre else None
        hits = edge.search(vector, limit=K, filter=flt, sparse=sparse_of[id(vector)], mode="hybrid")
        return [h.id for h in hits]

    floor = edge_floor(edge, sparse_of)
    for label, genre_of in (("unfiltered", lambda g: None), ("filtered", lambda g: g)):
        qs = [(v, genre_of(g)) for v, g in queries]
        timed(hybrid_search, qs)
        t_hybrid, _ = timed(hybrid_search, qs)
        t_floor, _ = timed(floor, qs)
        prefix = "" if label == "unfiltered" else "filtered_"
        out[f"hybrid_{prefix}p50_ms"], out[f"hybrid_{prefix}p95_ms"] = percentiles(t_hybrid)
        out[f"hybrid_edge_floor_{prefix}p50_ms"] = percentiles(t_floor)[0]
    # The host moves every figure; these ratios, measured side by side, move less.
    out["hybrid_vs_dense_filtered_ratio"] = round(
        out["hybrid_filtered_p50_ms"] / out["edge_filtered_p50_ms"], 2
    )

    title = data.titles[int(picks[0])]
    genre = data.genre_names[data.genre_of[int(picks[0])]]
    t_like, _ = timed(lambda t: edge.search_like(t, limit=K, mode="dense"), [(title,)] * 50)
    out["edge_search_like_p50_ms"] = percentiles(t_like)[0]
    t_like, _ = timed(lambda t: edge.search_like(t, limit=K, mode="hybrid"), [(title,)] * 50)
    out["hybrid_search_like_p50_ms"] = percentiles(t_like)[0]
    edge.close()
    out.update(cli_timing(home, title, genre, args.cli_runs))

    if not args.skip_local:
        n_local = args.local_queries or (20 if data.n <= 50_000 else 3)
        local, out["local_upsert_points_per_s"] = build_local(data)

        def local_search(vector, genre):
            flt = BookFilter(genres_any=(genre,)) if genre else None
            return [h.id for h in local.search(vector, limit=K, filter=flt)]

        out["local_queries"] = n_local
        t_local, _ = timed(local_search, [(v, None) for v, _ in queries[:n_local]])
        out["local_p50_ms"], out["local_p95_ms"] = percentiles(t_local)
        t_local, _ = timed(local_search, queries[:n_local])
        out["local_filtered_p50_ms"], out["local_filtered_p95_ms"] = percentiles(t_local)
        out["edge_vs_local_filtered_speedup"] = round(
            out["local_filtered_p50_ms"] / out["edge_filtered_p50_ms"], 1
        )
        local.close()
    out["edge_vs_numpy_filtered_ratio"] = round(
        out["edge_filtered_p50_ms"] / out["numpy_filtered_p50_ms"], 2
    )
    shutil.rmtree(home, ignore_errors=True)
    return out


def curve(edge, data: Dataset, queries, ids, exact: Exact) -> list[dict]:
    """recall@10 and p50 for each hnsw_ef on this store (the others' settings unchanged)."""
    rows = []
    truth_all = [[ids[i] for i in exact.top(v, None)] for v, _ in queries]
    truth_genre = [[ids[i] for i in exact.top(v, g)] for v, g in queries]
    for ef in EF_CURVE:
        edge.set_hnsw_ef(ef)
        row = {"hnsw_ef": ef}
        for label, qs, truth in (
            ("unfiltered", [(v, None) for v, _ in queries], truth_all),
            ("filtered", queries, truth_genre),
        ):

            def search(vector, genre):
                flt = BookFilter(genres_any=(genre,)) if genre else None
                return [h.id for h in edge.search(vector, limit=K, filter=flt)]

            times, found = timed(search, qs)
            row[f"recall_at_10_{label}"] = recall(found, truth)
            row[f"p50_ms_{label}"] = percentiles(times)[0]
        rows.append(row)
    edge.set_hnsw_ef(None)
    return rows


def cli_timing(home: Path, title: str, genre: str, runs: int) -> dict:
    """`bookvec search` as a user runs it: a new process each time; median wall of `runs`."""
    script = Path(sys.executable).with_name("bookvec")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bookvec.cli.main"]
    env = {**os.environ, "BOOKVEC_HOME": str(home), "COLUMNS": "120"}
    env.pop("BOOKVEC_QDRANT_URL", None)
    out = {}
    for key, extra in (("cli_search_wall_s", []), ("cli_search_filtered_wall_s", ["-g", genre])):
        walls = []
        for _ in range(runs + 1):  # the first run warms the page cache and is dropped
            start = time.perf_counter()
            subprocess.run(
                [*command, "search", title, "--exact", *extra],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            walls.append(time.perf_counter() - start)
        out[key] = round(statistics.median(walls[1:]), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="37020,300000", help="comma-separated point counts")
    parser.add_argument("--model", default=None, help="also a trained bundle: id, dir or current")
    parser.add_argument("--no-synthetic", action="store_true", help="only the --model dataset")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--local-queries", type=int, default=None, help="default 20; 3 at >50k")
    parser.add_argument("--skip-local", action="store_true", help="leave out qdrant-client local")
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--recall-curve", action="store_true", help="recall@10 vs hnsw_ef")
    parser.add_argument("--hnsw-m", type=int, default=IndexOptions().hnsw_m)
    parser.add_argument("--hnsw-ef-construct", type=int, default=IndexOptions().hnsw_ef_construct)
    parser.add_argument("--hnsw-ef", type=int, default=IndexOptions().hnsw_ef)
    parser.add_argument("--quantization", default="none", choices=["none", "int8"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.index = {
        "hnsw_m": args.hnsw_m,
        "hnsw_ef_construct": args.hnsw_ef_construct,
        "hnsw_ef": args.hnsw_ef,
        "quantization": args.quantization,
    }
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bookvec-bench-") as tmp:
        for size in args.sizes:
            makers = [] if args.no_synthetic else [lambda n: synthetic(n, args.seed)]
            if args.model:
                makers.append(lambda n: from_model(args.model, n, args.seed))
            for make in makers:
                data = make(size)
                log(f"{data.name}, {data.n:,} points ...")
                result = run_one(data, args, Path(tmp))
                runs.append(result)
                if not args.json:
                    report(result)
    import qdrant_client
    import qdrant_edge  # noqa: F401

    summary = {k: runs[0].get(k) for k in HEADLINE}
    summary["recall_at_10"] = min(r["recall_at_10"] for r in runs)
    summary.update(
        index=args.index,
        machine={
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "qdrant_client": qdrant_client.__version__
            if hasattr(qdrant_client, "__version__")
            else None,
        },
        seconds=round(time.perf_counter() - started, 1),
        runs=runs,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"\nheadline ({runs[0]['dataset']}, {runs[0]['points']:,} points):")
        for key in HEADLINE:
            print(f"  {key:34s} {summary.get(key)}")
        print(f"  {'recall_at_10 (worst run)':34s} {summary['recall_at_10']}")


HEADLINE = (
    "hybrid_filtered_p50_ms",
    "hybrid_p50_ms",
    "hybrid_edge_floor_filtered_p50_ms",
    "hybrid_vs_dense_filtered_ratio",
    "edge_filtered_p50_ms",
    "numpy_filtered_p50_ms",
    "local_filtered_p50_ms",
    "edge_p50_ms",
    "numpy_p50_ms",
    "edge_upsert_points_per_s",
    "edge_vs_numpy_filtered_ratio",
    "edge_vs_local_filtered_speedup",
    "cli_search_wall_s",
    "cli_search_filtered_wall_s",
)


def report(r: dict) -> None:
    print(f"\n{r['dataset']} — {r['points']:,} points, {r['queries']} queries")
    print(
        f"  upsert into Edge: {r['edge_upsert_points_per_s']:,} points/s "
        f"(load {r['edge_load_s']} s, then index build {r['edge_index_build_s']} s; "
        f"{r['edge_indexed_vectors']:,} vectors in HNSW)"
    )
    print(
        f"    of which: qdrant_edge.Point() {r['edge_point_conversion_us']} us/point (payload "
        f"conversion); Edge's insert alone {r['edge_insert_only_points_per_s']:,} points/s"
    )
    rows = [("edge (bookvec)", "edge"), ("numpy exact", "numpy")]
    if "local_p50_ms" in r:
        rows.append((f"qdrant-client local ({r['local_queries']} queries)", "local"))
    print(f"  {'':40s} {'p50 ms':>9s} {'p95 ms':>9s} {'genre p50':>10s} {'genre p95':>10s}")
    for label, key in rows:
        print(
            f"  {label:40s} {r[f'{key}_p50_ms']:9.3f} {r[f'{key}_p95_ms']:9.3f} "
            f"{r[f'{key}_filtered_p50_ms']:10.3f} {r[f'{key}_filtered_p95_ms']:10.3f}"
        )
    print(f"  numpy with per-genre matrices built ahead: {r['numpy_prefiltered_p50_ms']} ms p50")
    print(
        f"  hybrid (dense + sparse prefetch, formula fusion): p50 {r['hybrid_p50_ms']} ms "
        f"(p95 {r['hybrid_p95_ms']}), genre-filtered p50 {r['hybrid_filtered_p50_ms']} ms "
        f"(p95 {r['hybrid_filtered_p95_ms']}); "
        f"search_like hybrid {r['hybrid_search_like_p50_ms']} ms"
    )
    print(
        f"    Edge's own part (both sides' batch, no bookvec code): p50 "
        f"{r['hybrid_edge_floor_p50_ms']} ms, genre-filtered "
        f"{r['hybrid_edge_floor_filtered_p50_ms']} ms; hybrid / dense genre-filtered "
        f"{r['hybrid_vs_dense_filtered_ratio']}x"
    )
    print(
        f"  recall@10 vs exact: {r['recall_at_10_unfiltered']} unfiltered, "
        f"{r['recall_at_10_filtered']} genre-filtered"
    )
    if "local_upsert_points_per_s" in r:
        print(f"  local mode upsert: {r['local_upsert_points_per_s']:,} points/s")
    print(
        f"  edge genre-filtered / numpy: {r['edge_vs_numpy_filtered_ratio']}x; "
        + (
            f"local / edge: {r['edge_vs_local_filtered_speedup']}x"
            if "edge_vs_local_filtered_speedup" in r
            else ""
        )
    )
    print(
        f"  search_like (title -> vector -> query) p50: {r['edge_search_like_p50_ms']} ms; "
        f"`bookvec search` wall (median): {r['cli_search_wall_s']} s, "
        f"with --genre {r['cli_search_filtered_wall_s']} s"
    )
    for row in r.get("recall_curve", []):
        print(
            f"  hnsw_ef {row['hnsw_ef']:4d}: recall@10 {row['recall_at_10_unfiltered']:.4f} "
            f"(filtered {row['recall_at_10_filtered']:.4f}), p50 {row['p50_ms_unfiltered']:.3f} ms "
            f"(filtered {row['p50_ms_filtered']:.3f} ms)"
        )


if __name__ == "__main__":
    main()
