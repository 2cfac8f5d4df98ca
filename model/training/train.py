"""Training: the epoch loop, early stopping and the process-level levers, on top of
``model.py`` (the model and its step), ``sampling.py`` (pairs, negatives, the held-out split)
and ``checkpoints.py`` (the state of a run on disk).

A slice of the positive pairs is held out to compute the AUC after every epoch; training stops
when it no longer improves (``patience`` epochs) and keeps the best epoch's weights; the
embeddings' step is reduced on a plateau (``lr_decay``).

What makes it learn well on small corpora too (measured in ``bookvec.model.training.config``):
a batch size chosen by corpus size, negatives whose links follow (link frequency)^0.5, and a
cap on the learned logit scale. Same seed, same data: the same vectors, bit for bit, on the CPU,
interrupted and resumed or not.
"""

from __future__ import annotations

import ctypes
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bookvec.errors import ConfigError
from bookvec.model.training.checkpoints import (
    Checkpoints,
    _fingerprint,
    _load_resume,
    _snapshot,
)
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.model import (
    BookLinkModel,
    ScaleAdam,
    TrainedModel,
    pair_gradients,
    sgd_step,
)
from bookvec.model.training.progress import ProgressBar
from bookvec.model.training.sampling import (
    NEGATIVES_PER_DRAW,
    LinkSampler,
    ObservedPairs,
    _check_pairs,
    _epoch_draws,
    auc,
    holdout,
    link_sampling_cdf,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Process-level levers


def resolve_device(requested: str) -> torch.device:
    """ "auto" -> CUDA when available; "cuda" without a GPU warns and falls back to the CPU."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        warnings.warn(
            "device 'cuda' requested but CUDA is not available; training on the CPU",
            RuntimeWarning,
            stacklevel=3,
        )
    return torch.device("cpu")


def tune_malloc() -> bool:
    """Keep glibc from unmapping and trimming the ~16 MB gradient buffers after every step.

    Without it each step pays page faults to map them again (measured at full shape: ~25% more
    CPU per epoch). Process-wide and harmless; returns False where glibc is not in use.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum on 64-bit
        ok &= libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
        return bool(ok)
    except (OSError, AttributeError):
        return False


# ---------------------------------------------------------------------------------------------
# Training


def train(
    pairs: np.ndarray,
    n_books: int,
    n_links: int,
    config: TrainConfig | None = None,
    *,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    resume_from: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> TrainedModel:
    """Learn book and link embeddings from ``pairs`` (int (P, 2): book index, link index).

    ``on_epoch`` is called with each history row: epoch, loss, val_auc, seconds, samples_per_s
    (after that epoch's checkpoint is written, so an exception raised there loses nothing).
    ``resume_from`` is a ``TrainedModel.state_dict()``: a warm start from its weights, Adam
    state and epoch (tables may have grown; new rows start random, Adam state is reset).
    ``checkpoint_dir``: write the training state there after every epoch; with ``resume``,
    continue from the state found there (a fresh start when there is none). The checkpoint
    must come from the same pairs and config (threads, device and compile may differ).
    The returned model's ``config`` is ``config.resolved(...)``: automatic values filled in.
    Same data + same seed -> bit-identical vectors on the CPU, interrupted and resumed or not.
    """
    config = config or TrainConfig()
    data = _check_pairs(pairs, n_books, n_links)
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs a checkpoint_dir to resume from")
    if resume_from is not None and resume:
        raise ConfigError("give resume_from (a warm start) or resume (a checkpoint), not both")
    device = resolve_device(config.device)
    malloc_tuned = tune_malloc() if device.type == "cpu" else False
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _fit(
            data,
            n_books,
            n_links,
            config,
            device,
            progress=progress,
            on_epoch=on_epoch,
            resume_from=resume_from,
            checkpoints=None if checkpoint_dir is None else Checkpoints(Path(checkpoint_dir)),
            resume=resume,
            malloc_tuned=malloc_tuned,
        )
    finally:
        torch.set_num_threads(old_threads)


def _fit(
    data: np.ndarray,
    n_books: int,
    n_links: int,
    config: TrainConfig,
    device: torch.device,
    *,
    progress: bool,
    on_epoch: Callable[[dict], None] | None,
    resume_from: dict | None,
    checkpoints: Checkpoints | None,
    resume: bool,
    malloc_tuned: bool,
) -> TrainedModel:
    t_start = time.perf_counter()
    observed, train_pairs, val = holdout(torch.from_numpy(data), n_books, n_links, config)
    n_train = train_pairs.shape[0]
    config = config.resolved(n_train)
    model, optimizer, run = _start(
        data, n_books, n_links, config, device, resume_from, checkpoints, resume
    )
    observed, train_pairs = observed.to(device), train_pairs.to(device)
    if val is not None:
        val = tuple(t.to(device) for t in val)
    warm = None  # a warm start's rows (``bookvec.model.training.warm``): which it trains
    if resume_from is not None and resume_from.get("rows") is not None:
        from bookvec.model.training.warm import WarmRun

        warm = WarmRun(resume_from["rows"], config, model, train_pairs, val)
    gradients = torch.compile(pair_gradients, dynamic=True) if config.compile else pair_gradients
    link_counts = torch.bincount(train_pairs[:, 1], minlength=n_links)
    link_cdf = link_sampling_cdf(link_counts, config.negative_power, device)
    sampler = None if link_cdf is None else LinkSampler(link_cdf)
    observed_pairs = ObservedPairs(observed)

    bsz, ratio = config.batch_size, config.negative_ratio
    assert bsz is not None and config.patience is not None  # resolved above
    steps_per_draw = max(1, NEGATIVES_PER_DRAW // (bsz * ratio))
    cap = config.max_logit_scale if config.objective == "classification" else None
    epochs = config.max_epochs if warm is None else min(config.max_epochs, config.warm_max_epochs)
    last_epoch = run["first_epoch"] + epochs
    bar = ProgressBar(progress, last_epoch, math.ceil(n_train / bsz))
    try:
        for epoch in range(run["start_epoch"] + 1, last_epoch + 1):
            if run["stopped"]:
                break
            t0 = time.perf_counter()
            seed = (config.seed * 1_000_003 + epoch) % 2**63
            gen = torch.Generator(device=device).manual_seed(seed)
            draws = _epoch_draws(
                train_pairs if warm is None else warm.epoch_pairs(gen),
                bsz * steps_per_draw,
                ratio,
                n_books,
                n_links,
                observed_pairs,
                gen,
                sampler,
            )
            bar.start_epoch(epoch)
            row_lr = None if warm is None else warm.row_lr
            lr = run["embedding_lr"]
            total = _epoch(model, optimizer, draws, bsz, ratio, lr, cap, gradients, bar, row_lr)
            n_samples = (n_train if warm is None else warm.n_epoch_pairs) * (1 + ratio)
            row = {"epoch": epoch, "loss": (total / n_samples).item(), "val_auc": None}
            if warm is not None:
                warm.after_epoch(model)
            if val is not None:
                row["val_auc"] = evaluate(model, val)
                if warm is not None:
                    row["val_auc_new"] = warm.new_auc(model)
            seconds = time.perf_counter() - t0
            row.update(seconds=round(seconds, 4), samples_per_s=round(n_samples / seconds))
            run["history"].append(row)
            bar.end_epoch(row)
            key = "val_auc" if warm is None or config.warm_stop_on == "all" else "val_auc_new"
            improved = _early_stopping(run, row, config, model, optimizer, val is not None, key)
            if checkpoints is not None:
                checkpoints.save(_checkpoint(run, epoch, model, optimizer), is_best=improved)
            if on_epoch is not None:
                on_epoch(dict(row))
    finally:
        bar.close()
    return _trained(run, model, optimizer, config, device, val, n_train, t_start, malloc_tuned)


def _start(data, n_books, n_links, config, device, resume_from, checkpoints, resume):
    """The model (seeded initial tables, or a warm start's, or a checkpoint's), its Adam and
    the run's state: epochs, history, best epoch, stopped, the embeddings' learning rate."""
    with torch.random.fork_rng(devices=[]):  # seeded initial tables; global RNG untouched
        torch.manual_seed(config.seed)
        model = BookLinkModel(n_books, n_links, config.embedding_dim, config.objective)
    model.to(device)
    # Adam for the two scalars of Dense(1); the tables are updated by ``sgd_step``
    optimizer = ScaleAdam(model, config.scale_learning_rate)
    run: dict[str, Any] = {
        "fingerprint": _fingerprint(data, n_books, n_links, config),
        "first_epoch": 0,  # epochs are numbered on from a warm start's
        "history": [],
        "best": {"auc": -math.inf, "epoch": 0, "state": None},
        "stopped": False,
        "embedding_lr": config.learning_rate,
    }
    if resume_from is not None:
        run["first_epoch"] = _load_resume(model, optimizer, resume_from, config, device)
        run["best"]["epoch"] = run["first_epoch"]
        if resume_from.get("rows") is not None:  # a warm start's step: x warm_lr_scale
            run["embedding_lr"] = config.learning_rate * config.warm_lr_scale
            optimizer.lr = config.scale_learning_rate * config.warm_lr_scale
    run["start_epoch"] = run["first_epoch"]
    if checkpoints is not None:
        loaded = checkpoints.load(run["fingerprint"], model, optimizer, device) if resume else None
        if loaded is None:
            checkpoints.clear()
        else:
            keys = ("first_epoch", "start_epoch", "history", "best", "stopped", "embedding_lr")
            run.update(zip(keys, loaded, strict=True))
            done, best = run["start_epoch"], run["best"]["epoch"]
            log.info("resuming after epoch %d (best so far: %d)", done, best)
    return model, optimizer, run


def _epoch(model, optimizer, draws, bsz, ratio, lr, cap, gradients, bar, row_lr) -> torch.Tensor:
    """One pass over an epoch's draws in batches of ``bsz`` positives and their negatives;
    returns the summed loss (a tensor: no sync per step)."""
    total = torch.zeros((), dtype=torch.float64, device=model.book.weight.device)
    for pos, neg_books, neg_links in draws:
        for i in range(0, pos.shape[0], bsz):
            n_pos = min(bsz, pos.shape[0] - i)
            negatives = slice(i * ratio, (i + n_pos) * ratio)
            books = torch.cat([pos[i : i + n_pos, 0], neg_books[negatives]])
            links = torch.cat([pos[i : i + n_pos, 1], neg_links[negatives]])
            loss = sgd_step(model, optimizer, books, links, n_pos, lr, cap, gradients, row_lr)
            total += loss
            bar.advance(loss / books.numel())
    return total


def _early_stopping(run, row, config, model, optimizer, validating: bool, key: str) -> bool:
    """Keep the best epoch, stop after ``patience`` epochs without a better AUC (``row[key]``;
    without validation: keep the last), reduce the learning rates on a plateau. True if
    improved."""
    best = run["best"]
    score = row[key] if validating else row["epoch"]
    improved = score > best["auc"] + (config.min_delta if validating else 0)
    if improved:
        best["state"] = None  # the old snapshot goes before the new one is made
        best.update(auc=score, epoch=row["epoch"], state=_snapshot(model, optimizer))
    run["stopped"] = not improved and row["epoch"] - best["epoch"] >= config.patience
    if not improved and config.lr_decay < 1:  # reduce on plateau
        run["embedding_lr"] *= config.lr_decay
        optimizer.lr *= config.lr_decay
    return improved


def _checkpoint(run, epoch, model, optimizer) -> dict[str, Any]:
    return {
        "fingerprint": run["fingerprint"],
        "first_epoch": run["first_epoch"],
        "epoch": epoch,
        "stopped": run["stopped"],
        "history": run["history"],
        "best_epoch": run["best"]["epoch"],
        "best_auc": run["best"]["auc"],
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "embedding_lr": run["embedding_lr"],
    }


def _trained(run, model, optimizer, config, device, val, n_train, t_start, malloc_tuned):
    """The best epoch's weights and the run's metrics, as a TrainedModel."""
    history, best = run["history"], run["best"]
    state = best["state"] or _snapshot(model, optimizer)
    w = state["model"]
    best_row = next((r for r in history if r["epoch"] == best["epoch"]), {})
    seconds = sum(r["seconds"] for r in history)
    start_epoch, first_epoch = run["start_epoch"], run["first_epoch"]
    metrics = {
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "val_auc": best_row.get("val_auc"),
        "train_seconds": round(time.perf_counter() - t_start, 3),
        "samples_per_s": round(
            len(history) * n_train * (1 + config.negative_ratio) / max(seconds, 1e-9)
        ),
        "device": str(device),
        "n_train_pairs": int(n_train),
        "n_validation_pairs": 0 if val is None else int(val[0].numel()),
        "batch_size": int(config.batch_size),
        "patience": int(config.patience),
        "logit_scale": float(w["dense.weight"][0, 0]),
        "stopped_early": len(history) < config.max_epochs,
        "resumed_after_epoch": start_epoch if start_epoch != first_epoch else None,
        "malloc_tuned": malloc_tuned,
        "torch": torch.__version__,
    }
    held_out = None
    if val is not None:
        held_out = np.stack([val[0].cpu().numpy(), val[1].cpu().numpy()], axis=1).astype(np.int32)
    return TrainedModel(
        book_embeddings=w["book.weight"],
        link_embeddings=w["link.weight"],
        dense_weight=float(w["dense.weight"][0, 0]),
        dense_bias=float(w["dense.bias"][0]),
        config=config,
        history=history,
        metrics=metrics,
        optimizer_state=state["optimizer"],
        held_out_pairs=held_out,
    )


@torch.no_grad()
def evaluate(model: BookLinkModel, val: tuple[torch.Tensor, ...]) -> float:
    """AUC of the model's scores on a ``holdout`` validation set."""
    pos_b, pos_l, neg_b, neg_l = val
    return auc(_scores(model, pos_b, pos_l), _scores(model, neg_b, neg_l))


EVALUATE_SLICE = 1 << 18  # pairs scored at a time: ~1 KB of temporaries a pair (1 << 20: +1 GB)


def _scores(model: BookLinkModel, books: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
    """``model(books, links)`` a slice at a time (each pair's score is its own: the same
    numbers), so the 100x held-out set does not gather its rows all at once."""
    parts = zip(books.split(EVALUATE_SLICE), links.split(EVALUATE_SLICE), strict=True)
    return torch.cat([model(b, v) for b, v in parts])
