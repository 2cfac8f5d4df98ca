"""The whole pipeline at 1x, 10x and 100x the catalogue (37,020 / 370,200 / 3,702,000 books).

    python benchmarks/scale.py                               # 1x and 10x, every step
    python benchmarks/scale.py --sizes 1 10 100 --json       # + 100x (hours on 2 cores)
    python benchmarks/scale.py --sizes 100 --steps synth prepare train

Per size, each step runs in a fresh process (its peak RSS is its own: ``ru_maxrss`` of the
step's process, or of the ``bookvec`` command it runs), in this order:

- ``synth``: the synthetic corpus (``bookvec.model.corpus.synth``) at that size; a file left
  by an earlier run in ``--workdir`` is reused (same seed, same bytes; reported);
- ``prepare``: ``prepare(corpus)`` alone (read, clean, count, pairs);
- ``train``: ``bookvec train --data corpus --no-evaluate --json`` to its early stop: prepare,
  train, ONNX export and the bundle (the manifest's prepare / train / export seconds);
- ``evaluate``: ``bookvec evaluate --json`` (off unless named: the baselines are slow at 100x);
- ``index``: ``bookvec index --json`` (HNSW built above Edge's indexing threshold);
- ``search``: dense genre-filtered search on the store, p50 / p99 over ``--queries`` books,
  recall@10 against numpy exact search with the same filter at the index's ``hnsw_ef``, with
  its standard error over the query books (``--ef-curve``: also other values), the points
  and HNSW-indexed vectors in the store, and ``bookvec search TITLE --exact [-g GENRE]`` as
  whole processes (median wall);
- ``upsert``: ``bookvec upsert`` of ``--upsert-books`` new books (a small synthetic corpus
  with new titles).

Run heavy sizes under ``nice``: the machine is shared. Recall and latency code comes from
``benchmarks/search.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BASE_BOOKS = 37_020
STEPS = ("synth", "prepare", "train", "evaluate", "index", "search", "upsert")
DEFAULT_STEPS = ("synth", "prepare", "train", "index", "search", "upsert")
SEED = 0


def _peak_mb(who: int) -> int:
    return round(resource.getrusage(who).ru_maxrss / 1024)


def _bookvec(home: Path, *args: str) -> tuple[dict, float]:
    """Run ``bookvec ARGS --json`` in ``home``; its JSON and wall seconds."""
    script = Path(sys.executable).with_name("bookvec")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bookvec.cli.main"]
    env = {**os.environ, "BOOKVEC_HOME": str(home), "COLUMNS": "120"}
    env.pop("BOOKVEC_QDRANT_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--quiet", *args, "--json"], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bookvec {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout), wall


# --- the steps (each in its own process) ------------------------------------------------------


def step_synth(corpus: Path, books: int, args) -> dict:
    from bookvec.model.corpus.synth import synthesize

    if corpus.exists() and Path(str(corpus) + ".truth.parquet").exists():
        return {"reused": True, "bytes": corpus.stat().st_size}
    started = time.perf_counter()
    stats = synthesize(corpus, n_books=books, seed=SEED)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "records": stats.n_records,
        "link_occurrences": stats.n_link_occurrences,
        "bytes": corpus.stat().st_size,
    }


def step_prepare(corpus: Path, books: int, args) -> dict:
    from bookvec.model.corpus.prepare import prepare

    started = time.perf_counter()
    prepared = prepare(corpus)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "books": prepared.n_books,
        "links": prepared.n_links,
        "pairs": int(len(prepared.pairs)),
    }


def step_train(corpus: Path, books: int, args) -> dict:
    home = _home(corpus)
    threads = ["--threads", str(args.train_threads)] if args.train_threads else []
    out, wall = _bookvec(home, "train", "--data", str(corpus), "--no-evaluate", *threads)
    from bookvec.model.bundle import open_bundle

    os.environ["BOOKVEC_HOME"] = str(home)
    manifest = open_bundle(None).manifest.to_dict()
    metrics = manifest["metrics"]
    return {
        "seconds": round(wall, 1),
        "prepare_seconds": metrics.get("prepare_seconds"),
        "train_seconds": metrics.get("train_seconds"),
        "export_seconds": metrics.get("export_seconds"),
        "epochs_run": metrics.get("epochs_run"),
        "best_epoch": metrics.get("best_epoch"),
        "val_auc": metrics.get("val_auc"),
        "counts": manifest.get("counts"),
        "model": out.get("model_id") or out.get("model"),
    }


def step_evaluate(corpus: Path, books: int, args) -> dict:
    out, wall = _bookvec(_home(corpus), "evaluate")
    auc = (out.get("link_prediction") or {}).get("bookvec", {}).get("auc")
    return {"seconds": round(wall, 1), "auc": auc}


def step_index(corpus: Path, books: int, args) -> dict:
    extra = ["--hnsw-ef", str(args.hnsw_ef)] if args.hnsw_ef else []
    out, wall = _bookvec(_home(corpus), "index", *extra)
    return {"seconds": round(wall, 1), "points_per_s": round(books / wall), "result": out}


def step_search(corpus: Path, books: int, args) -> dict:
    import numpy as np
    import polars as pl
    from search import K, cli_timing, recall, timed

    from bookvec import settings
    from bookvec.indexer import BookFilter, open_store, point_id
    from bookvec.model import bundle as files
    from bookvec.model.bundle import open_bundle
    from bookvec.settings import QdrantSettings

    home = _home(corpus)
    os.environ["BOOKVEC_HOME"] = str(home)
    bundle = open_bundle(None)
    vectors = np.load(bundle.path / files.BOOK_VECTORS)
    frame = pl.read_parquet(bundle.path / files.BOOKS, columns=["title", "genres"])
    titles = frame.get_column("title").to_list()
    top = (
        frame.select(pl.col("genres").explode().drop_nulls().value_counts(sort=True))
        .unnest("genres")
        .get_column("genres")
        .head(10)
        .to_list()
    )
    masks = {g: frame.get_column("genres").list.contains(g).to_numpy() for g in top}
    rng = np.random.default_rng(SEED)
    picks = rng.choice(len(titles), size=args.queries * 3, replace=False)
    queries = []
    for i in picks.tolist():
        genre = next((g for g in top if masks[g][i]), None)
        if genre is not None and len(queries) < args.queries:
            queries.append((vectors[i], genre))

    def exact(vector, genre):
        scores = np.where(masks[genre], vectors @ vector, -np.inf)
        best = np.argpartition(-scores, K)[:K]
        return [point_id(titles[j]) for j in best[np.argsort(-scores[best], kind="stable")]]

    truth = [exact(v, g) for v, g in queries]
    store = open_store(QdrantSettings(), path=settings.store_dir(), read_only=True)
    info = store.info()

    def edge_search(vector, genre):
        hits = store.search(vector, limit=K, filter=BookFilter(genres_any=(genre,)))
        return [h.id for h in hits]

    def measure() -> dict:
        timed(edge_search, queries)  # once untimed: the shard's pages in memory
        times, found = timed(edge_search, queries)
        ms = np.asarray(times) * 1000
        return {
            "filtered_p50_ms": round(float(np.percentile(ms, 50)), 3),
            "filtered_p99_ms": round(float(np.percentile(ms, 99)), 3),
            "recall_at_10_filtered": recall(found, truth),
            # per-query recall varies widely (a few books lose half their list): the mean's
            # standard error says how far another sample of books could land
            "recall_at_10_filtered_se": _standard_error(found, truth),
        }

    out = {
        "points": info.points,
        "indexed_vectors": info.indexed_vectors,
        "hnsw_ef": info.index.hnsw_ef,
        "hnsw_m": info.index.hnsw_m,
        "queries": len(queries),
        **measure(),
    }
    if args.ef_curve:
        out["ef_curve"] = []
        for ef in args.ef_curve:
            store.set_hnsw_ef(ef)
            out["ef_curve"].append({"hnsw_ef": ef, **measure()})
        store.set_hnsw_ef(None)
    store.close()
    title = titles[int(picks[0])]
    genre = next((g for g in top if masks[g][int(picks[0])]), top[0])
    out.update(cli_timing(home, title, genre, args.cli_runs))
    return out


def _standard_error(found: list[list[str]], truth: list[list[str]]) -> float:
    import numpy as np

    each = np.array([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    return round(float(each.std(ddof=1) / np.sqrt(len(each))), 4) if len(each) > 1 else 0.0


def step_upsert(corpus: Path, books: int, args) -> dict:
    from bookvec.model.corpus.synth import synthesize

    source = corpus.with_name(f"upsert-{args.upsert_books}.ndjson")
    synthesize(source, n_books=args.upsert_books, seed=SEED + 1, n_wikipedia_pages=0)
    renamed = source.with_name("new-" + source.name)
    with open(source, encoding="utf-8") as inp, open(renamed, "w", encoding="utf-8") as out:
        for line in inp:  # new titles: these books are not in the corpus
            record = json.loads(line)
            record[0] = "Upserted " + record[0]
            out.write(json.dumps(record) + "\n")
    result, wall = _bookvec(_home(corpus), "upsert", str(renamed))
    return {
        "seconds": round(wall, 1),
        "books": args.upsert_books,
        "books_per_s": round(args.upsert_books / wall),
        "result": {k: v for k, v in result.items() if isinstance(v, int | float | str)},
    }


def _home(corpus: Path) -> Path:
    return corpus.with_name(corpus.name.split(".")[0] + "-home")


# --- the driver -------------------------------------------------------------------------------


def child(step: str, corpus: Path, books: int, args) -> None:
    result = globals()[f"step_{step}"](corpus, books, args)
    result["peak_rss_mb"] = max(
        _peak_mb(resource.RUSAGE_SELF), _peak_mb(resource.RUSAGE_CHILDREN)
    )  # a bookvec command's own peak when the step runs one
    print(json.dumps(result))


def run_step(step: str, corpus: Path, books: int, argv: list[str]) -> dict:
    command = [sys.executable, __file__, *argv, "--child", step, str(corpus), str(books)]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return {"failed": f"exit {done.returncode}", "wall_s": round(time.perf_counter() - started)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10], help="x 37,020 books")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(DEFAULT_STEPS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bookvec-scale"))
    parser.add_argument("--base-books", type=int, default=BASE_BOOKS, help="books at 1x")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-ef", type=int, default=None, help="index with this hnsw_ef")
    parser.add_argument("--ef-curve", type=int, nargs="*", default=[], help="also these ef")
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument(
        "--train-threads", type=int, default=None, help="bookvec train --threads (a busy host)"
    )
    parser.add_argument("--upsert-books", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, corpus, books = args.child
        child(step, Path(corpus), int(books), args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a != "--json"]
    report: dict = {"sizes": {}}
    for size in args.sizes:
        books = args.base_books * size
        name = f"c{size}" if args.base_books == BASE_BOOKS else f"b{args.base_books}x{size}"
        corpus = args.workdir / f"{name}.ndjson"
        rows = report["sizes"][f"{size}x"] = {"books": books}
        for step in [s for s in STEPS if s in args.steps]:
            print(f"{size}x {step} ...", file=sys.stderr, flush=True)
            rows[step] = run_step(step, corpus, books, argv)
            print(f"{size}x {step}: {json.dumps(rows[step])}", file=sys.stderr, flush=True)
            if "failed" in rows[step]:
                break
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for size, rows in report["sizes"].items():
            print(f"{size} ({rows['books']:,} books)")
            for step in STEPS:
                if step in rows:
                    wall, peak = rows[step].get("wall_s"), rows[step].get("peak_rss_mb")
                    print(f"  {step:8s} wall {wall} s, peak RSS {peak} MB")


if __name__ == "__main__":
    main()
