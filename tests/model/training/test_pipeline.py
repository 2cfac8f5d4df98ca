"""The pipeline end to end on a small corpus: what a bundle holds after training, and what an
interruption leaves behind (the previous bundle untouched, a state that resumes to the same
vectors as an uninterrupted run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bookvec.errors import DataNotFoundError
from bookvec.model.bundle import HELD_OUT_PAIRS as HELD_OUT_FILE
from bookvec.model.bundle import RAW_BOOK_TABLE as RAW_BOOKS_FILE
from bookvec.model.bundle import RAW_LINK_TABLE as RAW_LINKS_FILE
from bookvec.model.bundle import current_model_id, open_bundle
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.pipeline import (
    checkpoints_dir,
    interrupted_runs,
    train_bundle,
)
from tests.conftest import invoke

CONFIG = TrainConfig(max_epochs=4, seed=1, threads=1)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BOOKVEC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def reference(small_corpus, tmp_path_factory):
    """An uninterrupted run of CONFIG on the small corpus, without checkpoints."""
    models = tmp_path_factory.mktemp("reference") / "models"
    return train_bundle(
        small_corpus, config=CONFIG, models_dir=models, progress=False, checkpoints=False
    )


def test_bundle_holds_held_out_pairs_raw_tables_and_evaluation(reference):
    manifest = reference.manifest
    held = np.load(reference.file(HELD_OUT_FILE))
    assert held.dtype == np.int32 and held.shape == (manifest.metrics["n_validation_pairs"], 2)
    keys = set(map(tuple, reference.pairs.tolist()))
    assert all(tuple(pair) in keys for pair in held.tolist())  # held-out pairs are real pairs

    raw = np.load(reference.file(RAW_BOOKS_FILE))
    assert raw.shape == (reference.n_books, reference.dim) and raw.dtype == np.float32
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, reference.book_vectors, atol=1e-6)
    assert np.load(reference.file(RAW_LINKS_FILE)).shape == (reference.n_links, reference.dim)

    config = manifest.config  # the resolved config: what ran
    assert config["batch_size"] == 256 and config["patience"] == 5
    assert manifest.config_requested["batch_size"] is None
    evaluation = manifest.metrics["evaluation"]
    assert set(evaluation["neighbours"]) == {"bookvec", "binary_links"}
    assert evaluation["held_out_pairs"] == len(np.unique(held, axis=0))
    assert 0.5 < evaluation["link_prediction"]["bookvec"]["auc"] <= 1
    assert manifest.metrics["evaluation_seconds"] >= 0


def test_evaluate_and_raw_vectors_read_the_bundle_files(reference, tmp_path):
    home = tmp_path / "home"
    result = invoke(["evaluate", "--json", "--no-baselines", "--no-probe"], home,
                    BOOKVEC_MODEL=str(reference.path))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"]["note"] == f"{HELD_OUT_FILE} in the bundle"
    stored = reference.manifest.metrics["evaluation"]["link_prediction"]["bookvec"]["auc"]
    assert report["link_prediction"]["bookvec"]["auc"] == pytest.approx(stored, abs=1e-6)

    out = tmp_path / "raw.npy"
    result = invoke(["vectors", str(out), "--raw", "--json"], home,
                    BOOKVEC_MODEL=str(reference.path))  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out), np.load(reference.file(RAW_BOOKS_FILE)))


def _interrupt_at(epoch: int):
    def on_epoch(row: dict) -> None:
        if row["epoch"] == epoch:
            raise KeyboardInterrupt

    return on_epoch


def test_interrupted_run_keeps_the_current_bundle_and_resumes_to_the_same_vectors(
    home, small_corpus, reference
):
    first = train_bundle(small_corpus, config=CONFIG, progress=False, evaluate=False)
    assert current_model_id() == first.model_id

    with pytest.raises(KeyboardInterrupt):
        train_bundle(small_corpus, config=CONFIG, progress=False, on_epoch=_interrupt_at(2))
    assert current_model_id() == first.model_id  # the last good bundle is untouched
    models = home / "models"
    assert sorted(p.name for p in models.iterdir()) == sorted(["CURRENT", first.model_id])
    open_bundle(None).verify()
    (run,) = interrupted_runs()
    assert run["config"] == CONFIG.to_dict() and Path(run["corpus"]["path"]) == small_corpus

    result = invoke(["train", "--resume", "--threads", "1", "--json"], home)
    assert result.exit_code == 0, result.output
    resumed = open_bundle(None)
    assert resumed.model_id != first.model_id and current_model_id() == resumed.model_id
    assert resumed.manifest.metrics["resumed_after_epoch"] == 2
    np.testing.assert_array_equal(resumed.book_vectors, reference.book_vectors)
    np.testing.assert_array_equal(resumed.link_vectors, reference.link_vectors)
    assert [h["val_auc"] for h in resumed.manifest.history] == [
        h["val_auc"] for h in reference.manifest.history
    ]
    assert interrupted_runs() == []  # a committed bundle removes its run's checkpoints
    assert not any(checkpoints_dir().iterdir())


def test_resume_without_an_interrupted_run_or_with_other_options(home, small_corpus):
    result = invoke(["train", "--resume"], home)
    assert result.exit_code == 1 and "no interrupted training run" in result.output
    with pytest.raises(KeyboardInterrupt):
        train_bundle(small_corpus, config=CONFIG, progress=False, on_epoch=_interrupt_at(1))
    result = invoke(["train", "--resume", "--epochs", "9"], home)
    assert result.exit_code == 1 and "drop max_epochs" in result.output
    with pytest.raises(DataNotFoundError, match="no interrupted training run"):
        train_bundle(small_corpus, config=TrainConfig(seed=2), progress=False, resume=True)
