"""Keeping a model current: fold-in vs warm start vs a cold retrain, side by side in one run.

    python benchmarks/incremental.py --corpus p15              # the real sample
    python benchmarks/incremental.py --corpus synthetic        # full shape (37k books)
    python benchmarks/incremental.py --corpus synthetic --books 3000 --repeats 3 --json
    python benchmarks/incremental.py --corpus synthetic --warm previous:warm_lr_scale=0.5,...

Protocol: 5% of the distinct (book, link) pairs of the whole corpus are held out (their raw
links removed from the books' records) for every model. A model is trained (cold) on 90% of
the books (and so only the pages they use: the link vocabulary is recomputed on them); then
the other 10% arrive, with the pages only they make common enough, three ways:

(a) fold-in only: the 90% model folds the new books in (ONNX Runtime, ``fold_in_books``);
    pages it does not know are ignored;
(b) warm start: ``train_bundle(..., warm_start=<the 90% model>)`` on 100%, the default
    schedule ("warm") and each ``--warm NAME:KEY=VALUE,...`` variant (``warm_*`` options);
(c) cold retrain on 100% (the same config as the 90% model).

For each: wall time (the pipeline call, export included; training seconds alone too), the
held-out link AUC (held-out pairs against as many uniform non-observed pairs; fold-in scores
only the pairs whose page it knows), genre agreement@10 of the new books (neighbours among
all books), for the old books the overlap of their top-10 neighbours (among old books) with
the 90% model's and with the cold 100% model's, and the store points an incremental reindex
from the 90% model's store would write (``diff_points``, tolerance 0.05; for fold-in: the
upserted new books). With ``--repeats`` (b) and (c) alternate; medians and ranges reported.
The held-out AUC is also split by the pairs' kind (new books; old books with an old page;
old books with a new page).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
P15 = ROOT.parent / "shared" / "data" / "p15_books.ndjson"
K = 10
MAX_QUERIES = 5000


def _write(path: Path, records: list[list]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def split_corpus(source: Path, out: Path, seed: int) -> dict:
    """old.ndjson (90% of the books), full.ndjson (all), both without the held-out pairs."""
    from bookvec.model.corpus.prepare import CleaningConfig, clean_link, prepare

    cleaning = CleaningConfig()
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    prepared = prepare(source, cleaning)
    titles = prepared.books.get_column("title").to_list()
    names = prepared.links.get_column("name").to_list()
    rng = np.random.default_rng(seed)
    keys = np.unique(prepared.pairs[:, 0].astype(np.int64) * len(names) + prepared.pairs[:, 1])
    held = rng.choice(keys, size=max(1, len(keys) // 20), replace=False)
    held_pairs = {(titles[k // len(names)], names[k % len(names)]) for k in held.tolist()}
    for record in records:
        title = record[0]
        record[2] = [
            raw for raw in record[2] if (title, clean_link(raw, cleaning)) not in held_pairs
        ]
    order = rng.permutation(len(records))
    new = set(order[: len(records) // 10].tolist())
    _write(out / "full.ndjson", records)
    _write(out / "old.ndjson", [r for i, r in enumerate(records) if i not in new])
    negatives = set()
    observed = set(keys.tolist())
    while len(negatives) < len(held_pairs):
        b, n = int(rng.integers(len(titles))), int(rng.integers(len(names)))
        if b * len(names) + n not in observed:
            negatives.add((titles[b], names[n]))
    return {
        "held": sorted(held_pairs),
        "negatives": sorted(negatives),
        "new_titles": {records[i][0] for i in new},
    }


def _auc(book_vec: dict, link_vec: dict, held, negatives) -> tuple[float, int]:
    from bookvec.model.analysis.evaluate import roc_auc

    def scores(pairs):
        kept = [(b, n) for b, n in pairs if b in book_vec and n in link_vec]
        return np.array([float(book_vec[b] @ link_vec[n]) for b, n in kept]), len(kept)

    pos, n_pos = scores(held)
    neg, _ = scores(negatives)
    return roc_auc(pos, neg), n_pos


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def _neighbours(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    from bookvec.model.analysis.evaluate import nearest_neighbours

    return nearest_neighbours(vectors, K, queries=queries)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b, strict=True)]))


def _space(bundle, titles: list[str], extra: dict | None = None) -> np.ndarray:
    """Unit book vectors in ``titles`` order (from ``bundle``, else ``extra``, else zero)."""
    vectors = np.asarray(bundle.book_vectors, dtype=np.float32)
    index = bundle.book_index
    out = np.zeros((len(titles), vectors.shape[1]), dtype=np.float32)
    for i, title in enumerate(titles):
        if title in index:
            out[i] = vectors[index[title]]
        elif extra and title in extra:
            out[i] = extra[title]
    return _unit(out)


def _moves(old, new) -> np.ndarray:
    """L2 distance between each old book's unit vector in ``old`` and in ``new``."""
    a = _unit(np.asarray(old.book_vectors, dtype=np.float64))
    b = _unit(np.asarray(new.book_vectors, dtype=np.float64))
    rows = [(i, new.book_index[t]) for i, t in enumerate(old.book_titles) if t in new.book_index]
    i, j = np.array(rows).T
    return np.linalg.norm(a[i] - b[j], axis=1)


def run(
    corpus: Path, seed: int, repeats: int, threads: int | None, variants: dict[str, dict]
) -> dict:
    """``variants``: name -> warm-start overrides (``warm_*`` options); "warm" is the default
    schedule, each other one a warm start more, measured side by side with it."""
    from bookvec.indexer import open_store
    from bookvec.indexer.incremental import diff_points
    from bookvec.library.actions import bundle_points, fold_in_books
    from bookvec.model.analysis.evaluate import BookLabels, genre_agreement, sample_rows
    from bookvec.model.corpus.prepare import prepare
    from bookvec.model.corpus.read import read_books
    from bookvec.model.runtime import Runtime
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.pipeline import train_bundle, warm_config
    from bookvec.settings import QdrantSettings

    work = Path(tempfile.mkdtemp(prefix="bookvec-incremental-"))
    os.environ["BOOKVEC_HOME"] = str(work / "home")
    split = split_corpus(corpus, work, seed)
    config = TrainConfig(seed=seed, threads=threads)
    quiet = {"progress": False, "evaluate": False, "checkpoints": False}

    t = time.perf_counter()
    old = train_bundle(work / "old.ndjson", config=config, **quiet)
    old_seconds = time.perf_counter() - t
    store_dir = work / "store"
    with open_store(QdrantSettings(), path=store_dir) as store:
        t = time.perf_counter()
        store.replace_all(bundle_points(old), vector_size=old.dim, model_version=old.model_id)
        full_index_seconds = time.perf_counter() - t

    full = prepare(work / "full.ndjson")
    titles = full.books.get_column("title").to_list()
    labels = BookLabels.from_books(full.books)
    new_rows = np.array([i for i, t in enumerate(titles) if t in split["new_titles"]])
    old_rows = np.array([i for i, t in enumerate(titles) if t in old.book_index])
    queries = sample_rows(len(old_rows), MAX_QUERIES, seed)

    # (a) fold-in
    t = time.perf_counter()
    new_books = [b for b in read_books(work / "full.ndjson") if b.title in split["new_titles"]]
    folded = fold_in_books(new_books, old, Runtime(old.path, device="cpu"))
    fold_seconds = time.perf_counter() - t
    folded_vec = {p.title: np.asarray(p.vector, dtype=np.float32) for p in folded.points}

    methods = [*variants, "cold"]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    bundles = {}
    for r in range(repeats):
        for method in methods if r % 2 == 0 else methods[::-1]:
            t = time.perf_counter()
            if method != "cold":
                cfg = warm_config(old, seed=seed, threads=threads, **variants[method])
                b = train_bundle(work / "full.ndjson", warm_start=old, config=cfg, **quiet)
            else:
                b = train_bundle(work / "full.ndjson", config=config, **quiet)
            seconds = b.manifest.metrics["train_seconds"]
            runs[method].append({"wall_s": time.perf_counter() - t, "train_s": seconds})
            bundles[method] = b  # same seed: every repeat gives the same vectors

    old_space = _space(old, titles)[old_rows]
    cold_space = _space(bundles["cold"], titles)[old_rows]
    base = {
        "old": _neighbours(old_space, queries),
        "cold": _neighbours(cold_space, queries),
    }

    def measure(name, bundle, extra=None) -> dict:
        space = _space(bundle, titles, extra)
        book_vec = {t: space[i] for i, t in enumerate(titles) if space[i].any()}
        link_vec = dict(zip(bundle.link_names, _unit(np.asarray(bundle.link_vectors)), strict=True))
        auc, scored = _auc(book_vec, link_vec, split["held"], split["negatives"])
        agreement, counted = genre_agreement(_neighbours(space, new_rows), labels, queries=new_rows)
        nb = base["old"] if name == "fold-in" else _neighbours(space[old_rows], queries)
        row = {
            "held_out_auc": round(auc, 4),
            "held_out_pairs_scored": scored,
            "new_genre_agreement@10": round(agreement, 4),
            "old_top10_overlap_with_90%": round(_overlap(nb, base["old"]), 4),
            "old_top10_overlap_with_cold_100%": round(_overlap(nb, base["cold"]), 4),
        }
        return row

    results = {"fold-in": measure("fold-in", old, folded_vec)}
    results["fold-in"].update(
        wall_s=round(fold_seconds, 3),
        train_s=0.0,
        store_points_written=len(folded.points),
        not_folded_in=len(folded.rejected),
    )
    for method in methods:
        row = measure(method, bundles[method])
        walls = [x["wall_s"] for x in runs[method]]
        trains = [x["train_s"] for x in runs[method]]
        row.update(
            wall_s=round(float(np.median(walls)), 3),
            wall_s_range=[round(min(walls), 3), round(max(walls), 3)],
            train_s=round(float(np.median(trains)), 3),
            train_s_range=[round(min(trains), 3), round(max(trains), 3)],
            epochs=bundles[method].manifest.metrics["epochs_run"],
            best_epoch=bundles[method].manifest.metrics["best_epoch"],
        )
        if method != "cold":
            row["schedule"] = bundles[method].manifest.warm_start["schedule"]
        with open_store(QdrantSettings(), path=store_dir, read_only=True) as store:
            changes = diff_points(store, bundle_points(bundles[method]))
        row["reindex"] = changes.counts()
        moves = _moves(old, bundles[method])
        row["old_book_move_l2_quartiles"] = [
            round(float(q), 4) for q in np.quantile(moves, [0.25, 0.5, 0.75])
        ]
        row["store_points_written"] = changes.written + changes.removed
        results[method] = row
    # the incremental reindex itself (warm), against the full rebuild of the 90% store
    with open_store(QdrantSettings(), path=store_dir) as store:
        t = time.perf_counter()
        changes = diff_points(store, bundle_points(bundles["warm"]))
        store.apply_changes(
            changes.upserts, changes.deletes, model_version=bundles["warm"].model_id
        )
        results["warm"]["reindex_seconds"] = round(time.perf_counter() - t, 3)
    cold, folded_agreement = results["cold"], results["fold-in"]["new_genre_agreement@10"]
    return {
        "corpus": str(corpus),
        "books": len(titles),
        "new_books": int(len(new_rows)),
        "links_old": old.n_links,
        "links_full": full.n_links,
        "warm_start": bundles["warm"].manifest.warm_start,
        "repeats": repeats,
        "old_model_wall_s": round(old_seconds, 3),
        "full_index_seconds_90%": round(full_index_seconds, 3),
        "results": results,
        "goals": {name: _goals(results[name], cold, folded_agreement) for name in variants},
        "workdir": str(work),
    }


def _goals(warm: dict, cold: dict, folded_agreement: float) -> dict:
    return {
        "auc_gap_warm_vs_cold": round(cold["held_out_auc"] - warm["held_out_auc"], 4),
        "train_time_ratio_warm_over_cold": round(warm["train_s"] / cold["train_s"], 3),
        "wall_time_ratio_warm_over_cold": round(warm["wall_s"] / cold["wall_s"], 3),
        "agreement_warm_minus_foldin": round(warm["new_genre_agreement@10"] - folded_agreement, 4),
        "agreement_cold_minus_warm": round(
            cold["new_genre_agreement@10"] - warm["new_genre_agreement@10"], 4
        ),
        "old_overlap_warm": warm["old_top10_overlap_with_90%"],
        "old_overlap_cold": cold["old_top10_overlap_with_90%"],
    }


def _variant(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE,...`` (``warm_*`` options; values as JSON, else strings)."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


def _table(result: dict) -> str:
    rows = [
        "| | wall s | train s | held-out AUC | new books' genre agr.@10 | old top-10 vs 90% "
        "| old top-10 vs cold 100% | store points written |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["results"].items():
        rows.append(
            f"| {name} | {r['wall_s']:.2f} | {r['train_s']:.2f} | {r['held_out_auc']:.4f} "
            f"| {r['new_genre_agreement@10']:.4f} | {r['old_top10_overlap_with_90%']:.3f} "
            f"| {r['old_top10_overlap_with_cold_100%']:.3f} | {r['store_points_written']:,} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="p15", help="p15, synthetic, or a corpus file")
    parser.add_argument("--books", type=int, default=None, help="synthetic: books (full shape)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--warm",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="another warm start beside the default one, e.g. "
        "'old:warm_rest_lr=1,warm_changed_lr=1,warm_anchor=0' (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.corpus == "p15":
        corpus = P15
    elif args.corpus == "synthetic":
        from bookvec.model.corpus.synth import FULL_BOOKS, synthesize

        n = args.books or FULL_BOOKS
        corpus = Path(tempfile.gettempdir()) / f"bookvec-synth-{n}-{args.seed}.ndjson"
        if not corpus.is_file():
            synthesize(corpus, n_books=n, seed=args.seed)
    else:
        corpus = Path(args.corpus)
    variants = {"warm": {}, **dict(_variant(v) for v in args.warm)}
    result = run(corpus, args.seed, args.repeats, args.threads, variants)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_table(result))
        print(json.dumps(result["goals"], indent=2))
        reindex = result["results"]["warm"]["reindex"]
        print(f"warm reindex: {reindex}")


if __name__ == "__main__":
    main()
