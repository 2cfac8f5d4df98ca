"""Training: the original book-link embedding model, fast on a CPU.

The model (Koehrsen 2018): a book table and a link table; the score of a (book, link) pair is
the cosine of their L2-normalised vectors, fed to Dense(1) + sigmoid with binary cross-entropy
(classification), or used as is against labels +1/-1 with mean squared error (regression).

What makes it fast, top to bottom: batches are built from tensors (a seeded permutation of the
positive pairs + random negatives, rejected when observed, with ``searchsorted`` on the sorted
observed keys) with no DataLoader and no per-sample Python; the tables are dense and use
fused Adam; glibc is told not to hand the large gradient buffers back to the OS every step.
A slice of the positive pairs is held out to compute the AUC after every epoch; training stops
when it no longer improves and keeps the best epoch's weights.

What makes it learn well on small corpora too (measured in ``bookvec.model.config``): a batch
size chosen by corpus size, negatives whose links follow (link frequency)^0.5, and a cap on
the learned logit scale. Same seed, same data: the same vectors, bit for bit, on the CPU.

Checkpoints: with ``checkpoint_dir`` the full training state (weights, Adam, history, the best
epoch so far) is written after every epoch, atomically (``state.pt``; ``best.pt`` is a hard
link to the best epoch's state). ``resume=True`` continues from it and ends with the vectors an
uninterrupted run would have given. They are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bookvec.errors import ConfigError, InputError
from bookvec.model.config import TrainConfig

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# The model


class BookLinkModel(nn.Module):
    """Two embedding tables; ``forward`` gives the logit (classification) or cosine (regression)."""

    def __init__(self, n_books: int, n_links: int, dim: int, objective: str) -> None:
        super().__init__()
        self.objective = objective
        self.book = nn.Embedding(n_books, dim)
        self.link = nn.Embedding(n_links, dim)
        self.dense = nn.Linear(1, 1)  # used by classification only
        # Keras' Embedding default (uniform +-0.05); with Adam the step is then large relative
        # to the vectors, which is what makes lr 1e-2 learn in a few epochs.
        nn.init.uniform_(self.book.weight, -0.05, 0.05)
        nn.init.uniform_(self.link.weight, -0.05, 0.05)
        # logit = cos at first; a positive weight makes a book point towards its links
        nn.init.ones_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def cosine(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        b = F.normalize(self.book(book_idx), dim=-1)
        v = F.normalize(self.link(link_idx), dim=-1)
        return (b * v).sum(-1)

    def forward(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(book_idx, link_idx)
        if self.objective == "classification":
            return cos * self.dense.weight[0, 0] + self.dense.bias[0]
        return cos

    def probability(self, book_idx: torch.Tensor, link_idx: torch.Tensor) -> torch.Tensor:
        """What ``score.onnx`` returns: sigmoid(logit), or (cos + 1) / 2 for regression."""
        out = self.forward(book_idx, link_idx)
        return torch.sigmoid(out) if self.objective == "classification" else (out + 1) / 2

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.objective == "classification":
            return F.binary_cross_entropy_with_logits(out, labels)
        return F.mse_loss(out, labels)

    @classmethod
    def from_trained(cls, model: TrainedModel) -> BookLinkModel:
        """Rebuild the torch module from a ``TrainedModel`` (for export and parity checks)."""
        n_books, dim = model.book_embeddings.shape
        m = cls(n_books, model.link_embeddings.shape[0], dim, model.config.objective)
        m.load_state_dict(_weights_to_torch(model.weights()))
        return m


# ---------------------------------------------------------------------------------------------
# What training returns


@dataclass
class TrainedModel:
    book_embeddings: np.ndarray  # float32 raw (n_books, d)
    link_embeddings: np.ndarray  # float32 raw (n_links, d)
    dense_weight: float
    dense_bias: float
    config: TrainConfig
    history: list[dict] = field(default_factory=list)  # per epoch, see ``train``
    metrics: dict = field(default_factory=dict)  # best_epoch, val_auc, train_seconds, device...
    optimizer_state: dict | None = None  # Adam's state at the best epoch (numpy), for resuming
    held_out_pairs: np.ndarray | None = None  # int32 (H, 2): the validation positives

    def weights(self) -> dict[str, np.ndarray]:
        return {
            "book_embeddings": self.book_embeddings,
            "link_embeddings": self.link_embeddings,
            "dense_weight": np.array([[self.dense_weight]], dtype=np.float32),
            "dense_bias": np.array([self.dense_bias], dtype=np.float32),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything ``train(..., resume_from=...)`` needs, as numpy arrays and plain values."""
        return {
            "weights": self.weights(),
            "optimizer": self.optimizer_state,
            "epoch": int(self.metrics.get("best_epoch", 0)),
            "config": self.config.to_dict(),
        }


def _weights_to_torch(w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "book.weight": torch.as_tensor(np.asarray(w["book_embeddings"], dtype=np.float32)),
        "link.weight": torch.as_tensor(np.asarray(w["link_embeddings"], dtype=np.float32)),
        "dense.weight": torch.as_tensor(np.asarray(w["dense_weight"], dtype=np.float32)),
        "dense.bias": torch.as_tensor(np.asarray(w["dense_bias"], dtype=np.float32)),
    }


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _to_torch(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy()).to(device)
    if isinstance(obj, dict):
        return {k: _to_torch(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v, device) for v in obj)
    return obj


# ---------------------------------------------------------------------------------------------
# Checkpoints


_NOT_FINGERPRINTED = ("threads", "device", "compile")  # may change between run and resume


def _fingerprint(data: np.ndarray, n_books: int, n_links: int, config: TrainConfig) -> dict:
    """What a checkpoint must agree with to be resumed: the pairs and the (resolved) config."""
    digest = hashlib.sha256(np.ascontiguousarray(data, dtype=np.int64).tobytes()).hexdigest()
    kept = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED}
    return {"pairs_sha256": digest, "n_books": n_books, "n_links": n_links, "config": kept}


class Checkpoints:
    """The training state of one run, in ``directory``: ``state.pt`` after every epoch and
    ``best.pt`` (a hard link to the state of the best epoch so far), each replaced atomically.
    """

    STATE, BEST = "state.pt", "best.pt"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def state_path(self) -> Path:
        return self.directory / self.STATE

    def exists(self) -> bool:
        return self.state_path.is_file()

    def clear(self) -> None:
        for name in (self.STATE, self.BEST):
            (self.directory / name).unlink(missing_ok=True)

    def save(self, payload: dict[str, Any], *, is_best: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{self.STATE}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.state_path)
        if is_best:  # the state just written is the best one: link, don't write it twice
            tmp_best = self.directory / f".{self.BEST}.{os.getpid()}.tmp"
            tmp_best.unlink(missing_ok=True)
            try:
                os.link(self.state_path, tmp_best)
            except OSError:  # no hard links on this file system
                shutil.copyfile(self.state_path, tmp_best)
            os.replace(tmp_best, self.directory / self.BEST)
        _fsync_dir(self.directory)

    def _read(self, path: Path, device: torch.device) -> dict[str, Any]:
        try:
            return torch.load(path, map_location=device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file means the same to the user
            raise ConfigError(
                f"checkpoint {path} is unreadable: {e}",
                hint=f"delete {self.directory} and train without --resume",
            ) from e

    def load(
        self,
        fingerprint: dict,
        model: BookLinkModel,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> tuple[int, int, list[dict], dict[str, Any], bool] | None:
        """Restore ``model`` and ``optimizer`` from ``state.pt``; None when there is none.

        Returns (first epoch, last epoch done, history, best {auc, epoch, state}, stopped).
        """
        if not self.exists():
            return None
        payload = self._read(self.state_path, device)
        try:
            if payload["fingerprint"] != fingerprint:
                raise ConfigError(
                    f"the checkpoint in {self.directory} is from other pairs or another config",
                    hint="resume with the run's own data and options, or train without --resume",
                )
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            epoch, best_epoch = int(payload["epoch"]), int(payload["best_epoch"])
            first_epoch = int(payload["first_epoch"])
            best_state = None
            if best_epoch == epoch:
                best_state = _snapshot(model, optimizer)
            elif best_epoch > first_epoch:
                saved = self._read(self.directory / self.BEST, device)
                if int(saved["epoch"]) != best_epoch:
                    raise ConfigError(
                        f"checkpoint {self.directory}: best.pt is from epoch {saved['epoch']}, "
                        f"state.pt says the best is epoch {best_epoch}",
                        hint=f"delete {self.directory} and train without --resume",
                    )
                names = [name for name, _ in model.named_parameters()]
                best_state = _canonical(
                    _to_numpy(saved["model"]),
                    _to_numpy(saved["optimizer"]),
                    names,
                    model.objective,
                )
            best = {"auc": float(payload["best_auc"]), "epoch": best_epoch, "state": best_state}
            history = [dict(row) for row in payload["history"]]
            return first_epoch, epoch, history, best, bool(payload["stopped"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(
                f"checkpoint {self.state_path} is incomplete or malformed: {e}",
                hint=f"delete {self.directory} and train without --resume",
            ) from e


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Sampling and evaluation, all vectorised


def pair_keys(book: torch.Tensor, link: torch.Tensor, n_links: int) -> torch.Tensor:
    return book.long() * n_links + link.long()


def is_observed(keys: torch.Tensor, sorted_keys: torch.Tensor) -> torch.Tensor:
    """Membership of ``keys`` in the sorted unique int64 tensor ``sorted_keys``."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def link_sampling_cdf(
    link_counts: torch.Tensor, power: float, device: torch.device | None = None
) -> torch.Tensor | None:
    """Cumulative distribution of a negative's link: P(link) ~ max(count, 1)^power (float64).

    None for ``power`` 0 (uniform links, drawn with ``randint``). Every link keeps a chance.
    """
    if power == 0:
        return None
    weights = link_counts.double().clamp(min=1.0) ** power
    cdf = torch.cumsum(weights, 0)
    return (cdf / cdf[-1]).to(device or link_counts.device)


def _draw_links(
    n: int, n_links: int, cdf: torch.Tensor | None, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    if cdf is None:
        return torch.randint(n_links, (n,), generator=gen, device=device)
    u = torch.rand(n, generator=gen, device=device, dtype=torch.float64)
    return torch.searchsorted(cdf, u).clamp_(max=n_links - 1)


def sample_negatives(
    n: int,
    n_books: int,
    n_links: int,
    observed: torch.Tensor,
    gen: torch.Generator,
    link_cdf: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (book, link) pairs none of which is in ``observed``; rejects are redrawn.

    Books are uniform; links uniform, or drawn from ``link_cdf`` (``link_sampling_cdf``).
    """
    device = observed.device
    books = torch.randint(n_books, (n,), generator=gen, device=device)
    links = _draw_links(n, n_links, link_cdf, gen, device)
    bad = is_observed(pair_keys(books, links, n_links), observed).nonzero().squeeze(1)
    while bad.numel():
        books[bad] = torch.randint(n_books, (bad.numel(),), generator=gen, device=device)
        links[bad] = _draw_links(bad.numel(), n_links, link_cdf, gen, device)
        again = is_observed(pair_keys(books[bad], links[bad], n_links), observed)
        bad = bad[again]
    return books, links


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Rank-based ROC AUC (Mann-Whitney U); tied scores share their average rank."""
    scores = torch.cat([pos, neg]).double()
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mid_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct score
    ranks = mid_rank[inverse]
    n_pos, n_neg = pos.numel(), neg.numel()
    u = ranks[:n_pos].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


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


def _check_pairs(pairs: Any, n_books: int, n_links: int) -> np.ndarray:
    arr = np.asarray(pairs)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise InputError(f"pairs must be a non-empty (P, 2) integer array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise InputError(f"pairs must be integers, got dtype {arr.dtype}")
    if n_books < 1 or n_links < 1:
        raise InputError(f"need at least one book and one link, got {n_books} and {n_links}")
    for col, n, what in ((0, n_books, "book"), (1, n_links, "link")):
        bad = np.flatnonzero((arr[:, col] < 0) | (arr[:, col] >= n))
        if bad.size:
            raise InputError(f"pair {bad[0]} has {what} index {arr[bad[0], col]}, outside [0, {n})")
    return arr.astype(np.int64, copy=False)


def holdout(
    pairs: torch.Tensor, n_books: int, n_links: int, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Seeded validation split: (sorted observed keys, training pairs, validation set or None).

    ``validation_fraction`` of the distinct positive pairs are held out and every copy of them
    leaves the training pairs; as many negatives are drawn once, uniformly, never observed.
    The validation set is (positive books, positive links, negative books, negative links).
    """
    gen = torch.Generator().manual_seed(config.seed ^ 0x5EED)
    keys = pair_keys(pairs[:, 0], pairs[:, 1], n_links)
    observed = torch.unique(keys)  # sorted
    if config.validation_fraction <= 0:
        return observed, pairs, None
    n_val = max(1, round(config.validation_fraction * observed.numel()))
    held = observed[torch.randperm(observed.numel(), generator=gen)[:n_val]].sort().values
    train_pairs = pairs[~is_observed(keys, held)]
    if train_pairs.shape[0] == 0:
        raise ConfigError("validation_fraction leaves no pairs to train on; lower it")
    neg_books, neg_links = sample_negatives(n_val, n_books, n_links, observed, gen)
    return observed, train_pairs, (held // n_links, held % n_links, neg_books, neg_links)


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
    seed = config.seed
    observed, train_pairs, val = holdout(torch.from_numpy(data), n_books, n_links, config)
    if observed.numel() >= n_books * n_links:
        raise InputError("every (book, link) pair is observed: there are no negatives to learn")
    n_train = train_pairs.shape[0]
    config = config.resolved(n_train)
    with torch.random.fork_rng(devices=[]):  # seeded initial tables; global RNG untouched
        torch.manual_seed(seed)
        model = BookLinkModel(n_books, n_links, config.embedding_dim, config.objective)

    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, fused=device.type in ("cpu", "cuda")
    )
    history: list[dict] = []
    best: dict[str, Any] = {"auc": -math.inf, "epoch": 0, "state": None}
    first_epoch = 0  # epochs are numbered on from a warm start's
    stopped = False
    if resume_from is not None:
        first_epoch = _load_resume(model, optimizer, resume_from, config, device)
        best["epoch"] = first_epoch
    fingerprint = _fingerprint(data, n_books, n_links, config)
    start_epoch = first_epoch
    if checkpoints is not None:
        loaded = checkpoints.load(fingerprint, model, optimizer, device) if resume else None
        if loaded is None:
            checkpoints.clear()
        else:
            first_epoch, start_epoch, history, best, stopped = loaded
            log.info("resuming after epoch %d (best so far: %d)", start_epoch, best["epoch"])

    observed = observed.to(device)
    train_pairs = train_pairs.to(device)
    if val is not None:
        val = tuple(t.to(device) for t in val)
    step = _make_step(model, optimizer, config.compile, config.max_logit_scale)
    link_counts = torch.bincount(train_pairs[:, 1], minlength=n_links)
    link_cdf = link_sampling_cdf(link_counts, config.negative_power, device)

    bsz, ratio = config.batch_size, config.negative_ratio
    assert bsz is not None and config.patience is not None  # resolved above
    n_steps = math.ceil(n_train / bsz)
    labels_pos, labels_neg = (1.0, 0.0) if config.objective == "classification" else (1.0, -1.0)
    last_epoch = first_epoch + config.max_epochs

    bar = _ProgressBar(progress, last_epoch, n_steps)
    try:
        for epoch in range(start_epoch + 1, last_epoch + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            gen = torch.Generator(device=device).manual_seed((seed * 1_000_003 + epoch) % 2**63)
            perm = torch.randperm(n_train, generator=gen, device=device)
            bar.start_epoch(epoch)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for i in range(n_steps):
                batch = train_pairs[perm[i * bsz : (i + 1) * bsz]]
                nb, nl = sample_negatives(
                    batch.shape[0] * ratio, n_books, n_links, observed, gen, link_cdf
                )
                books = torch.cat([batch[:, 0], nb])
                links = torch.cat([batch[:, 1], nl])
                labels = torch.full((books.numel(),), labels_neg, device=device)
                labels[: batch.shape[0]] = labels_pos
                loss = step(books, links, labels)
                total += loss.detach() * books.numel()
                bar.advance(loss)
            n_samples = n_train * (1 + ratio)
            row = {"epoch": epoch, "loss": (total / n_samples).item(), "val_auc": None}
            if val is not None:
                row["val_auc"] = evaluate(model, val)
            seconds = time.perf_counter() - t0
            row.update(seconds=round(seconds, 4), samples_per_s=round(n_samples / seconds))
            history.append(row)
            bar.end_epoch(row)

            score = row["val_auc"] if val is not None else epoch  # no validation: keep the last
            improved = score > best["auc"] + (config.min_delta if val is not None else 0)
            if improved:
                best.update(auc=score, epoch=epoch, state=_snapshot(model, optimizer))
            stopped = not improved and epoch - best["epoch"] >= config.patience
            if not improved and config.lr_decay < 1:  # reduce on plateau
                for group in optimizer.param_groups:
                    group["lr"] *= config.lr_decay
            if checkpoints is not None:
                checkpoints.save(
                    {
                        "fingerprint": fingerprint,
                        "first_epoch": first_epoch,
                        "epoch": epoch,
                        "stopped": stopped,
                        "history": history,
                        "best_epoch": best["epoch"],
                        "best_auc": best["auc"],
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                    },
                    is_best=improved,
                )
            if on_epoch is not None:
                on_epoch(dict(row))
    finally:
        bar.close()

    state = best["state"] or _snapshot(model, optimizer)
    w = state["model"]
    best_row = next((r for r in history if r["epoch"] == best["epoch"]), {})
    seconds = sum(r["seconds"] for r in history)
    metrics = {
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "val_auc": best_row.get("val_auc"),
        "train_seconds": round(time.perf_counter() - t_start, 3),
        "samples_per_s": round(len(history) * n_train * (1 + ratio) / max(seconds, 1e-9)),
        "device": str(device),
        "n_train_pairs": int(n_train),
        "n_validation_pairs": 0 if val is None else int(val[0].numel()),
        "batch_size": int(bsz),
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


def _make_step(
    model: BookLinkModel,
    optimizer: torch.optim.Optimizer,
    compile: bool,
    max_logit_scale: float | None = None,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    cap = max_logit_scale if model.objective == "classification" else None

    def forward_loss(books: torch.Tensor, links: torch.Tensor, labels: torch.Tensor):
        return model.loss(model(books, links), labels)

    if compile:
        forward_loss = torch.compile(forward_loss, dynamic=True)

    def step(books: torch.Tensor, links: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = forward_loss(books, links, labels)
        loss.backward()
        optimizer.step()
        if cap is not None:  # the learned logit scale, capped (see TrainConfig)
            with torch.no_grad():
                model.dense.weight.clamp_(max=cap)
        return loss

    return step


@torch.no_grad()
def evaluate(model: BookLinkModel, val: tuple[torch.Tensor, ...]) -> float:
    """AUC of the model's scores on a ``holdout`` validation set."""
    pos_b, pos_l, neg_b, neg_l = val
    return auc(model(pos_b, pos_l), model(neg_b, neg_l))


def _snapshot(model: BookLinkModel, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Numpy copy of the weights and Adam state, in canonical sign (dense weight >= 0)."""
    names = [name for name, _ in model.named_parameters()]
    return _canonical(
        _to_numpy(model.state_dict()), _to_numpy(optimizer.state_dict()), names, model.objective
    )


def _canonical(
    weights: dict[str, np.ndarray], opt: dict[str, Any], names: list[str], objective: str
) -> dict[str, Any]:
    """The weights and Adam state (numpy) with the dense weight made >= 0.

    sigmoid(w * cos(b, l) + c) is unchanged when both ``w`` and the link table change sign. A
    negative ``w`` would leave books pointing away from their links, and a book folded in from
    its links would then land opposite its neighbours; flipping keeps fold-in meaningful.
    """
    if objective == "classification" and weights["dense.weight"][0, 0] < 0:
        weights["link.weight"] = weights["link.weight"] * -1
        weights["dense.weight"] = weights["dense.weight"] * -1
        for i, name in enumerate(names):  # Adam's first moments follow the sign; second don't
            if name in ("link.weight", "dense.weight") and i in opt["state"]:
                opt["state"][i]["exp_avg"] = opt["state"][i]["exp_avg"] * -1
    return {"model": weights, "optimizer": opt}


def _load_resume(
    model: BookLinkModel,
    optimizer: torch.optim.Optimizer,
    state: dict,
    config: TrainConfig,
    device: torch.device,
) -> int:
    try:
        weights = _weights_to_torch(state["weights"])
        epoch = int(state.get("epoch", 0))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"resume state is incomplete or malformed: {e}") from e
    current = model.state_dict()
    grown = False
    for name, tensor in weights.items():
        target = current[name]
        if tensor.shape[1:] != target.shape[1:] or tensor.shape[0] > target.shape[0]:
            raise ConfigError(
                f"cannot resume: {name} has shape {tuple(tensor.shape)}, this run needs "
                f"{tuple(target.shape)}",
                hint="resume only with the same embedding_dim and no fewer books or links",
            )
        grown |= tensor.shape[0] != target.shape[0]
        with torch.no_grad():
            target[: tensor.shape[0]].copy_(tensor)
    if state.get("optimizer") and not grown:
        opt_state = _to_torch(state["optimizer"], device)
        for group in opt_state["param_groups"]:
            group["lr"] = config.learning_rate
        optimizer.load_state_dict(opt_state)
    elif grown:
        log.info("tables grew since the resumed run; Adam state starts afresh")
    return epoch


# ---------------------------------------------------------------------------------------------
# Progress on stderr


class _ProgressBar:
    """A rich progress bar (epoch, loss, validation AUC) on stderr; a no-op when disabled."""

    def __init__(self, enabled: bool, max_epochs: int, n_steps: int) -> None:
        self.enabled = enabled
        self.n_steps = n_steps
        self.progress = None
        self.last_auc = "-"
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[max_epochs]}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}  val AUC {task.fields[auc]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=n_steps, epoch=0, max_epochs=max_epochs, loss="-", auc="-"
        )
        self.i = 0

    def start_epoch(self, epoch: int) -> None:
        if self.progress is not None:
            self.progress.reset(self.task, total=self.n_steps)
            self.progress.update(self.task, epoch=epoch, auc=self.last_auc)
            self.i = 0

    def advance(self, loss: torch.Tensor) -> None:
        if self.progress is None:
            return
        self.i += 1
        if self.i % 16 == 0 or self.i == self.n_steps:  # .item() syncs; not every step
            self.progress.update(self.task, completed=self.i, loss=f"{loss.item():.4f}")

    def end_epoch(self, row: dict) -> None:
        if self.progress is None:
            return
        if row["val_auc"] is not None:
            self.last_auc = f"{row['val_auc']:.4f}"
        self.progress.update(self.task, loss=f"{row['loss']:.4f}", auc=self.last_auc)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
