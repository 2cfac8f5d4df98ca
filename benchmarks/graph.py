"""How dense an HNSW graph the learned vectors need: Edge graphs built with several (m,
ef_construct) settings over the same book vectors, each searched at a ladder of hnsw_ef values.

    python benchmarks/graph.py                                   # the current model's books
    python benchmarks/graph.py --model DIR --configs 16:100 32:256 48:400 --efs 64 128 256 512
    python benchmarks/graph.py --vectors book_vectors.npy --json

Per setting: a vectors-only shard (cosine, no payload, so none of the extra per-value links
that bookvec's payload indexes add), its write and build seconds (wall and this process's CPU),
then for each hnsw_ef, ``--queries`` books (seeded) searched with their own vectors, the book
itself left out: recall@10 against numpy exact search and latency p50 / p99 over ``--rounds``
passes. The settings run one after another, so a busy host slows them alike only if its load
is steady; compare CPU seconds and recall, which the load does not move. A graph takes ~60 s
to build at 370k books with Qdrant's defaults (m 16, ef_construct 100) on 2 cores, ~1 h at
3.7M with m 32 / ef_construct 256.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 10


def load_vectors(args) -> np.ndarray:
    if args.vectors:
        return np.load(args.vectors, mmap_mode="r")
    from bookvec.model import bundle as files
    from bookvec.model.bundle import open_bundle

    return np.load(open_bundle(args.model).path / files.BOOK_VECTORS, mmap_mode="r")


def build(path: Path, vectors: np.ndarray, m: int, ef_construct: int) -> tuple:
    """A vectors-only shard at `path` with its graph built; (shard, write s, build s, CPU s)."""
    import qdrant_edge as edge

    dim = vectors.shape[1]
    config = edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(size=dim, distance=edge.Distance.Cosine),
        # a graph built and walked at any size (Edge's defaults, 10,000 KB each, build none
        # below ~51k 50-d points and search such a segment exactly)
        hnsw_config=edge.HnswIndexConfig(m=m, ef_construct=ef_construct, full_scan_threshold=1),
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=1),
        wal_enabled=False,
    )
    shard = edge.EdgeShard.create(str(path), config)
    started = time.perf_counter()
    for start in range(0, len(vectors), 4096):
        block = np.asarray(vectors[start : start + 4096], dtype=np.float32)
        points = [edge.Point(start + i, row.tolist(), {}) for i, row in enumerate(block)]
        shard.update(edge.UpdateOperation.upsert_points(points))
    written = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    shard.optimize()  # Edge's optimizer builds the graph in this process's threads
    return shard, written, time.perf_counter() - started, time.process_time() - cpu


def exact_neighbours(vectors: np.ndarray, picks: np.ndarray) -> list[set[int]]:
    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    truth = []
    for i in picks.tolist():
        scores = unit @ unit[i]
        scores[i] = -np.inf
        truth.append(set(np.argpartition(-scores, K)[:K].tolist()))
    return truth


def curve(shard, vectors, picks, truth, efs, rounds) -> list[dict]:
    import qdrant_edge as edge

    queries = [np.asarray(vectors[i], dtype=np.float32).tolist() for i in picks.tolist()]
    out = []
    for ef in efs:
        params = edge.SearchParams(hnsw_ef=ef)
        times, hits = [], 0
        for r in range(rounds):
            for own, query, best in zip(picks.tolist(), queries, truth, strict=True):
                request = edge.QueryRequest(
                    query=edge.Query.Nearest(query), limit=K + 1, params=params,
                    with_payload=False, with_vector=False,
                )  # fmt: skip
                started = time.perf_counter()
                found = shard.query(request)
                times.append(time.perf_counter() - started)
                if r == 0:
                    hits += len(best & {p.id for p in found if p.id != own})
        ms = np.asarray(times) * 1000
        out.append(
            {
                "hnsw_ef": ef,
                "recall_at_10": round(hits / (K * len(picks)), 4),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
            }
        )
        print(f"  ef {ef}: {out[-1]}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="bundle directory or id (default current)")
    parser.add_argument("--vectors", type=Path, default=None, help="an .npy of book vectors")
    parser.add_argument("--configs", nargs="+", default=["16:100", "32:256"], help="m:ef_construct")
    parser.add_argument("--efs", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    vectors = load_vectors(args)
    picks = np.random.default_rng(args.seed).choice(len(vectors), args.queries, replace=False)
    truth = exact_neighbours(vectors, picks)
    results = {"books": len(vectors), "queries": args.queries, "graphs": []}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for spec in args.configs:
            m, ef_construct = (int(x) for x in spec.split(":"))
            print(f"m {m}, ef_construct {ef_construct}: building", file=sys.stderr, flush=True)
            path = Path(tmp) / f"m{m}-ef{ef_construct}"
            shard, written, built, cpu = build(path, vectors, m, ef_construct)
            row = {
                "m": m,
                "ef_construct": ef_construct,
                "write_s": round(written, 1),
                "build_s": round(built, 1),
                "build_cpu_s": round(cpu, 1),
                "curve": curve(shard, vectors, picks, truth, args.efs, args.rounds),
            }
            shard.close()
            shutil.rmtree(path)
            results["graphs"].append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for row in results["graphs"]:
        print(
            f"m {row['m']}, ef_construct {row['ef_construct']}: build {row['build_s']} s "
            f"({row['build_cpu_s']} CPU s)"
        )
        for point in row["curve"]:
            print(
                f"  hnsw_ef {point['hnsw_ef']:>5}: recall@10 {point['recall_at_10']:.4f}, "
                f"p50 {point['p50_ms']} ms, p99 {point['p99_ms']} ms"
            )


if __name__ == "__main__":
    main()
