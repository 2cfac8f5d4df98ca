"""Benchmark the store layer's bulk upsert side by side in one run, and profile where the time
goes: bookvec's `EdgeStore.upsert` (checks, payload completion, content-hash comparison,
batched writes overlapped with conversion) against raw qdrant-edge-py on the same points
(`Point` construction + `update`, payload indexes as bookvec creates them), and the cost of
constructing `edge.Point` per payload shape (the conversion qdrant-edge-py does in Python).

    python benchmarks/upsert.py                      # 30,000 new books into a 10,000 store
    python benchmarks/upsert.py --new 20000 --runs 3 --json

Both sizes stay below Edge's indexing threshold (~51k 50-d points): past it, the upsert's
optimize() builds HNSW for the whole segment, which is then most of the time (measured: 20,000
new books into a 37,020 store ran at ~94 points/s on a loaded machine, nearly all of it the
graph build).
Points/s are medians over --runs, with min..max. The profile rows are microseconds per point
for constructing `edge.Point` with: no payload, an empty one, one field of each kind, and a
full book payload, so the per-field conversion cost can be read off.
Machine: 2 shared cores; timings move with the load of other processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import qdrant_edge as edge

from bookvec.indexer import BookPoint, open_store, point_id
from bookvec.indexer.edge import _create
from bookvec.indexer.types import IndexOptions
from bookvec.settings import QdrantSettings

GENRES = ["fantasy", "crime", "romance", "poetry", "horror", "science fiction"]


def payload(i: int) -> dict:
    author = f"Author {i % 2000}"
    return {
        "genres": [GENRES[i % len(GENRES)]],
        "author": author,
        "authors": [author],
        "country": "france",
        "language": "english",
        "publisher": None,
        "year": 1800 + i % 200,
        "source": "upsert",
    }


def books(start: int, n: int, dim: int, seed: int) -> list[BookPoint]:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return [
        BookPoint(title=f"Book {start + i}", vector=vectors[i], payload=payload(start + i))
        for i in range(n)
    ]


def store_upsert(root: Path, base: list[BookPoint], new: list[BookPoint], dim: int) -> float:
    shutil.rmtree(root, ignore_errors=True)
    store = open_store(QdrantSettings(collection="books"), path=root)
    try:
        store.replace_all(base, vector_size=dim, model_version="bench")
        start = time.perf_counter()
        report = store.upsert(new)
        seconds = time.perf_counter() - start
        assert report.added == len(new), report
    finally:
        store.close()
    return len(new) / seconds


def raw_upsert(path: Path, new: list[BookPoint], dim: int) -> float:
    """The floor: the same points and payloads straight into a shard made as bookvec makes it."""
    shutil.rmtree(path, ignore_errors=True)
    shard = _create(path, dim, IndexOptions())
    try:
        rows = [
            (point_id(p.title), p.vector.tolist(), {**p.payload, "title": p.title}) for p in new
        ]
        start = time.perf_counter()
        for k in range(0, len(rows), 2048):
            points = [edge.Point(i, v, pl) for i, v, pl in rows[k : k + 2048]]
            shard.update(edge.UpdateOperation.upsert_points(points))
        shard.flush()
        seconds = time.perf_counter() - start
    finally:
        shard.close()
    return len(new) / seconds


def point_profile(n: int, dim: int) -> dict[str, float]:
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32).tolist()
    ids = [point_id(f"Book {i}") for i in range(n)]
    shapes = {
        "no payload": lambda i: None,
        "empty payload": lambda i: {},
        "one str": lambda i: {"title": f"Book {i}"},
        "one int": lambda i: {"year": 1900},
        "one None": lambda i: {"publisher": None},
        "one 1-element list": lambda i: {"genres": ["fantasy"]},
        "full book payload": lambda i: {**payload(i), "title": f"B {i}", "content_hash": "0" * 32},
    }
    out = {}
    for name, make in shapes.items():
        payloads = [make(i) for i in range(n)]
        start = time.perf_counter()
        for i in range(n):
            edge.Point(ids[i], vectors[i], payloads[i])
        out[name] = round((time.perf_counter() - start) / n * 1e6, 2)
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values)),
        "min": round(min(values)),
        "max": round(max(values)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=10_000, help="books already in the store")
    parser.add_argument("--new", type=int, default=30_000, help="new books upserted")
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = books(0, args.base, args.dim, 1)
    new = books(args.base, args.new, args.dim, 2)
    ours, raw = [], []
    with tempfile.TemporaryDirectory(prefix="bookvec-upsert-") as tmp:
        for _ in range(args.runs):  # interleaved, so the machine's load hits both alike
            ours.append(store_upsert(Path(tmp) / "store", base, new, args.dim))
            raw.append(raw_upsert(Path(tmp) / "raw", new, args.dim))
    ratio = statistics.median(a / b for a, b in zip(ours, raw, strict=True))
    result = {
        "base_books": args.base,
        "new_books": args.new,
        "runs": args.runs,
        "store_upsert_points_per_s": spread(ours),
        "raw_edge_points_per_s": spread(raw),
        "store_over_raw": round(ratio, 3),
        "edge_point_us_per_point": point_profile(min(args.new, 20_000), args.dim),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
