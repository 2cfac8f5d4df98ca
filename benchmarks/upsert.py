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
End to end (issue 15, item 3: `bookvec upsert` of 1,000,000 new books >= 20,000 books/s with
peak RSS <= 1.5 GB):

    python benchmarks/upsert.py --books 1000000            # a small trained home is built first
    python benchmarks/upsert.py --books 100000 --home ~/bv  # a copy of this home's model + store

writes N new books as JSONL (links drawn from the model's own, plus a few it does not know),
runs the library's upsert (what `bookvec upsert FILE` runs) in a fresh process, and reports
books/s end to end, the seconds in Edge's optimizers after the write (the HNSW build once the
shard passes Edge's indexing threshold: in-process, or in a child process past bookvec's own
estimate of it), CPU seconds, the peak RSS of the upsert process and of such a child, and, in
the same run,
the floor: raw qdrant-edge-py (`edge.Point` + `update`) on as many points shaped as bookvec
writes them (payload, sparse vector), streamed in batches.
Machine: 2 shared cores; timings move with the load of other processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import qdrant_edge as edge

from bookvec.indexer import BookPoint, open_store, point_id
from bookvec.indexer.edge import _create
from bookvec.indexer.types import IndexOptions
from bookvec.settings import QdrantSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_write import spread  # noqa: E402  (the same summary as the store-layer benchmark)

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


# --- end to end -------------------------------------------------------------------------------


def make_home(root: Path, n_books: int = 5000) -> Path:
    """A home with a small trained model and its index (synthetic corpus, 2 epochs)."""
    from bookvec.model.corpus.synth import synthesize

    home = root / "home"
    corpus = root / "train.ndjson"
    synthesize(corpus, n_books=n_books, seed=0)
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    bookvec = [sys.executable, "-m", "bookvec.cli.main", "-q"]
    train = [*bookvec, "train", "--data", str(corpus), "--epochs", "2", "--no-evaluate"]
    subprocess.run(train, env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*bookvec, "index"], env=env, check=True, stdout=subprocess.DEVNULL)
    return home


def write_books(path: Path, n: int, link_names: list[str], seed: int = 11) -> None:
    """N new books as JSONL: ~24 links each (Zipf over the model's links, a few repeated, two
    it does not know), a genre, an author, a country and a year."""
    import orjson

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(link_names) + 1) ** 0.8
    weights /= weights.sum()
    names = np.array(link_names, dtype=object)
    with open(path, "wb") as out:
        for start in range(0, n, 10_000):
            size = min(10_000, n - start)
            drawn = names[rng.choice(len(names), (size, 22), p=weights)]
            for i in range(size):
                k = start + i
                links = [*drawn[i], f"Unknown page {k % 5000}", f"Own page {k}"]
                record = {
                    "title": f"Bulk book {k}",
                    "links": links,
                    "genres": [GENRES[k % len(GENRES)]],
                    "author": f"Author {k % 20_000}",
                    "country": ["France", "United States", "Japan"][k % 3],
                    "year": 1800 + k % 220,
                }
                out.write(orjson.dumps(record) + b"\n")


def upsert_child(path: str) -> None:
    """In a fresh process (BOOKVEC_HOME set): the library's upsert of `path`, timed, with the
    HNSW build timed apart; prints one JSON line."""
    from contextlib import contextmanager

    from bookvec.indexer import edge as edge_store
    from bookvec.library import upserting
    from bookvec.library.store import open_model_bundle
    from bookvec.library.store import open_store as open_home_store

    hnsw = {"seconds": 0.0, "cpu": 0.0}
    optimized = edge_store._optimized  # Edge's optimizers: in-process, or the HNSW build's child

    def timed_optimized(*args, **kwargs):
        began, cpu = time.perf_counter(), time.process_time()
        try:
            return optimized(*args, **kwargs)
        finally:
            hnsw["seconds"] += time.perf_counter() - began
            hnsw["cpu"] += time.process_time() - cpu

    edge_store._optimized = timed_optimized
    folded = {"last": 0.0}

    @contextmanager
    def progress(label, total=None):
        def advance(n):
            folded["last"] = time.perf_counter()

        yield advance

    began = time.perf_counter()
    report = upserting.upsert(
        path,
        open_model_bundle(None),
        lambda read_only: open_home_store(read_only=read_only),
        progress=progress,
    )
    seconds = time.perf_counter() - began
    own_usage = resource.getrusage(resource.RUSAGE_SELF)
    child_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own, child = own_usage.ru_maxrss, child_usage.ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read_fold_seconds": folded["last"] - began,
                "hnsw_seconds": hnsw["seconds"],
                "optimize_cpu_in_process": hnsw["cpu"],
                "added": report.added,
                "rejected": report.rejected,
                # CPU seconds (all threads; the HNSW build's process apart): a shared machine
                # stretches wall time, much less the CPU a run needs
                "cpu_seconds": own_usage.ru_utime + own_usage.ru_stime,
                "hnsw_cpu_seconds": child_usage.ru_utime + child_usage.ru_stime,
                "peak_rss_mb": round(own / 1024),
                "hnsw_peak_rss_mb": round(child / 1024),
            }
        )
    )


def raw_floor(path: Path, n: int, dim: int, link_count: int) -> float:
    """Points/s of raw qdrant-edge-py for `n` points shaped as bookvec writes an upserted book
    (its payload with the links string, the filter keys and hash; a sparse vector), built and
    sent a batch at a time: only `edge.Point` and `update` are timed."""
    from bookvec.indexer import hybrid
    from bookvec.indexer.keys import add_filter_keys
    from bookvec.indexer.points import edge_payload

    shutil.rmtree(path, ignore_errors=True)
    options = IndexOptions(sparse="idf", sparse_weighting="bm25")
    shard = _create(path, dim, options)
    rng = np.random.default_rng(3)
    timed = 0.0
    try:
        for start in range(0, n, 2048):
            size = min(2048, n - start)
            vectors = rng.standard_normal((size, dim)).astype(np.float32).tolist()
            rows = []
            for i in range(size):
                k = start + i
                pl = {**payload(k), "title": f"Bulk book {k}", "content_hash": f"{k:032x}"}
                pl["links"] = json.dumps([f"page {j}" for j in range(k % 7, k % 7 + 24)])
                add_filter_keys(pl)
                links = sorted(set(rng.integers(0, link_count, 22).tolist()))
                sparse = edge.SparseVector(links, [1.0] * len(links))
                rows.append((point_id(f"Bulk book {k}"), vectors[i], sparse, edge_payload(pl)))
            began = time.perf_counter()
            points = [
                edge.Point(pid, {"": vector, hybrid.SPARSE: sparse}, pl)
                for pid, vector, sparse, pl in rows
            ]
            shard.update(edge.UpdateOperation.upsert_points(points))
            timed += time.perf_counter() - began
        began = time.perf_counter()
        shard.flush()
        timed += time.perf_counter() - began
    finally:
        shard.close()
    return n / timed


def end_to_end(args) -> dict:
    from bookvec.model.bundle import open_bundle

    with tempfile.TemporaryDirectory(prefix="bookvec-upsert-e2e-") as name:
        tmp = Path(name)
        if args.home:
            base = tmp / "base"
            shutil.copytree(Path(args.home).expanduser(), base, symlinks=True)
        else:
            base = make_home(tmp)
        bundle = open_bundle(None, models_dir=base / "models")
        books_file = tmp / "books.jsonl"
        began = time.perf_counter()
        write_books(books_file, args.books, bundle.link_names)
        made = time.perf_counter() - began
        runs, floors = [], []
        for _ in range(args.runs):
            home = tmp / "run"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(base, home, symlinks=True)
            env = {**os.environ, "BOOKVEC_HOME": str(home)}
            child = [sys.executable, __file__, "--child", str(books_file)]
            out = subprocess.run(child, env=env, check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            floors.append(raw_floor(tmp / "raw", args.books, bundle.dim, bundle.n_links))
            shutil.rmtree(tmp / "raw", ignore_errors=True)
    rates = [args.books / run["seconds"] for run in runs]
    writes = [args.books / (run["seconds"] - run["hnsw_seconds"]) for run in runs]
    return {
        "books": args.books,
        "runs": args.runs,
        "input_seconds_to_write": round(made, 1),
        "end_to_end_books_per_s": spread(rates),
        "without_optimize_books_per_s": spread(writes),
        "raw_edge_floor_points_per_s": spread(floors),
        "optimize_seconds": [round(run["hnsw_seconds"], 1) for run in runs],
        "upsert_cpu_seconds": [round(run["cpu_seconds"], 1) for run in runs],
        "optimize_child_cpu_seconds": [round(run["hnsw_cpu_seconds"], 1) for run in runs],
        "optimize_cpu_seconds_in_process": [
            round(run["optimize_cpu_in_process"], 1) for run in runs
        ],
        "books_per_cpu_second_without_optimize": spread(
            [args.books / (run["cpu_seconds"] - run["optimize_cpu_in_process"]) for run in runs]
        ),
        "seconds": [round(run["seconds"], 1) for run in runs],
        "read_fold_seconds": [round(run["read_fold_seconds"], 1) for run in runs],
        "peak_rss_mb": [run["peak_rss_mb"] for run in runs],
        "optimize_child_peak_rss_mb": [run["hnsw_peak_rss_mb"] for run in runs],
        "added": runs[0]["added"],
        "rejected": runs[0]["rejected"],
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        upsert_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=10_000, help="books already in the store")
    parser.add_argument("--new", type=int, default=30_000, help="new books upserted")
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--books", type=int, help="end to end: upsert this many new books")
    parser.add_argument("--home", help="with --books: a home (model + store) to copy")
    args = parser.parse_args()
    if args.books:
        result = end_to_end(args)
        print(json.dumps(result, indent=None if args.json else 2))
        return
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
