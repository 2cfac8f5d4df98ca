"""Every sparse weighting x fusion measured on both neighbour metrics at once (issue 13), offline
in numpy: is there a search that beats the best genre baseline and the best same-author
baseline together (mean - sd >= each baseline's mean, over seeds)?

Per seed: the model trained (TrainConfig, seed), the sparse sides built from the training
pairs with bookvec.sparse's own weights (bm25 with Qdrant's IDF on the query side, tfidf,
coherent) and two that are not store weightings (tfidf with tf^1.5 and IDF^1.5; coherent with
c instead of c^2), each searched alone and fused with the dense cosine: the normalised formula
(dense + w x sparse / best sparse, the store's), the plain sum (dense + w x sparse, for the
cosine sides) and weighted RRF. Prints each search's genre agreement@10 / same-author
recall@10 (mean +- sd), which goals it meets, and the Pareto frontier.

    python benchmarks/frontier.py                                   # p15, seeds 0-5
    python benchmarks/frontier.py --data CORPUS --queries 2000 --seeds 0 1 2
    python benchmarks/frontier.py --config '{"negative_power": 0.75}' --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

K = 10
P15 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "p15_books.ndjson"
NORMALISED_WEIGHTS = (0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SUM_WEIGHTS = (0.5, 1.0, 2.0)
RRF = ((1, 1.0), (1, 2.0), (10, 1.0), (10, 2.0), (60, 1.0), (60, 2.0))  # (k, sparse weight)


def topk(scores: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = scores.copy()
    scores[np.arange(len(queries)), queries] = -np.inf  # the query book itself
    idx = np.argpartition(-scores, K, axis=1)[:, :K]
    order = np.take_along_axis(scores, idx, 1).argsort(axis=1, kind="stable")[:, ::-1]
    return np.take_along_axis(idx, order, 1)


def ranks(scores: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = scores.copy()
    scores[np.arange(len(queries)), queries] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    out = np.empty_like(order)
    out[np.arange(len(queries))[:, None], order] = np.arange(scores.shape[1])[None, :]
    return out


def over_best(scores: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Scores / the best one that is not the query book's own (the store's normalisation)."""
    masked = scores.copy()
    masked[np.arange(len(queries)), queries] = -np.inf
    return scores / np.maximum(masked.max(axis=1, keepdims=True), 1e-12)


def rows_matrix(vectors, n_books: int, n_links: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for book, (indices, values) in enumerate(vectors):
        rows += [book] * len(indices)
        cols += indices
        vals += values
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_books, n_links), dtype=np.float64)


def sparse_sides(train_pairs, n_books, n_links, book_vectors, queries) -> dict[str, np.ndarray]:
    from bookvec.sparse import link_weights

    sides = {}
    for name in ("bm25", "tfidf", "coherent"):
        weights = link_weights(train_pairs, n_books, n_links, name, book_vectors)
        docs = rows_matrix(weights.book_vectors(train_pairs, n_books), n_books, n_links)
        query = docs[queries]
        if weights.store_idf:  # Qdrant's IDF modifier on the query side
            df = np.diff(docs.tocsc().indptr).astype(np.float64)
            query = query.multiply(np.log((n_books - df + 0.5) / (df + 0.5) + 1.0)).tocsr()
        sides[name] = (query @ docs.T).toarray()
    counts = sp.csr_matrix(
        (np.ones(len(train_pairs)), (train_pairs[:, 0], train_pairs[:, 1])),
        shape=(n_books, n_links),
    )
    counts.sum_duplicates()
    distinct = counts.copy()
    distinct.data[:] = 1
    df = np.asarray(distinct.sum(axis=0)).ravel()
    idf = np.log((1.0 + n_books) / (1.0 + df)) + 1.0
    unit = book_vectors / np.linalg.norm(book_vectors, axis=1, keepdims=True)
    coherence = np.linalg.norm(distinct.T @ unit, axis=1) / np.maximum(df, 1.0)
    for name, tf_power, column in (
        ("tf^1.5 idf^1.5", 1.5, idf**1.5),
        ("coherent c^1", 1.0, idf * coherence),
    ):
        matrix = counts.copy()
        matrix.data = matrix.data**tf_power
        matrix = matrix.multiply(column).tocsr()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        matrix = (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix).tocsr()
        sides[name] = (matrix[queries] @ matrix.T).toarray()
    return sides


def searches(dense: np.ndarray, sides: dict[str, np.ndarray], queries: np.ndarray):
    """(name, scores) of every search measured."""
    yield "dense", dense
    dense_rank = ranks(dense, queries)
    for side, scores in sides.items():
        yield f"{side} alone", scores
        normalised = over_best(scores, queries)
        for w in NORMALISED_WEIGHTS:
            yield f"dense + {w:g} x {side} / best", dense + w * normalised
        if side != "bm25":  # cosines: the plain sum means something
            for w in SUM_WEIGHTS:
                yield f"dense + {w:g} x {side}", dense + w * scores
        side_rank = np.where(scores > 0, ranks(scores, queries), 10**9)
        for k, w in RRF:
            yield (
                f"rrf k {k} dense + {w:g} x {side}",
                1 / (k + 1 + dense_rank) + w / (k + 1 + side_rank),
            )


def run(args) -> dict:
    from bookvec.model.analysis.baselines import baseline_features
    from bookvec.model.analysis.evaluate import sample_rows, training_pairs
    from bookvec.model.analysis.neighbours import BookLabels, neighbour_metrics
    from bookvec.model.corpus.prepare import prepare
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.train import train

    prepared = prepare(args.data)
    pairs = np.asarray(prepared.pairs)
    labels = BookLabels.from_books(prepared.books)
    n = prepared.n_books
    overrides = json.loads(args.config) if args.config else {}
    found: dict[str, list[tuple[float, float]]] = {}

    def measure(name, scores, queries):
        m = neighbour_metrics(topk(scores, queries), labels, queries)
        found.setdefault(name, []).append((m["genre_agreement@10"], m["author_recall@10"]))

    for seed in args.seeds:
        trained = train(
            pairs, n, prepared.n_links, TrainConfig(seed=seed, **overrides), progress=False
        )
        train_pairs = training_pairs(pairs, trained.held_out_pairs, prepared.n_links)
        queries = sample_rows(n, args.queries, seed) if args.queries else np.arange(n)
        vectors = trained.book_embeddings
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        dense = unit[queries] @ unit.T
        sides = sparse_sides(train_pairs, n, prepared.n_links, vectors, queries)
        for name, scores in searches(dense, sides, queries):
            measure(name, scores, queries)
        base = baseline_features(train_pairs, n, prepared.n_links, names=("als", "svd"), seed=seed)
        for name in ("als", "svd"):
            books = base[name].books
            books = books.toarray() if sp.issparse(books) else np.asarray(books)
            books = books / np.maximum(np.linalg.norm(books, axis=1, keepdims=True), 1e-12)
            measure(f"baseline {name}", books[queries] @ books.T, queries)
        print(f"seed {seed}: {len(found)} searches", file=sys.stderr, flush=True)
    return summarise(found)


def summarise(found: dict[str, list[tuple[float, float]]]) -> dict:
    def stat(values):
        a = np.asarray(values)
        return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0

    rows = {}
    for name, values in found.items():
        (g, g_sd), (a, a_sd) = stat([v[0] for v in values]), stat([v[1] for v in values])
        rows[name] = {"genre": g, "genre_sd": g_sd, "author": a, "author_sd": a_sd}
    genre_bar = max(rows[f"baseline {b}"]["genre"] for b in ("als", "svd"))
    author_bar = rows["tfidf alone"]["author"]  # the TF-IDF baseline: the same cosines
    for row in rows.values():
        row["meets_genre"] = row["genre"] - row["genre_sd"] >= genre_bar
        row["meets_author"] = row["author"] - row["author_sd"] >= author_bar
    searched = {k: v for k, v in rows.items() if not k.startswith("baseline")}
    frontier = [
        name
        for name, r in searched.items()
        if not any(
            o["genre"] >= r["genre"]
            and o["author"] >= r["author"]
            and (o["genre"], o["author"]) != (r["genre"], r["author"])
            for o in searched.values()
        )
    ]
    frontier.sort(key=lambda name: -rows[name]["genre"])
    return {
        "genre_bar": genre_bar,
        "author_bar": author_bar,
        "meets_both": [k for k, r in searched.items() if r["meets_genre"] and r["meets_author"]],
        "frontier": frontier,
        "searches": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(P15))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--queries", type=int, default=0, help="query books a seed (0: all)")
    parser.add_argument("--config", help='TrainConfig overrides, JSON: {"negative_power": 0}')
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    show(result, result["frontier"])


def show(result: dict, names: list[str]) -> None:
    """The goal, then each search named (G / A: meets the genre / author goal; *: on the
    frontier), then which meet both."""
    rows = result["searches"]
    print(f"goal: genre >= {result['genre_bar']:.4f} and same-author >= "
          f"{result['author_bar']:.4f} (mean - sd)")  # fmt: skip
    for name in names:
        r = rows[name]
        marks = ("G" if r["meets_genre"] else "-") + ("A" if r["meets_author"] else "-")
        star = "*" if name in result["frontier"] else " "
        print(f" {star}{marks} {name:44} {r['genre']:.4f} +- {r['genre_sd']:.4f} / "
              f"{r['author']:.4f} +- {r['author_sd']:.4f}")  # fmt: skip
    print(f"meets both: {result['meets_both'] or 'none'}")


if __name__ == "__main__":
    main()
