"""Benchmark the 2-D map: seconds for UMAP of a full-shape set, and how well the planted genres
separate (silhouette of the 2-D coordinates by genre; the same score in the 50-d cosine space
for reference).

    python benchmarks/maps.py                      # 37,020 x 50 planted clusters
    python benchmarks/maps.py --model <id|dir>     # also a trained bundle, by its top genres
    python benchmarks/maps.py --repeat 2 --json    # a second (warm, JIT-compiled) run too

The first run in a process includes numba's JIT compilation of UMAP (as `bookvec map` does).
Goal: <= 90 s on 2 cores for the full shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from bookvec.model.analysis.reduce import (
    UMAP_MIN_DIST,
    UMAP_NEIGHBOURS,
    genre_labels,
    planted_clusters,
    reduce_2d,
    top_genres,
)


def silhouettes(vectors: np.ndarray, coords: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    from sklearn.metrics import silhouette_score

    sample = min(10_000, len(labels))
    return {
        "silhouette_2d": round(
            float(silhouette_score(coords, labels, sample_size=sample, random_state=seed)), 4
        ),
        "silhouette_50d_cosine": round(
            float(
                silhouette_score(
                    vectors, labels, metric="cosine", sample_size=sample, random_state=seed
                )
            ),
            4,
        ),
    }


def run(
    name: str,
    vectors: np.ndarray,
    labels: np.ndarray,
    args: argparse.Namespace,
    scored: np.ndarray | None = None,
) -> dict:
    """Map every vector; score the rows in ``scored`` (all by default) by ``labels``."""
    lines: list[str] = []

    def log(message: str) -> None:
        lines.append(message.strip())
        if not args.json:
            print(f"  {message.strip()}", file=sys.stderr)

    seconds = []
    coords = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        coords = reduce_2d(vectors, method=args.method, seed=args.seed, log=log)
        seconds.append(round(time.perf_counter() - started, 2))
    assert coords is not None
    rows = np.arange(len(vectors)) if scored is None else scored
    return {
        "set": name,
        "points": int(len(vectors)),
        "dim": int(vectors.shape[1]),
        "scored": int(len(rows)),
        "genres": int(len(np.unique(labels))),
        "method": args.method,
        "seconds_first": seconds[0],
        "seconds_warm": seconds[1:],
        "steps": lines,
        **silhouettes(vectors[rows], coords[rows], labels, args.seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=37_020, help="planted points")
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--genres", type=int, default=20, help="planted genres (Zipf-like sizes)")
    parser.add_argument("--spread", type=float, default=0.12, help="noise per dimension")
    parser.add_argument("--method", choices=("umap", "tsne"), default="umap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per set (first one cold)")
    parser.add_argument("--model", help="a trained bundle (directory or model id) to map too")
    parser.add_argument("--top-genres", type=int, default=10, help="genres scored for --model")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()

    results = []
    vectors, labels = planted_clusters(
        args.n, dim=args.dim, n_genres=args.genres, spread=args.spread, seed=args.seed
    )
    results.append(run("planted", vectors, labels, args))
    if args.model:
        from bookvec.model.bundle import open_bundle

        bundle = open_bundle(args.model)
        genres = [list(g or []) for g in bundle.books.get_column("genres").to_list()]
        top = [name for name, _ in top_genres(genres, args.top_genres)]
        names = genre_labels(genres, top)
        keep = np.array([i for i, g in enumerate(names) if g is not None], dtype=int)
        label_ids = np.array([top.index(names[i]) for i in keep])
        book_vectors = np.asarray(bundle.book_vectors, dtype=np.float32)
        results.append(run(f"model {bundle.model_id}", book_vectors, label_ids, args, keep))

    report = {
        "benchmark": "maps",
        "umap": {"n_neighbors": UMAP_NEIGHBOURS, "min_dist": UMAP_MIN_DIST, "metric": "cosine"},
        "machine": {
            "cpus": os.cpu_count(),
            "load_1min_after": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for i, r in enumerate(results):
        first = "first run in the process, JIT included" if i == 0 else "JIT already done"
        warm = f"; again: {r['seconds_warm']} s" if r["seconds_warm"] else ""
        print(
            f"{r['set']}: {r['points']:,} x {r['dim']} {r['method'].upper()}: "
            f"{r['seconds_first']} s ({first}{warm}); "
            f"silhouette by genre ({r['genres']}) 2-D {r['silhouette_2d']}, "
            f"50-d cosine {r['silhouette_50d_cosine']}"
        )
    print(f"machine: {report['machine']}")


if __name__ == "__main__":
    main()
