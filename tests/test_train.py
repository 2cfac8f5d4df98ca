"""Training on a planted corpus with a known answer: books of a genre must end up together."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bookvec.errors import ConfigError, InputError
from bookvec.model import train as T
from bookvec.model.config import TrainConfig

N_GENRES, BOOKS_PER_GENRE, GENRE_LINKS, GLOBAL_LINKS = 8, 100, 60, 40


def planted_corpus(seed: int = 0) -> tuple[np.ndarray, int, int, np.ndarray]:
    """8 genres x 100 books; each book links 12 pages of its genre's pool of 60 and 4 of 40
    global pages (popular ones more often), with a few duplicate links kept."""
    rng = np.random.default_rng(seed)
    n_books = N_GENRES * BOOKS_PER_GENRE
    n_links = N_GENRES * GENRE_LINKS + GLOBAL_LINKS
    genre = np.repeat(np.arange(N_GENRES), BOOKS_PER_GENRE)
    popular = 1 / np.arange(1, GLOBAL_LINKS + 1)
    popular /= popular.sum()
    rows = []
    for book in range(n_books):
        own = rng.choice(GENRE_LINKS, 12, replace=False) + GLOBAL_LINKS + genre[book] * GENRE_LINKS
        shared = rng.choice(GLOBAL_LINKS, 4, replace=False, p=popular)
        links = np.concatenate([own, shared, own[:1]])  # one duplicate pair per book
        rows.append(np.stack([np.full(links.size, book), links], 1))
    return np.concatenate(rows).astype(np.int32), n_books, n_links, genre


SMALL = dict(batch_size=256, learning_rate=1e-2, max_epochs=30, patience=3, threads=1)


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


@pytest.fixture(scope="module")
def classifier(corpus):
    pairs, n_books, n_links, _ = corpus
    return T.train(pairs, n_books, n_links, TrainConfig(**SMALL), progress=False)


def nearest_genre_agreement(vectors: np.ndarray, genre: np.ndarray) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return float((genre[sim.argmax(1)] == genre).mean())


# --- config -------------------------------------------------------------------------------------


def test_config_round_trip():
    cfg = TrainConfig(objective="regression", seed=7, threads=2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({}) == TrainConfig()


@pytest.mark.parametrize(
    "bad",
    [
        {"embedding_dim": 0},
        {"objective": "ranking"},
        {"negative_ratio": 0},
        {"batch_size": 1.5},
        {"learning_rate": 0},
        {"max_epochs": True},
        {"validation_fraction": 0.7},
        {"device": "tpu"},
        {"threads": 0},
        {"seed": -1},
    ],
)
def test_config_rejects_invalid_values(bad):
    (name,) = bad
    with pytest.raises(ConfigError, match=f"{name}=.*must be"):
        TrainConfig(**bad)


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown training option.*epochs"):
        TrainConfig.from_dict({"epochs": 3})


# --- pieces -------------------------------------------------------------------------------------


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 5, 40).astype(np.float32)  # many ties on purpose
    neg = rng.integers(0, 4, 60).astype(np.float32)
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert T.auc(torch.from_numpy(pos), torch.from_numpy(neg)) == pytest.approx(expected)


def test_negatives_are_never_observed():
    rng = np.random.default_rng(2)
    n_books, n_links = 30, 20
    pairs = torch.from_numpy(rng.integers(0, [n_books, n_links], (400, 2)))  # dense: ~50%
    observed = torch.unique(T.pair_keys(pairs[:, 0], pairs[:, 1], n_links))
    gen = torch.Generator().manual_seed(0)
    books, links = T.sample_negatives(5000, n_books, n_links, observed, gen)
    assert not T.is_observed(T.pair_keys(books, links, n_links), observed).any()
    assert books.max() < n_books and links.max() < n_links and books.min() >= 0


def test_bad_pairs_raise_input_error():
    with pytest.raises(InputError, match="link index 9"):
        T.train(np.array([[0, 1], [1, 9]]), 2, 5, TrainConfig(**SMALL), progress=False)
    with pytest.raises(InputError, match="shape"):
        T.train(np.zeros((3, 3), dtype=int), 2, 5, TrainConfig(**SMALL), progress=False)


# --- learning -----------------------------------------------------------------------------------


def test_classifier_learns_the_planted_genres(classifier, corpus):
    genre = corpus[3]
    assert classifier.metrics["val_auc"] > 0.9
    assert nearest_genre_agreement(classifier.book_embeddings, genre) > 0.8
    assert classifier.book_embeddings.dtype == np.float32
    assert classifier.book_embeddings.shape == (800, 50)
    assert classifier.link_embeddings.shape == (520, 50)
    assert classifier.metrics["device"] == "cpu"


def test_early_stopping_keeps_the_best_epoch(classifier, corpus):
    history = classifier.history
    aucs = [row["val_auc"] for row in history]
    best = classifier.metrics["best_epoch"]
    assert classifier.metrics["val_auc"] == history[best - 1]["val_auc"]
    assert max(aucs) - classifier.metrics["val_auc"] <= classifier.config.min_delta
    if classifier.metrics["stopped_early"]:
        assert len(history) - best == SMALL["patience"]
    for row in history:
        assert set(row) == {"epoch", "loss", "val_auc", "seconds", "samples_per_s"}
    # the returned weights are the best epoch's: their AUC is the best epoch's
    pairs, n_books, n_links, _ = corpus
    _, _, val = T.holdout(
        torch.from_numpy(pairs.astype(np.int64)), n_books, n_links, classifier.config
    )
    model = T.BookLinkModel.from_trained(classifier)
    assert T.evaluate(model, val) == pytest.approx(classifier.metrics["val_auc"], abs=1e-6)


def test_regression_learns(corpus):
    pairs, n_books, n_links, genre = corpus
    cfg = TrainConfig(**{**SMALL, "objective": "regression"})
    model = T.train(pairs, n_books, n_links, cfg, progress=False)
    assert model.metrics["val_auc"] > 0.9
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    assert nearest_genre_agreement(model.book_embeddings, genre) > 0.8


def test_same_seed_same_vectors_bit_for_bit(corpus):
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 2})
    a = T.train(pairs, n_books, n_links, cfg, progress=False)
    b = T.train(pairs, n_books, n_links, cfg, progress=False)
    c = T.train(
        pairs,
        n_books,
        n_links,
        TrainConfig(**{**SMALL, "max_epochs": 2, "seed": 1}),
        progress=False,
    )
    assert np.array_equal(a.book_embeddings, b.book_embeddings)
    assert np.array_equal(a.link_embeddings, b.link_embeddings)
    assert a.dense_weight == b.dense_weight and a.dense_bias == b.dense_bias
    assert not np.array_equal(a.book_embeddings, c.book_embeddings)


def test_resume_continues_where_it_stopped(corpus):
    pairs, n_books, n_links, _ = corpus
    big_patience = {**SMALL, "patience": 100, "min_delta": 0.0}
    whole = T.train(
        pairs, n_books, n_links, TrainConfig(**{**big_patience, "max_epochs": 4}), progress=False
    )
    first = T.train(
        pairs, n_books, n_links, TrainConfig(**{**big_patience, "max_epochs": 2}), progress=False
    )
    assert first.metrics["best_epoch"] == 2  # still improving: the state is the last epoch's
    rest = T.train(
        pairs,
        n_books,
        n_links,
        TrainConfig(**{**big_patience, "max_epochs": 2}),
        progress=False,
        resume_from=first.state_dict(),
    )
    assert [r["epoch"] for r in rest.history] == [3, 4]
    assert whole.metrics["best_epoch"] == rest.metrics["best_epoch"] == 4
    np.testing.assert_array_equal(whole.book_embeddings, rest.book_embeddings)
    np.testing.assert_array_equal(whole.link_embeddings, rest.link_embeddings)


def test_resume_with_more_books_keeps_the_old_rows(corpus):
    pairs, n_books, n_links, _ = corpus
    first = T.train(
        pairs, n_books, n_links, TrainConfig(**{**SMALL, "max_epochs": 1}), progress=False
    )
    state = first.state_dict()
    more = np.concatenate([pairs, [[n_books, 0], [n_books, 1]]])
    grown = T.train(
        more,
        n_books + 1,
        n_links,
        TrainConfig(**{**SMALL, "max_epochs": 1}),
        progress=False,
        resume_from=state,
    )
    assert grown.book_embeddings.shape == (n_books + 1, 50)
    with pytest.raises(ConfigError, match="cannot resume"):
        T.train(
            pairs,
            n_books,
            n_links,
            TrainConfig(**{**SMALL, "embedding_dim": 8}),
            progress=False,
            resume_from=state,
        )


def test_on_epoch_and_progress_bar(corpus, capsys):
    pairs, n_books, n_links, _ = corpus
    rows = []
    cfg = TrainConfig(**{**SMALL, "max_epochs": 2})
    T.train(pairs, n_books, n_links, cfg, progress=True, on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2]
    out = capsys.readouterr()
    assert out.out == ""  # stdout is for data only
    assert "epoch" in out.err and "val AUC" in out.err


def test_no_validation_keeps_the_last_epoch(corpus):
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 2, "validation_fraction": 0.0})
    model = T.train(pairs, n_books, n_links, cfg, progress=False)
    assert model.metrics["best_epoch"] == 2 and model.metrics["val_auc"] is None


# --- device -------------------------------------------------------------------------------------


def test_cuda_request_without_gpu_warns_and_uses_cpu(corpus, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 1, "device": "cuda"})
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):
        model = T.train(pairs, n_books, n_links, cfg, progress=False)
    assert model.metrics["device"] == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert T.resolve_device("auto").type == "cpu"  # auto falls back silently


def test_auto_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.resolve_device("auto").type == "cuda"
    assert T.resolve_device("cpu").type == "cpu"


def test_threads_are_restored(corpus):
    pairs, n_books, n_links, _ = corpus
    before = torch.get_num_threads()
    T.train(pairs, n_books, n_links, TrainConfig(**{**SMALL, "max_epochs": 1}), progress=False)
    assert torch.get_num_threads() == before


def test_sign_is_canonical_so_books_point_towards_their_links(classifier, corpus):
    pairs = corpus[0]
    assert classifier.dense_weight > 0
    books = classifier.book_embeddings[pairs[:, 0]]
    links = classifier.link_embeddings[pairs[:, 1]]
    cos = np.sum(books * links, 1) / np.linalg.norm(books, axis=1) / np.linalg.norm(links, axis=1)
    assert cos.mean() > 0.3

    model = T.BookLinkModel(5, 4, 3, "classification")
    with torch.no_grad():
        model.dense.weight.fill_(-2.0)
    optimizer = torch.optim.Adam(model.parameters())
    state = T._snapshot(model, optimizer)["model"]
    flipped = T.BookLinkModel(5, 4, 3, "classification")
    flipped.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    b, ell = torch.tensor([0, 1, 4]), torch.tensor([3, 2, 0])
    assert flipped.dense.weight.item() == 2.0
    torch.testing.assert_close(flipped.probability(b, ell), model.probability(b, ell))
