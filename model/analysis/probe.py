"""Embeddings as features: the claim that 50 learned numbers beat one-hot encoding, measured.

The genre probe predicts a book's top-level genre (its first canonical genre among the corpus's
``n_top`` most common, for books that have one) with a plain linear classifier: scikit-learn's
logistic regression, stratified k-fold cross-validation, fixed seed. The same classifier runs
on each feature set:

- ``bookvec``: the learned vectors (standardised);
- ``one_hot``: one-hot book ids, the seed article's strawman. A held-out book's id column was
  never seen in training, so the classifier can only predict the majority class: one-hot ids
  carry no information about an unseen book, whatever the model;
- ``binary_links``: the book's row of the binary book x link matrix (training pairs only);
- ``random``: Gaussian vectors of the same size as the learned ones.

The same-author probe asks whether a book's nearest book (cosine) is by the same author; for
one-hot ids every pair of books is at cosine 0, so the answer is chance (see
``evaluate.author_nn_chance``). No torch.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from bookvec.errors import ConfigError
from bookvec.model.analysis.evaluate import (
    BookLabels,
    Features,
    author_metrics,
    author_nn_chance,
    book_link_matrix,
    nearest_neighbours,
    random_vectors,
)

if TYPE_CHECKING:
    import polars as pl

TOP_GENRES = 10
FOLDS = 5
FEATURE_SETS = ("bookvec", "one_hot", "binary_links", "random")


def genre_targets(
    genres: list[list[str] | None], n_top: int = TOP_GENRES
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(book rows, class ids, class names): each book's first genre among the ``n_top`` most
    common (books counted once per genre; ties by name), for the books that have one."""
    counts = Counter(g for book in genres for g in dict.fromkeys(book or ()))
    classes = [g for g, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))][:n_top]
    class_id = {g: i for i, g in enumerate(classes)}
    rows: list[int] = []
    labels: list[int] = []
    for i, book in enumerate(genres):
        first = next((class_id[g] for g in book or () if g in class_id), None)
        if first is not None:
            rows.append(i)
            labels.append(first)
    return np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.int64), classes


def one_hot_ids(n_books: int) -> sp.csr_matrix:
    """The one-hot encoding of book ids: an (n, n) sparse identity."""
    return sp.identity(n_books, dtype=np.float32, format="csr")


def probe_features(
    book_vectors: np.ndarray,
    *,
    train_pairs: np.ndarray | None,
    n_links: int,
    seed: int = 0,
    prebuilt: dict[str, Features] | None = None,
) -> dict[str, Features]:
    """The probe's feature sets; ``binary_links`` only when the training pairs are known."""
    prebuilt = prebuilt or {}
    n_books, dim = book_vectors.shape
    features: dict[str, Features] = {"bookvec": book_vectors, "one_hot": one_hot_ids(n_books)}
    if "binary_links" in prebuilt:
        features["binary_links"] = prebuilt["binary_links"]
    elif train_pairs is not None:
        features["binary_links"] = book_link_matrix(train_pairs, n_books, n_links, binary=True)
    features["random"] = prebuilt.get("random", random_vectors(n_books, dim, seed))
    return features


def genre_probe(
    features: Features, targets: np.ndarray, *, folds: int = FOLDS, seed: int = 0
) -> dict[str, float]:
    """Mean (and std) accuracy and macro-F1 of logistic regression over stratified folds."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    dense = not sp.issparse(features)
    x = np.asarray(features, dtype=np.float32) if dense else sp.csr_matrix(features)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracy: list[float] = []
    macro_f1: list[float] = []
    converged = True
    for train_idx, test_idx in splitter.split(np.zeros(len(targets)), targets):
        classifier = LogisticRegression(max_iter=1000, random_state=seed)
        model = make_pipeline(StandardScaler(), classifier) if dense else classifier
        # One BLAS/OpenMP thread: measured 7-10x faster than the default on a busy 2-core box.
        with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x[train_idx], targets[train_idx])
        converged &= not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        predicted = model.predict(x[test_idx])
        accuracy.append(accuracy_score(targets[test_idx], predicted))
        macro_f1.append(f1_score(targets[test_idx], predicted, average="macro", zero_division=0))
    return {
        "accuracy": float(np.mean(accuracy)),
        "accuracy_std": float(np.std(accuracy)),
        "macro_f1": float(np.mean(macro_f1)),
        "macro_f1_std": float(np.std(macro_f1)),
        "converged": bool(converged),
    }


def run_probe(
    features: dict[str, Features],
    books: pl.DataFrame,
    labels: BookLabels | None = None,
    *,
    neighbours: dict[str, np.ndarray] | None = None,
    queries: np.ndarray | None = None,
    n_top: int = TOP_GENRES,
    folds: int = FOLDS,
    k: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """The genre probe and the same-author probe for every feature set given, JSON-ready.

    Classes with fewer books than ``folds`` are dropped (stratified folds need one per fold).
    ``neighbours`` reuses k-nearest-neighbour arrays already computed for a feature set, for
    the books ``queries`` (default all); the same-author probe is over those books.
    """
    if folds < 2:
        raise ConfigError(f"folds={folds} must be at least 2")
    labels = labels or BookLabels.from_books(books)
    neighbours = dict(neighbours or {})
    rows, targets, classes = genre_targets(books.get_column("genres").to_list(), n_top)
    sizes = np.bincount(targets, minlength=len(classes))
    kept = [c for c in range(len(classes)) if sizes[c] >= folds]
    keep = np.isin(targets, kept)
    rows, targets = rows[keep], np.searchsorted(kept, targets[keep])
    classes = [classes[c] for c in kept]

    genre: dict[str, Any] = {"classes": classes, "books": int(len(rows)), "folds": folds}
    if len(classes) < 2:
        genre["skipped"] = "fewer than two genres with enough books"
        genre["results"] = {}
    else:
        genre["majority_share"] = float(np.bincount(targets).max() / len(targets))
        genre["results"] = {
            name: genre_probe(_take_rows(matrix, rows), targets, folds=folds, seed=seed)
            for name, matrix in features.items()
        }

    queries = np.arange(labels.n_books) if queries is None else np.asarray(queries)
    eligible = int((labels.author_books[queries] >= 2).sum())
    same_author: dict[str, Any] = {"books": eligible, "results": {}}
    for name, matrix in features.items():
        if name == "one_hot":
            same_author["results"][name] = author_nn_chance(labels, queries)
            continue
        if name not in neighbours:
            k_here = min(k, labels.n_books - 1)
            neighbours[name] = nearest_neighbours(matrix, k_here, queries=queries)
        metrics = author_metrics(neighbours[name], labels, queries)
        same_author["results"][name] = metrics["author_nn@1"]
    return {"genre": genre, "same_author": same_author}


def _take_rows(matrix: Features, rows: np.ndarray) -> Features:
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix)[rows]
    return np.asarray(matrix)[rows]
