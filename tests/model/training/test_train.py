"""Training on a planted corpus with a known answer: books of a genre must end up together."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bookvec.errors import ConfigError, InputError
from bookvec.model.training import checkpoints as C
from bookvec.model.training import model as M
from bookvec.model.training import sampling as S
from bookvec.model.training import train as T
from bookvec.model.training.config import TrainConfig, auto_batch_size, auto_patience

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


SMALL = dict(batch_size=256, max_epochs=30, patience=3, threads=1)


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
        {"batch_size": 0},
        {"patience": 0},
        {"negative_power": 1.5},
        {"max_logit_scale": 0},
        {"lr_decay": 0},
    ],
)
def test_config_rejects_invalid_values(bad):
    (name,) = bad
    with pytest.raises(ConfigError, match=f"{name}=.*must be"):
        TrainConfig(**bad)


def test_corpus_size_rules():
    # at least 32 steps an epoch, a power of two in [256, 8192]
    assert auto_batch_size(12_636) == 256  # p15's training pairs
    assert auto_batch_size(105_000) == 2048
    assert auto_batch_size(733_000) == 4096  # the full shape
    assert auto_batch_size(7_700_000) == 4096
    assert auto_batch_size(10) == 256
    assert (auto_patience(12_636), auto_patience(733_000)) == (5, 2)
    cfg = TrainConfig()
    assert cfg.batch_size is None and cfg.patience is None
    assert cfg.resolved(733_000) == TrainConfig(batch_size=4096, patience=2)
    fixed = TrainConfig(batch_size=100, patience=9)
    assert fixed.resolved(733_000) is fixed


def test_trained_model_records_the_resolved_config(corpus):
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(max_epochs=1, threads=1)
    model = T.train(pairs, n_books, n_links, cfg, progress=False)
    assert model.config == cfg.resolved(model.metrics["n_train_pairs"])
    assert model.metrics["batch_size"] == 256 and model.metrics["patience"] == 5
    assert TrainConfig.from_dict(model.config.to_dict()) == model.config


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
    assert S.auc(torch.from_numpy(pos), torch.from_numpy(neg)) == pytest.approx(expected)


def test_negatives_are_never_observed():
    rng = np.random.default_rng(2)
    n_books, n_links = 30, 20
    pairs = torch.from_numpy(rng.integers(0, [n_books, n_links], (400, 2)))  # dense: ~50%
    observed = torch.unique(S.pair_keys(pairs[:, 0], pairs[:, 1], n_links))
    gen = torch.Generator().manual_seed(0)
    books, links = S.sample_negatives(5000, n_books, n_links, observed, gen)
    assert not S.is_observed(S.pair_keys(books, links, n_links), observed).any()
    assert books.max() < n_books and links.max() < n_links and books.min() >= 0


def test_negative_links_follow_their_frequency_to_the_power():
    n_books, n_links = 50, 4
    counts = torch.tensor([1, 4, 16, 64])
    cdf = S.link_sampling_cdf(counts, 0.5)
    assert S.link_sampling_cdf(counts, 0.0) is None  # uniform: the original's randint
    observed = torch.unique(S.pair_keys(torch.tensor([0, 1]), torch.tensor([0, 0]), n_links))
    gen = torch.Generator().manual_seed(0)
    books, links = S.sample_negatives(40_000, n_books, n_links, observed, gen, cdf)
    assert not S.is_observed(S.pair_keys(books, links, n_links), observed).any()
    share = torch.bincount(links, minlength=n_links).double() / links.numel()
    expected = torch.tensor([1.0, 2.0, 4.0, 8.0]) / 15  # sqrt of the counts
    torch.testing.assert_close(share, expected.double(), atol=0.01, rtol=0)


def test_bad_pairs_raise_input_error():
    with pytest.raises(InputError, match="link index 9"):
        T.train(np.array([[0, 1], [1, 9]]), 2, 5, TrainConfig(**SMALL), progress=False)
    with pytest.raises(InputError, match="shape"):
        T.train(np.zeros((3, 3), dtype=int), 2, 5, TrainConfig(**SMALL), progress=False)
    every = np.array([[b, link] for b in range(2) for link in range(3)])
    with pytest.raises(InputError, match="every .* pair is observed"):
        T.train(every, 2, 3, TrainConfig(**SMALL), progress=False)


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
    _, _, val = S.holdout(
        torch.from_numpy(pairs.astype(np.int64)), n_books, n_links, classifier.config
    )
    model = M.BookLinkModel.from_trained(classifier)
    assert T.evaluate(model, val) == pytest.approx(classifier.metrics["val_auc"], abs=1e-6)


def test_logit_scale_is_capped(classifier, corpus):
    assert 0 < classifier.dense_weight <= 4.0  # the default cap
    pairs, n_books, n_links, _ = corpus
    capped = T.train(
        pairs,
        n_books,
        n_links,
        TrainConfig(**{**SMALL, "max_epochs": 3, "max_logit_scale": 1.5}),
        progress=False,
    )
    assert capped.dense_weight <= 1.5 and capped.metrics["logit_scale"] <= 1.5


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


def _interrupt_at(epoch: int):
    def on_epoch(row: dict) -> None:
        if row["epoch"] == epoch:
            raise KeyboardInterrupt

    return on_epoch


def test_checkpoint_resume_gives_the_uninterrupted_vectors(corpus, tmp_path):
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 8, "patience": 2, "min_delta": 0.01})
    whole = T.train(pairs, n_books, n_links, cfg, progress=False)
    ran, best = whole.metrics["epochs_run"], whole.metrics["best_epoch"]
    assert best < ran  # so the last interruption below resumes with a stale best epoch
    for stop in sorted({2, ran - 1}):
        directory = tmp_path / f"run{stop}"
        with pytest.raises(KeyboardInterrupt):
            T.train(
                pairs,
                n_books,
                n_links,
                cfg,
                progress=False,
                on_epoch=_interrupt_at(stop),
                checkpoint_dir=directory,
            )
        state = torch.load(directory / "state.pt", weights_only=True)
        assert state["epoch"] == stop and len(state["history"]) == stop
        rest = T.train(
            pairs, n_books, n_links, cfg, progress=False, checkpoint_dir=directory, resume=True
        )
        assert rest.metrics["resumed_after_epoch"] == stop
        assert rest.metrics["best_epoch"] == best
        learned = [(r["epoch"], r["loss"], r["val_auc"]) for r in rest.history]
        assert learned == [(r["epoch"], r["loss"], r["val_auc"]) for r in whole.history]
        np.testing.assert_array_equal(rest.book_embeddings, whole.book_embeddings)
        np.testing.assert_array_equal(rest.link_embeddings, whole.link_embeddings)
        assert (rest.dense_weight, rest.dense_bias) == (whole.dense_weight, whole.dense_bias)


def test_learning_rate_halves_after_an_epoch_without_improvement(corpus, tmp_path):
    pairs, n_books, n_links, _ = corpus
    # min_delta 0.99: only the first epoch counts as an improvement
    cfg = TrainConfig(**{**SMALL, "max_epochs": 3, "patience": 100, "min_delta": 0.99})
    T.train(pairs, n_books, n_links, cfg, progress=False, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["embedding_lr"] == pytest.approx(cfg.learning_rate * 0.25)
    assert state["optimizer"]["lr"] == pytest.approx(cfg.scale_learning_rate * 0.25)
    constant = TrainConfig(**{**SMALL, "max_epochs": 3, "min_delta": 0.99, "lr_decay": 1.0})
    T.train(pairs, n_books, n_links, constant, progress=False, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["embedding_lr"] == constant.learning_rate
    assert state["optimizer"]["lr"] == constant.scale_learning_rate


def test_checkpoint_of_another_run_is_refused(corpus, tmp_path):
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 1})
    T.train(pairs, n_books, n_links, cfg, progress=False, checkpoint_dir=tmp_path)
    other = TrainConfig(**{**SMALL, "max_epochs": 1, "seed": 5})
    with pytest.raises(ConfigError, match="other pairs or another config"):
        T.train(
            pairs, n_books, n_links, other, progress=False, checkpoint_dir=tmp_path, resume=True
        )
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="unreadable"):
        T.train(pairs, n_books, n_links, cfg, progress=False, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        T.train(pairs, n_books, n_links, cfg, progress=False, resume=True)


def test_on_epoch_and_progress_bar(corpus, capsys):
    pairs, n_books, n_links, _ = corpus
    rows = []
    cfg = TrainConfig(**{**SMALL, "max_epochs": 2})
    # The bars are the CLI's display (installed by its app callback): installed here so the
    # test does not depend on a CLI test having run first.
    from bookvec import progress
    from bookvec.cli.progress import rich_display

    previous = progress.install(rich_display)
    try:
        T.train(pairs, n_books, n_links, cfg, progress=True, on_epoch=rows.append)
    finally:
        progress.install(previous)
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

    model = M.BookLinkModel(5, 4, 3, "classification")
    with torch.no_grad():
        model.dense.weight.fill_(-2.0)
    optimizer = M.ScaleAdam(model, 0.05)
    state = C._snapshot(model, optimizer)["model"]
    flipped = M.BookLinkModel(5, 4, 3, "classification")
    flipped.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    b, ell = torch.tensor([0, 1, 4]), torch.tensor([3, 2, 0])
    assert flipped.dense.weight.item() == 2.0
    torch.testing.assert_close(flipped.probability(b, ell), model.probability(b, ell))


# --- the hand-written step ----------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["classification", "regression"])
def test_pair_gradients_match_autograd(objective):
    """The closed-form gradients equal autograd's on the summed loss (duplicate rows too)."""
    gen = torch.Generator().manual_seed(3)
    n, n_pos, dim = 40, 13, 7
    books = torch.randn(n, dim, generator=gen, dtype=torch.float64).requires_grad_()
    links = torch.randn(n, dim, generator=gen, dtype=torch.float64).requires_grad_()
    scale = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    cos = F.cosine_similarity(books, links, dim=1, eps=1e-12)
    labels = torch.zeros(n, dtype=torch.float64)
    labels[:n_pos] = 1
    if objective == "classification":
        logit = cos * scale + bias
        per_pair = F.binary_cross_entropy_with_logits(logit, labels, reduction="none")
    else:
        per_pair = (cos - (2 * labels - 1)) ** 2
    per_pair.sum().backward()
    loss, d_book, d_link, _, d_scale, d_bias = M.pair_gradients(
        books.detach(), links.detach(), n_pos, scale.detach(), bias.detach(),
        objective == "classification",
    )  # fmt: skip
    torch.testing.assert_close(loss, per_pair.sum().detach())
    torch.testing.assert_close(d_book, books.grad)
    torch.testing.assert_close(d_link, links.grad)
    if objective == "classification":  # Dense(1) gets the mean gradient (Adam's scale)
        torch.testing.assert_close(d_scale, scale.grad / n)
        torch.testing.assert_close(d_bias, bias.grad / n)


def test_sgd_step_adds_each_use_of_a_row():
    """A row used by several pairs of a batch moves by the sum of their gradients."""
    model = M.BookLinkModel(3, 4, 5, "classification")
    before = model.book.weight.detach().clone(), model.link.weight.detach().clone()
    books, links = torch.tensor([0, 0, 2, 1]), torch.tensor([1, 3, 1, 0])
    M.sgd_step(model, M.ScaleAdam(model, 0.05), books, links, 2, 0.1, None)
    _, d_book, d_link, *_ = M.pair_gradients(
        before[0][books], before[1][links], 2, torch.tensor(1.0), torch.tensor(0.0), True
    )
    _, scaled_book, scaled_link, *_ = M.pair_gradients(
        before[0][books], before[1][links], 2, torch.tensor(1.0), torch.tensor(0.0), True, -0.1
    )
    torch.testing.assert_close(scaled_book, d_book * -0.1)
    torch.testing.assert_close(scaled_link, d_link * -0.1)
    expected_books = before[0].index_add(0, books, d_book, alpha=-0.1)
    torch.testing.assert_close(model.book.weight.detach(), expected_books)
    expected_links = before[1].index_add(0, links, d_link, alpha=-0.1)
    torch.testing.assert_close(model.link.weight.detach(), expected_links)


def test_scale_adam_is_torch_adam():
    model = M.BookLinkModel(2, 2, 3, "classification")
    twin = M.BookLinkModel(2, 2, 3, "classification")
    ours = M.ScaleAdam(model, 0.05)
    theirs = torch.optim.Adam([twin.dense.weight, twin.dense.bias], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        grad = torch.randn(2, generator=gen)
        ours.step(grad)
        twin.dense.weight.grad, twin.dense.bias.grad = grad[:1].reshape(1, 1), grad[1:].clone()
        theirs.step()
    torch.testing.assert_close(model.dense.weight, twin.dense.weight)
    torch.testing.assert_close(model.dense.bias, twin.dense.bias)
    restored = M.ScaleAdam(twin, 0.05)
    restored.load_state_dict(ours.state_dict())
    assert restored.steps == 5
    with pytest.raises(ValueError, match="not a ScaleAdam state"):
        restored.load_state_dict({"state": {}, "param_groups": []})  # torch Adam's own format


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # from torch.compile's imports
def test_compiled_gradients_give_the_same_model(corpus):
    """``compile=True`` runs ``pair_gradients`` through torch.compile: same learning."""
    pairs, n_books, n_links, _ = corpus
    cfg = TrainConfig(**{**SMALL, "max_epochs": 1})
    eager = T.train(pairs, n_books, n_links, cfg, progress=False)
    compiled = T.train(
        pairs, n_books, n_links, TrainConfig(**{**SMALL, "max_epochs": 1, "compile": True}),
        progress=False,
    )  # fmt: skip
    np.testing.assert_allclose(compiled.book_embeddings, eager.book_embeddings, atol=1e-5)
    assert compiled.history[0]["val_auc"] == pytest.approx(eager.history[0]["val_auc"], abs=1e-4)
