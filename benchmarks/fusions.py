"""Fusions of the dense and sparse sides measured offline, in numpy (issue 13): the store's
formula reproduced (dense cosine + w x sparse score, BM25 document weights x Qdrant's IDF on
the query side), the same divided by the query's own sparse score ("self"), and the TF-IDF
cosine as the sparse side, beside the dense side and the TF-IDF / BM25 / ALS / SVD baselines:
genre agreement@10 and same-author recall@10 over 1,000 seeded query books and seeds.

    python benchmarks/fusions.py ../shared/data/p15_books.ndjson            # seeds 0, 1, 2
    python benchmarks/fusions.py CORPUS '{"embedding_dim": 100}' 0           # a config, seed 0
"""

import json
import sys

import numpy as np
import scipy.sparse as sp

from bookvec.model.analysis.baselines import baseline_features, tfidf_matrix
from bookvec.model.analysis.evaluate import training_pairs
from bookvec.model.analysis.neighbours import BookLabels, neighbour_metrics
from bookvec.model.corpus.prepare import prepare
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.train import train
from bookvec.sparse import BM25_B, BM25_K1

K = 10
data = sys.argv[1]
overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1, 2]
prep = prepare(data)
pairs = np.asarray(prep.pairs)
labels = BookLabels.from_books(prep.books)
n = prep.n_books
nq = min(n, 1000)


def topk(S, queries):
    S = S.copy()
    S[np.arange(len(queries)), queries] = -np.inf
    idx = np.argpartition(-S, K, axis=1)[:, :K]
    o = np.take_along_axis(S, idx, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(idx, o, 1)


def metr(S, queries):
    m = neighbour_metrics(topk(S, queries), labels, queries)
    return round(m["genre_agreement@10"], 4), round(m["author_recall@10"], 4)


res = {}
for seed in seeds:
    queries = (
        np.sort(np.random.default_rng(seed).choice(n, nq, replace=False))
        if n > nq
        else np.arange(n)
    )
    tr = train(pairs, n, prep.n_links, TrainConfig(seed=seed, **overrides), progress=False)
    tp = training_pairs(pairs, tr.held_out_pairs, prep.n_links)
    counts = sp.csr_matrix(
        (np.ones(len(tp), np.float32), (tp[:, 0], tp[:, 1])), shape=(n, prep.n_links)
    )
    counts.sum_duplicates()
    T = tfidf_matrix(counts)
    tf = (T[queries] @ T.T).toarray()
    # bm25 as the store does: doc side bm25 tf weights, query side x Qdrant idf
    binc = counts.copy()
    binc.data[:] = 1
    df = np.asarray(binc.sum(0)).ravel()
    qidf = np.log((n - df + 0.5) / (df + 0.5) + 1)
    lens = np.asarray(binc.sum(1)).ravel()
    avg = lens.mean()
    C = counts.tocoo()
    w = C.data * (BM25_K1 + 1) / (C.data + BM25_K1 * (1 - BM25_B + BM25_B * lens[C.row] / avg))
    B = sp.csr_matrix((w, (C.row, C.col)), shape=counts.shape)
    Q = (B[queries].multiply(qidf)).tocsr()
    bm = (Q @ B.T).toarray()
    self_s = np.asarray(Q.multiply(B[queries]).sum(1)).ravel() + 1e-9
    u = tr.book_embeddings / np.linalg.norm(tr.book_embeddings, axis=1, keepdims=True)
    D = u[queries] @ u.T
    r = {
        "dense": metr(D, queries),
        "tfidf": metr(tf, queries),
        "bm25": metr(bm, queries),
        "d+1bm25(default)": metr(D + bm, queries),
    }
    base = baseline_features(tp, n, prep.n_links, names=("als", "svd"), seed=seed)
    for name in ("als", "svd"):
        A = base[name].books
        A = A.toarray() if sp.issparse(A) else np.asarray(A)
        A = A / (np.linalg.norm(A, axis=1, keepdims=True) + 1e-9)
        r[name] = metr(A[queries] @ A.T, queries)
    rel = bm / self_s[:, None]
    for wt in (0.5, 1, 2, 4):
        r[f"d+{wt}bm/self"] = metr(D + wt * rel, queries)
    for wt in (0.5, 1, 2):
        r[f"d+{wt}tf"] = metr(D + wt * tf, queries)
    r["val_auc"] = (round(max((h.get("val_auc") or 0) for h in tr.history), 4), len(tr.history))
    res[seed] = r
    print(seed, json.dumps(r), flush=True)
print("mean+-sd over seeds")
for name in [k for k in res[seeds[0]] if k != "val_auc"]:
    g = np.array([res[s][name][0] for s in res])
    a = np.array([res[s][name][1] for s in res])

    def sd(x):
        return x.std(ddof=1) if len(x) > 1 else 0.0

    print(f"{name:18} genre {g.mean():.4f}+-{sd(g):.4f}  author {a.mean():.4f}+-{sd(a):.4f}")
