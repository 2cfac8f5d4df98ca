"""Where the embedded store's writes spend their time, and how fast they go, side by side with
raw qdrant-edge-py in one run (issue 15, item 3: the store layer at >= 40,000 points/s).

    python benchmarks/store_write.py                    # 37,020 and 100,000 points, 3 runs
    python benchmarks/store_write.py --sizes 37020 --runs 5 --json

The points are what bookvec writes for a trained corpus: 50-d vectors, a sparse `links` vector
(~20 entries) and the full payload (title, genres, author, authors, country, language,
publisher, year, source, content_hash, plus the filter keys author_keys / country_key).

Per size and run, interleaved so that the machine's load hits all alike:
- raw: `edge.Point` (the payload as bookvec writes it, `edge_payload`) +
  `UpdateOperation.upsert_points` + `shard.update` in batches of 2,048 into a shard made as
  bookvec makes it (payload indexes first), then `flush()`: the floor.
- store: `EdgeStore.replace_all` (a new generation: checks, payload completion, conversion
  overlapped with Edge's insert, flush, census, publish). Its write phase is timed from the
  call to the last progress report (every point stored); above Edge's indexing threshold
  (~51k 50-d points) the HNSW build that follows is timed apart, as it is not writing points.
- upsert: `EdgeStore.upsert` of 2,048 new books into the store just built (copy-on-write of
  the generation, its write, flush and publish), in points/s and seconds.

The profile (one pass, microseconds per point, at the first size): bookvec's preparation
(`prepare_batch` + `dedupe`), `edge.Point` construction with and without the payload (the
payload conversion of qdrant-edge-py, which tries bool, u64, i64 and f64 before str, each
failure a Python exception), the same with leaner payloads bookvec does not write (the
filtered fields only; those plus the rest as one JSON string) to show what they would buy,
`upsert_points`, `update` with and without payload, `flush`, and the copy of a generation's
shard. Medians over --runs with min..max.

    python benchmarks/store_write.py --vary --sizes 30000 --runs 3

changes one thing at a time against bookvec's own write, on Edge's side only (points built
before the clock): batch size, no payload, no sparse vector, no payload indexes or indexes
made after the load, WAL on, a flush per batch, payload in RAM, no gc; points/s, CPU us a
point (all threads) and the segments left (1: no optimisation ran during the load).
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

from bookvec.indexer import BookPoint, IndexOptions, open_store
from bookvec.indexer.edge import _create, _edge_vector
from bookvec.indexer.generations import copy_tree
from bookvec.indexer.points import BATCH, batched, dedupe, edge_payload, prepare_batch
from bookvec.settings import QdrantSettings

GENRES = ["fantasy", "crime", "romance", "poetry", "horror", "science fiction", "history"]
COUNTRIES = ["France", "United States", "United Kingdom", "Germany", "Russia", "Japan"]
OPTIONS = IndexOptions(sparse="dot", sparse_weighting="bm25")
DIM = 50
# what the filters match and the catalogue scan selects (filters.py, catalogue.py)
FILTERED = ("genres", "authors", "country", "author_keys", "country_key", "year", "source")


def books(n: int, seed: int, prefix: str = "Book") -> list[BookPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    out = []
    for i in range(n):
        author = f"Author {i % (n // 2 + 1)}"
        links = np.sort(rng.choice(200_000, 20, replace=False))
        out.append(
            BookPoint(
                title=f"{prefix} {i}",
                vector=vectors[i],
                payload={
                    "genres": [GENRES[i % len(GENRES)]],
                    "author": author,
                    "authors": [author],
                    "country": COUNTRIES[i % len(COUNTRIES)],
                    "language": "English",
                    "publisher": None,
                    "year": 1800 + i % 220,
                    "source": "bundle",
                    # set by bookvec.library as it makes the points (the model id is in it)
                    "content_hash": f"{i:032x}",
                },
                sparse=(links.tolist(), rng.random(20).round(4).tolist()),
            )
        )
    return out


def raw_write(path: Path, prepared: list, dim: int) -> float:
    """Seconds for the same points straight into a shard made as bookvec makes it."""
    shutil.rmtree(path, ignore_errors=True)
    shard = _create(path, dim, OPTIONS)
    try:
        start = time.perf_counter()
        for batch in batched(prepared, BATCH):
            points = [edge.Point(p.id, _edge_vector(p), edge_payload(p.payload)) for p in batch]
            shard.update(edge.UpdateOperation.upsert_points(points))
        shard.flush()
        return time.perf_counter() - start
    finally:
        shard.close()


def store_write(root: Path, data: list[BookPoint], extra: list[BookPoint]) -> dict[str, float]:
    shutil.rmtree(root, ignore_errors=True)
    store = open_store(QdrantSettings(collection="books"), path=root)
    stored = {"n": 0, "last": 0.0}

    def progress(n: int) -> None:
        stored["n"] += n
        stored["last"] = time.perf_counter()

    try:
        began = time.perf_counter()
        count = store.replace_all(
            data, vector_size=DIM, model_version="bench", progress=progress, options=OPTIONS
        )
        total = time.perf_counter() - began
        assert count == len(data) and stored["n"] == len(data), (count, stored)
        start = time.perf_counter()
        report = store.upsert(extra)
        upsert = time.perf_counter() - start
        assert report.added == len(extra), report
    finally:
        store.close()
    return {"write": stored["last"] - began, "total": total, "upsert": upsert}


def per_point(seconds: float, n: int) -> float:
    return round(seconds / n * 1e6, 2)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def profile(data: list[BookPoint], tmp: Path) -> dict[str, float]:
    n = len(data)
    out: dict[str, float] = {}
    prepared: list = []
    out["prepare_batch + dedupe"] = per_point(
        timed(lambda: prepared.extend(dedupe(prepare_batch(b, DIM)) for b in batched(data))), n
    )
    prepared = [p for batch in prepared for p in batch]
    vectors = [_edge_vector(p) for p in prepared]
    out["edge.Point, no payload"] = per_point(
        timed(lambda: [edge.Point(p.id, v, None) for p, v in zip(prepared, vectors, strict=True)]),
        n,
    )
    points: list = []
    out["edge.Point, full payload"] = per_point(
        timed(
            lambda: points.extend(
                edge.Point(p.id, v, p.payload) for p, v in zip(prepared, vectors, strict=True)
            )
        ),
        n,
    )
    out["edge.Point, as bookvec writes it (edge_payload)"] = per_point(
        timed(
            lambda: [
                edge.Point(p.id, v, edge_payload(p.payload))
                for p, v in zip(prepared, vectors, strict=True)
            ]
        ),
        n,
    )
    # what leaner payloads would cost (not what bookvec writes): the fields filters need only,
    # and everything else as one JSON string beside them
    lean = [{k: p.payload.get(k) for k in FILTERED} for p in prepared]
    out["edge.Point, filtered fields only"] = per_point(
        timed(
            lambda: [
                edge.Point(p.id, v, pl) for p, v, pl in zip(prepared, vectors, lean, strict=True)
            ]
        ),
        n,
    )
    packed = [
        {**pl, "rest": json.dumps({k: v for k, v in p.payload.items() if k not in FILTERED})}
        for p, pl in zip(prepared, lean, strict=True)
    ]
    out["edge.Point, filtered fields + one JSON string"] = per_point(
        timed(
            lambda: [
                edge.Point(p.id, v, pl) for p, v, pl in zip(prepared, vectors, packed, strict=True)
            ]
        ),
        n,
    )
    bare = [edge.Point(p.id, v, None) for p, v in zip(prepared, vectors, strict=True)]
    for label, pts in (("full payload", points), ("no payload", bare)):
        path = tmp / f"profile-{label.replace(' ', '-')}"
        shard = _create(path, DIM, OPTIONS)
        start = time.perf_counter()
        ops = [edge.UpdateOperation.upsert_points(pts[k : k + BATCH]) for k in range(0, n, BATCH)]
        build = time.perf_counter() - start
        start = time.perf_counter()
        for op in ops:
            shard.update(op)
        update = time.perf_counter() - start
        flush = timed(shard.flush)
        shard.close()
        out[f"upsert_points, {label}"] = per_point(build, n)
        out[f"shard.update, {label}"] = per_point(update, n)
        out[f"flush ms, {label}"] = round(flush * 1000, 1)
        if label == "full payload":
            out["copy of the generation's shard ms"] = round(
                timed(lambda path=path: copy_tree(path, tmp / "profile-copy")) * 1000, 1
            )
        shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(tmp / "profile-copy", ignore_errors=True)
    return out


# --vary: one thing changed at a time against bookvec's own write (`base`): Edge's side only
# (points built before the clock starts), so what each setting costs Edge's insert shows
VARIANTS = (
    "base",
    "batch 512",
    "batch 8192",
    "no payload",
    "no sparse vector",
    "no payload indexes",
    "payload indexes after the load",
    "WAL on",
    "flush every batch",
    "payload in RAM (Cached)",
    "no gc during the load",
)


def _shard_for(path: Path, variant: str) -> edge.EdgeShard:
    shutil.rmtree(path, ignore_errors=True)
    options = IndexOptions(sparse="none") if variant == "no sparse vector" else OPTIONS
    if variant in ("base", "batch 512", "batch 8192", "no payload", "no sparse vector"):
        return _create(path, DIM, options)
    if variant in ("flush every batch", "no gc during the load"):
        return _create(path, DIM, options)
    config = edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(size=DIM, distance=edge.Distance.Cosine),
        sparse_vectors={"links": edge.EdgeSparseVectorParams(full_scan_threshold=100)},
        hnsw_config=edge.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=10_000),
        wal_enabled=variant == "WAL on",
        payload_memory=edge.Memory.Cached if variant.startswith("payload in RAM") else None,
    )
    shard = edge.EdgeShard.create(str(path), config)
    if variant not in ("no payload indexes", "payload indexes after the load"):
        _field_indexes(shard)
    return shard


def _field_indexes(shard: edge.EdgeShard) -> None:
    from bookvec.indexer.types import INTEGER_FIELDS, KEYWORD_FIELDS

    for field in KEYWORD_FIELDS:
        shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword))
    for field in INTEGER_FIELDS:
        shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Integer))


def vary_once(path: Path, prepared: list, variant: str) -> dict[str, float]:
    """Points/s of Edge's side (update + flush, and the indexes when made after), its CPU
    microseconds per point (all threads), and the segments it left (1: nothing optimised)."""
    import gc

    batch = {"batch 512": 512, "batch 8192": 8192}.get(variant, BATCH)
    points = [
        edge.Point(
            p.id,
            p.vector if variant == "no sparse vector" else _edge_vector(p),
            None if variant == "no payload" else edge_payload(p.payload),
        )
        for p in prepared
    ]
    shard = _shard_for(path, variant)
    try:
        if variant == "no gc during the load":
            gc.disable()
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(points), batch):
            shard.update(edge.UpdateOperation.upsert_points(points[k : k + batch]))
            if variant == "flush every batch":
                shard.flush()
        if variant == "payload indexes after the load":
            _field_indexes(shard)
        shard.flush()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        gc.enable()
        segments = shard.info().segments_count
    finally:
        gc.enable()
        shard.close()
        shutil.rmtree(path, ignore_errors=True)
    n = len(points)
    return {"points_per_s": n / seconds, "cpu_us": cpu / n * 1e6, "segments": segments}


def vary(prepared: list, tmp: Path, runs: int) -> dict[str, dict]:
    found: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(runs):  # interleaved: the machine's load hits every variant alike
        for variant in VARIANTS:
            found[variant].append(vary_once(tmp / "vary", prepared, variant))
    out = {}
    for variant, rows in found.items():
        out[variant] = {
            "points_per_s": spread([r["points_per_s"] for r in rows]),
            "cpu_us_per_point": spread([r["cpu_us"] for r in rows]),
            "segments": max(r["segments"] for r in rows),
        }
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values)),
        "min": round(min(values)),
        "max": round(max(values)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[37_020, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--vary", action="store_true", help="only Edge's side, one setting changed at a time"
    )
    args = parser.parse_args()
    result: dict = {"runs": args.runs, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bookvec-store-write-") as name:
        tmp = Path(name)
        if args.vary:
            for size in args.sizes:
                prepared = [p for b in batched(books(size, 1)) for p in prepare_batch(b, DIM)]
                result["sizes"][size] = vary(prepared, tmp, args.runs)
            print(json.dumps(result, indent=None if args.json else 2))
            return
        for size in args.sizes:
            data = books(size, 1)
            extra = books(BATCH, 2, prefix="New")
            if not args.no_profile and "profile_us_per_point" not in result:
                result["profile_us_per_point"] = profile(data, tmp)
                result["profile_points"] = size
            prepared = [p for b in batched(data) for p in dedupe(prepare_batch(b, DIM))]
            raw, write, total, upsert = [], [], [], []
            for _ in range(args.runs):
                raw.append(size / raw_write(tmp / "raw", prepared, DIM))
                timing = store_write(tmp / "store", data, extra)
                write.append(size / timing["write"])
                total.append(timing["total"])
                upsert.append(len(extra) / timing["upsert"])
            result["sizes"][size] = {
                "raw_edge_points_per_s": spread(raw),
                "store_write_points_per_s": spread(write),
                "store_over_raw": round(
                    statistics.median(w / r for w, r in zip(write, raw, strict=True)), 3
                ),
                "replace_all_seconds_incl_hnsw": {
                    "median": round(statistics.median(total), 2),
                    "min": round(min(total), 2),
                    "max": round(max(total), 2),
                },
                "upsert_2048_points_per_s": spread(upsert),
            }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
