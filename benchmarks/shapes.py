"""The store's hybrid search replicated in numpy, candidate list for candidate list, and the
shapes it could take instead, measured on both neighbour metrics (issue 13).

`benchmarks/frontier.py` fuses whole score matrices; the store fuses two short candidate
lists. This replica does what `EdgeStore.search_like(title, mode="hybrid")` does on a coherent
collection: the dense side's `prefetch` best by cosine, the sparse side's `prefetch` best by
the dot product of the query's `sparse_terms` heaviest links with each book's sparse vector
(books sharing no link are not returned), the query book left out of both; then
dense + w x sparse / best sparse over the union, a candidate only the sparse side found
counting its own cosine, one only the dense side found counting 0 sparse. On p15 it gives the
figures `benchmarks/modes.py` measures through the store (0.5317 / 0.7857 over seeds 0-5).

Beside it, per seed:
- fusion shapes: the normalised sparse score to a power (d + w x s^p), a product
  (d + w x s x max(d, 0)), a dense gate (the sparse part only where d > t), and the formula
  with a dense-only candidate's true sparse score instead of 0;
- the dense side as the trained vector blended with the fold-in of the book's links' raw
  vectors, normalise(unit(b) + normalise(sum(l - mean l)));
- the sparse side's link weights IDF^a x c^p (the store's: a 1, p 2).
Prints the frontier and which searches meet both goals (mean - sd >= the best baseline's mean:
ALS or SVD for genre agreement, TF-IDF for same-author recall), as frontier.py does.

    python benchmarks/shapes.py                                   # p15, seeds 0-5
    python benchmarks/shapes.py --synthetic 37020 --seeds 0 1 2 --json      # modes.py's corpus
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from frontier import P15, rows_matrix, show, summarise, topk

K = 10
Fuse = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (d, s, only_dense) -> score


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def heaviest(matrix: sp.csr_matrix, spec) -> sp.csr_matrix:
    """Each row cut as the store cuts a hybrid query (`Hybrid.query_sparse`)."""
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        a, b = matrix.indptr[r], matrix.indptr[r + 1]
        pair = (matrix.indices[a:b].tolist(), matrix.data[a:b].tolist())
        indices, values = spec.query_sparse(pair)
        rows += [r] * len(indices)
        cols += indices
        vals += values
    return sp.csr_matrix((vals, (rows, cols)), shape=matrix.shape)


def replica(
    dense: np.ndarray, sparse: np.ndarray, queries: np.ndarray, fuse: Fuse, pool: int = 50
) -> np.ndarray:
    """(len(queries), K) books: the store's two candidate lists, fused by `fuse`."""
    out = np.full((len(queries), K), -1, dtype=np.int64)
    for row, book in enumerate(queries):
        d, s = dense[row].copy(), sparse[row].copy()
        d[book], s[book] = -np.inf, 0.0
        dense_side = np.argsort(-d, kind="stable")[:pool]
        sparse_side = np.argsort(-s, kind="stable")[:pool]
        sparse_side = sparse_side[s[sparse_side] > 0]
        top = s[sparse_side].max() if sparse_side.size else 0.0
        candidates = np.asarray(list(dict.fromkeys([*dense_side, *sparse_side])), dtype=np.int64)
        only_dense = ~np.isin(candidates, sparse_side)
        s_norm = s[candidates] / top if top > 0 else np.zeros(candidates.size)
        score = fuse(d[candidates], s_norm, only_dense)
        best = candidates[np.argsort(-score, kind="stable")][:K]
        out[row, : best.size] = best
    return out


def formula(w: float, power: float = 1.0, *, true_sparse: bool = False) -> Fuse:
    def fuse(d, s, only_dense):
        part = s**power if true_sparse else np.where(only_dense, 0.0, s**power)
        return d + w * part

    return fuse


def product(w: float) -> Fuse:
    return lambda d, s, only_dense: d + w * np.where(only_dense, 0.0, s) * np.maximum(d, 0.0)


def gate(w: float, t: float) -> Fuse:
    return lambda d, s, only_dense: d + w * np.where(only_dense, 0.0, s) * (d > t)


FUSIONS: dict[str, Fuse] = {
    **{f"store formula w {w:g}": formula(w) for w in (0.3, 0.5, 0.75, 1.0, 1.5)},
    **{f"power {p:g} w {w:g}": formula(w, p) for p in (2, 4) for w in (0.5, 1.0, 1.5)},
    **{f"product w {w:g}": product(w) for w in (0.5, 1.0, 2.0, 3.0)},
    **{f"gate d > {t:g} w {w:g}": gate(w, t) for t in (0.3, 0.5) for w in (0.5, 1.0)},
    **{f"true sparse w {w:g}": formula(w, true_sparse=True) for w in (0.5, 1.0)},
}
VARIANT_WEIGHTS = (0.4, 0.5, 0.6, 0.75, 1.0)


def link_weights_ac(train_pairs, n_books, n_links, vectors, a: float, p: float) -> sp.csr_matrix:
    """Rows of tf x IDF^a x c^p, L2-normalised (the store's coherent weighting: a 1, p 2)."""
    from bookvec.sparse import LinkWeights, _distinct, coherence

    keys = _distinct(train_pairs[:, 0] * n_links + train_pairs[:, 1])
    df = np.bincount(keys % n_links, minlength=n_links).astype(np.float64)
    idf = np.log((1.0 + n_books) / (1.0 + df)) + 1.0
    c = coherence(keys, n_books, n_links, df, vectors)
    weights = LinkWeights("coherent", idf**a * c**p, 1.0)
    return rows_matrix(weights.book_vectors(train_pairs, n_books), n_books, n_links)


def fold_in_blend(vectors, link_vectors, train_pairs, n_books, n_links) -> np.ndarray:
    incidence = sp.csr_matrix(
        (np.ones(len(train_pairs)), (train_pairs[:, 0], train_pairs[:, 1])),
        shape=(n_books, n_links),
    )
    centred = link_vectors - link_vectors.mean(axis=0)
    return unit_rows(unit_rows(vectors) + unit_rows(np.asarray(incidence @ centred)))


def corpus(args) -> str:
    if not args.synthetic:
        return args.data
    import tempfile
    from pathlib import Path

    from bookvec.model.corpus.synth import synthesize

    path = Path(tempfile.mkdtemp(prefix="bookvec-shapes-")) / "synthetic.ndjson"
    synthesize(path, n_books=args.synthetic, seed=0)
    return str(path)


def run(args) -> dict:
    from bookvec.indexer.hybrid import for_weighting
    from bookvec.model.analysis.baselines import baseline_features
    from bookvec.model.analysis.evaluate import sample_rows, training_pairs
    from bookvec.model.analysis.neighbours import BookLabels, neighbour_metrics
    from bookvec.model.corpus.prepare import prepare
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.train import train
    from bookvec.sparse import link_weights

    spec = for_weighting("coherent")
    prepared = prepare(corpus(args))
    pairs = np.asarray(prepared.pairs)
    labels = BookLabels.from_books(prepared.books)
    n, n_links = prepared.n_books, prepared.n_links
    found: dict[str, list[tuple[float, float]]] = {}

    def measure(name, neighbours, queries):
        m = neighbour_metrics(neighbours, labels, queries)
        found.setdefault(name, []).append((m["genre_agreement@10"], m["author_recall@10"]))

    for seed in args.seeds:
        trained = train(pairs, n, n_links, TrainConfig(seed=seed), progress=False)
        train_pairs = training_pairs(pairs, trained.held_out_pairs, n_links)
        queries = sample_rows(n, args.queries, seed) if args.queries else np.arange(n)
        vectors = trained.book_embeddings
        unit = unit_rows(vectors)
        blended = fold_in_blend(vectors, trained.link_embeddings, train_pairs, n, n_links)

        def sparse_scores(docs: sp.csr_matrix, queries: np.ndarray = queries) -> np.ndarray:
            return (heaviest(docs[queries], spec) @ docs.T).toarray()

        coherent = link_weights_ac(train_pairs, n, n_links, vectors, 1.0, 2.0)
        store_sparse = sparse_scores(coherent)
        dense = unit[queries] @ unit.T
        for name, fuse in FUSIONS.items():
            measure(name, replica(dense, store_sparse, queries, fuse, spec.prefetch), queries)
        blend_dense = blended[queries] @ blended.T
        measure("blend dense", topk(blend_dense, queries), queries)
        for w in VARIANT_WEIGHTS:
            found_ = replica(blend_dense, store_sparse, queries, formula(w), spec.prefetch)
            measure(f"blend dense + w {w:g}", found_, queries)
        for a, p in ((0.5, 2.0), (1.0, 3.0), (1.5, 3.0)):
            scores = sparse_scores(link_weights_ac(train_pairs, n, n_links, vectors, a, p))
            for w in (0.5, 1.0):
                found_ = replica(dense, scores, queries, formula(w), spec.prefetch)
                measure(f"idf^{a:g} c^{p:g} w {w:g}", found_, queries)
        # The baselines' bars, as frontier.py measures them.
        tfidf = rows_matrix(
            link_weights(train_pairs, n, n_links, "tfidf").book_vectors(train_pairs, n), n, n_links
        )
        measure("tfidf alone", topk((tfidf[queries] @ tfidf.T).toarray(), queries), queries)
        base = baseline_features(train_pairs, n, n_links, names=("als", "svd"), seed=seed)
        for name in ("als", "svd"):
            books = base[name].books
            books = unit_rows(books.toarray() if sp.issparse(books) else np.asarray(books))
            measure(f"baseline {name}", topk(books[queries] @ books.T, queries), queries)
        print(f"seed {seed}: {len(found)} searches", file=sys.stderr, flush=True)
    return summarise(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(P15))
    parser.add_argument("--synthetic", type=int, default=0, help="a synthetic corpus of N books")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--queries", type=int, default=2000, help="query books a seed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    rows = result["searches"]
    show(result, sorted(rows, key=lambda name: -rows[name]["genre"]))


if __name__ == "__main__":
    main()
