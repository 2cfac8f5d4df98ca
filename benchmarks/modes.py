"""Search modes against the baselines, over seeds: train, then measure every mode through the
store (a temporary Qdrant Edge store, `store.search_like(title, mode=...)`), and the baselines
and genre probe of `bookvec evaluate`, on the same query books.

    python benchmarks/modes.py --data ../shared/data/p15_books.ndjson --seeds 0 1 2
    python benchmarks/modes.py --synthetic 37020 --seeds 0 1 2 --queries 2000
    python benchmarks/modes.py --data ... --sweep      # sparse weightings x fusions, seed 0

Prints one JSON object per run and a summary (mean +- sd over seeds) at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bookvec.sparse import DEFAULT_WEIGHTING

K = 10
GA, AR = f"genre_agreement@{K}", f"author_recall@{K}"


def corpus(args) -> Path:
    if args.data:
        return Path(args.data)
    from bookvec.model.corpus.synth import synthesize

    path = Path(tempfile.mkdtemp(prefix="bookvec-modes-")) / "synthetic.ndjson"
    synthesize(path, n_books=args.synthetic, seed=0)
    return path


def specs(sweep: bool, weights=(0.5, 1.0, 2.0, 4.0)):
    from bookvec.indexer.hybrid import Hybrid

    if not sweep:
        return {}
    out = {"rrf": Hybrid(fusion="rrf"), "dbsf": Hybrid(fusion="dbsf")}
    out["raw1"] = Hybrid(fusion="formula", sparse_weight=1.0, normalise=False)  # the old default
    for w in weights:
        out[f"formula{w:g}"] = Hybrid(fusion="formula", sparse_weight=w)  # normalised
    return out


def run(args) -> None:
    from bookvec.model.analysis.evaluate import evaluate_embeddings, sample_rows, training_pairs
    from bookvec.model.analysis.search_eval import evaluate_modes
    from bookvec.model.corpus.prepare import prepare
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.train import train

    prepared = prepare(corpus(args))
    pairs = np.asarray(prepared.pairs)
    overrides = json.loads(args.config) if args.config else {}
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        config = TrainConfig(seed=seed, **overrides)
        trained = train(pairs, prepared.n_books, prepared.n_links, config, progress=False)
        train_s = time.perf_counter() - started
        held = trained.held_out_pairs
        report = evaluate_embeddings(
            trained.book_embeddings,
            trained.link_embeddings,
            prepared.books,
            pairs=pairs,
            held_out_pairs=held,
            probe=args.probe,
            max_queries=args.queries,
            max_ranked=2000,
            seed=seed,
        )
        train_pairs = training_pairs(pairs, held, prepared.n_links)
        queries = sample_rows(prepared.n_books, args.queries, seed)
        unit = trained.book_embeddings / np.linalg.norm(
            trained.book_embeddings, axis=1, keepdims=True
        )
        modes = {}
        for weighting in args.weightings:
            found = evaluate_modes(
                unit,
                prepared.books,
                train_pairs,
                prepared.n_links,
                queries,
                k=K,
                weighting=weighting,
                specs=specs(args.sweep, args.formula_weights),
            )
            for name, metrics in found.items():
                modes[name if len(args.weightings) == 1 else f"{weighting}/{name}"] = metrics
        row = {
            "seed": seed,
            "train_s": round(train_s, 1),
            "epochs": len(trained.history),
            "val_auc": max((r.get("val_auc") or 0) for r in trained.history),
            "baselines": {n: _pick(m) for n, m in report["neighbours"].items()},
            "modes": {n: _pick(m) for n, m in modes.items()},
            "link_auc": {n: round(m["auc"], 4) for n, m in report["link_prediction"].items()},
        }
        if args.probe:
            genre = report["probe"]["genre"]["results"]
            row["probe"] = {n: round(m["accuracy"], 4) for n, m in genre.items()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary(rows)


def _pick(metrics: dict) -> dict:
    return {GA: round(metrics[GA], 4), AR: round(metrics[AR], 4)}


def summary(rows: list[dict]) -> None:
    def stat(values):
        a = np.asarray(values, dtype=float)
        return f"{a.mean():.3f} +- {a.std(ddof=1) if len(a) > 1 else 0.0:.3f}"

    print(f"\nover seeds {[r['seed'] for r in rows]}:", file=sys.stderr)
    for section in ("modes", "baselines"):
        for name in rows[0][section]:
            ga = stat([r[section][name][GA] for r in rows])
            ar = stat([r[section][name][AR] for r in rows])
            print(f"  {section[:-1]:8} {name:24} {GA} {ga}   {AR} {ar}", file=sys.stderr)
    if "probe" in rows[0]:
        for name in rows[0]["probe"]:
            print(f"  probe    {name:24} {stat([r['probe'][name] for r in rows])}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--synthetic", type=int, default=37_020)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--weightings", nargs="+", default=[DEFAULT_WEIGHTING])
    parser.add_argument("--sweep", action="store_true", help="also RRF, DBSF, raw sum, weights")
    parser.add_argument("--formula-weights", type=float, nargs="+", default=[0.5, 0.75, 1, 1.5])
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--config", help='TrainConfig overrides, JSON: {"negative_power": 0}')
    run(parser.parse_args())


if __name__ == "__main__":
    main()
