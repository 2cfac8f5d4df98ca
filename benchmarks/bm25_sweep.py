"""BM25's parameters for hybrid's sparse side, offline in numpy (issue 13): the store's
normalised formula (dense cosine + w x sparse / the best sparse score among the other books)
with the sparse side's document weights tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len)),
optionally x idf^p, and Qdrant's IDF on the query side; genre agreement@10 and same-author
recall@10 beside the dense side and TF-IDF, mean +- sd over seeds (one model trained a seed).

    python benchmarks/bm25_sweep.py ../shared/data/p15_books.ndjson
    python benchmarks/bm25_sweep.py SYNTHETIC_37K.ndjson --queries 2000 --k1 1.2 5 20 --b 0.25 0.75

Every query book's scores against all books are held in memory: (queries x books) floats.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import scipy.sparse as sp

from bookvec.model.analysis.baselines import tfidf_matrix
from bookvec.model.analysis.evaluate import training_pairs
from bookvec.model.analysis.neighbours import BookLabels, neighbour_metrics
from bookvec.model.corpus.prepare import prepare
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.train import train
from bookvec.sparse import BM25_B, BM25_K1

K = 10


def metrics(scores: np.ndarray, q: np.ndarray, labels: BookLabels) -> tuple[float, float]:
    """Genre agreement@K and same-author recall@K of each query row's K best books."""
    scores = scores.copy()
    scores[np.arange(len(q)), q] = -np.inf  # the query book itself
    idx = np.argpartition(-scores, K, axis=1)[:, :K]
    order = np.take_along_axis(scores, idx, 1).argsort(axis=1)[:, ::-1]
    found = neighbour_metrics(np.take_along_axis(idx, order, 1), labels, q)
    return found[f"genre_agreement@{K}"], found[f"author_recall@{K}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--queries", type=int, default=None, help="query books a seed (all)")
    parser.add_argument("--k1", type=float, nargs="+", default=[BM25_K1, 5.0, 20.0])
    parser.add_argument("--b", type=float, nargs="+", default=[0.25, 0.5, BM25_B])
    parser.add_argument("--idf-power", type=float, nargs="+", default=[0.0])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()

    prep = prepare(args.corpus)
    pairs = np.asarray(prep.pairs)
    n = prep.n_books
    labels = BookLabels.from_books(prep.books)
    rows: dict[str, list[tuple[float, float]]] = {}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        q = (
            np.arange(n)
            if not args.queries or args.queries >= n
            else np.sort(rng.choice(n, args.queries, replace=False))
        )

        model = train(pairs, n, prep.n_links, TrainConfig(seed=seed, threads=1), progress=False)
        tp = training_pairs(pairs, model.held_out_pairs, prep.n_links)
        ones = np.ones(len(tp), np.float32)
        counts = sp.csr_matrix((ones, (tp[:, 0], tp[:, 1])), shape=(n, prep.n_links))
        counts.sum_duplicates()
        binary = counts.copy()
        binary.data[:] = 1
        df = np.asarray(binary.sum(0)).ravel()
        qidf = np.log((n - df + 0.5) / (df + 0.5) + 1)  # Qdrant's IDF modifier
        lens = np.asarray(counts.sum(1)).ravel()  # repeats counted, as bookvec.sparse does
        avg = lens[lens > 0].mean()
        coo = counts.tocoo()
        unit = model.book_embeddings / np.linalg.norm(model.book_embeddings, axis=1, keepdims=True)
        dense = unit[q] @ unit.T
        tfidf = tfidf_matrix(counts)
        found = {
            "dense": metrics(dense, q, labels),
            "tfidf": metrics((tfidf[q] @ tfidf.T).toarray(), q, labels),
        }
        for k1, b, p in itertools.product(args.k1, args.b, args.idf_power):
            norm = 1 - b + b * lens[coo.row] / avg
            values = coo.data * (k1 + 1) / (coo.data + k1 * norm) * qidf[coo.col] ** p
            docs = sp.csr_matrix((values, (coo.row, coo.col)), shape=counts.shape)
            sparse = (docs[q].multiply(qidf).tocsr() @ docs.T).toarray()
            sparse[np.arange(len(q)), q] = 0
            top = sparse.max(1, keepdims=True) + 1e-12
            for w in args.weights:
                name = f"k1 {k1:g} b {b:g} idf^{p:g} w {w:g}"
                found[name] = metrics(dense + w * sparse / top, q, labels)
        for name, value in found.items():
            rows.setdefault(name, []).append(value)
        print(f"seed {seed} done", flush=True)
    for name, values in rows.items():
        a = np.asarray(values)
        sd = a.std(0, ddof=1) if len(a) > 1 else np.zeros(2)
        print(
            f"{name:30} genre {a[:, 0].mean():.4f} +- {sd[0]:.4f}  "
            f"author {a[:, 1].mean():.4f} +- {sd[1]:.4f}"
        )


if __name__ == "__main__":
    main()
