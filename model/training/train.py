"""Training: the original book-link embedding model, fast on a CPU.

The model (Koehrsen 2018): a book table and a link table; the score of a (book, link) pair is
the cosine of their L2-normalised vectors, fed to Dense(1) + sigmoid with binary cross-entropy
(classification), or used as is against labels +1/-1 with mean squared error (regression).

What makes it fast, top to bottom:

- Batches are built from tensors: a seeded permutation of the positive pairs, and the random
  negatives of many steps drawn at once (links by inverse CDF with a guide table,
  ``LinkSampler``; observed pairs rejected through a byte filter in front of the sorted
  observed keys, ``ObservedPairs``). No DataLoader, no per-sample Python.
- The step is written out by hand, word2vec-style: the gradient of each pair's loss with
  respect to its two rows (cosine through the L2 normalisation) is computed in closed form and
  added to exactly those rows (``index_add_``), scaled by the learning rate: plain SGD on the
  summed loss. Nothing touches the rows a batch does not use: no dense gradient tables to zero,
  no optimizer state per row. Only the two scalars of Dense(1) (logit scale and bias) use Adam.
  ``test_train.py`` checks the hand-written gradient against autograd.

Measured at full shape on 2 cores (``benchmarks/train.py``): the dense autograd step with fused
Adam took ~14 ms per batch of 4,096 positives (zeroing and updating 4M parameters every step),
this one ~4 ms; per epoch SGD also learns faster (held-out AUC after epoch 1: 0.81 -> 0.87;
same plateau, 0.955, and the same genre agreement).

A slice of the positive pairs is held out to compute the AUC after every epoch; training stops
when it no longer improves and keeps the best epoch's weights.

What makes it learn well on small corpora too (measured in ``bookvec.model.training.config``): a
batch
size chosen by corpus size, negatives whose links follow (link frequency)^0.5, and a cap on
the learned logit scale. Same seed, same data: the same vectors, bit for bit, on the CPU.

Checkpoints: with ``checkpoint_dir`` the full training state (weights, Adam, learning rates,
history, the best epoch so far) is written after every epoch, atomically (``state.pt``;
``best.pt`` is a hard link to the best epoch's state). ``resume=True`` continues from it and
ends with the vectors an uninterrupted run would have given. They are read with
``torch.load(weights_only=True)``.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bookvec.errors import ConfigError, InputError
from bookvec.model.bundle import fsync_dir
from bookvec.model.training.config import TrainConfig

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
        from bookvec import disk

        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{self.STATE}.{os.getpid()}.tmp"
        tmp_best = self.directory / f".{self.BEST}.{os.getpid()}.tmp"
        # a full disk or Ctrl-C half-way leaves no temporary file and the last state whole
        try:
            with disk.guard(self.directory, 2 * _state_bytes(payload), what="saving a checkpoint"):
                with open(tmp, "wb") as handle:
                    torch.save(payload, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.state_path)
                if is_best:  # the state just written is the best one: link, don't write it twice
                    tmp_best.unlink(missing_ok=True)
                    try:
                        os.link(self.state_path, tmp_best)
                    except OSError as exc:  # no hard links on this file system
                        if disk.is_full(exc):
                            raise
                        shutil.copyfile(self.state_path, tmp_best)
                    os.replace(tmp_best, self.directory / self.BEST)
        except BaseException:
            tmp.unlink(missing_ok=True)
            tmp_best.unlink(missing_ok=True)
            raise
        fsync_dir(self.directory)

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
        optimizer: ScaleAdam,
        device: torch.device,
    ) -> tuple[int, int, list[dict], dict[str, Any], bool, float] | None:
        """Restore ``model`` and ``optimizer`` from ``state.pt``; None when there is none.

        Returns (first epoch, last epoch done, history, best {auc, epoch, state}, stopped,
        the embeddings' learning rate).
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
                best_state = _canonical(
                    _to_numpy(saved["model"]), _to_numpy(saved["optimizer"]), model.objective
                )
            best = {"auc": float(payload["best_auc"]), "epoch": best_epoch, "state": best_state}
            history = [dict(row) for row in payload["history"]]
            embedding_lr = float(payload["embedding_lr"])
            return first_epoch, epoch, history, best, bool(payload["stopped"]), embedding_lr
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(
                f"checkpoint {self.state_path} is incomplete or malformed: {e}",
                hint=f"delete {self.directory} and train without --resume",
            ) from e


def _state_bytes(payload: dict[str, Any]) -> int:
    """About what a checkpoint takes on disk: the bytes of its tensors."""
    total = 0
    stack: list[Any] = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return total + (1 << 20)


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


class ObservedPairs:
    """The observed (book, link) keys, for membership tests of many random keys at once.

    A byte filter indexed by a key's low bits (16 bytes per observed key, rounded up to a
    power of two) answers "not observed" for ~95% of random keys in one gather; the rest are
    looked up exactly in the sorted keys. At full shape (733k keys, a 16 MB filter) a check of
    an epoch's 1.5M negatives took 0.25 s with ``searchsorted`` alone, ~0.03 s with the filter.
    """

    def __init__(self, sorted_keys: torch.Tensor) -> None:
        self.keys = sorted_keys
        size = 1 << max(16, (16 * sorted_keys.numel()).bit_length())
        self.mask = size - 1
        self.filter = torch.zeros(size, dtype=torch.bool, device=sorted_keys.device)
        self.filter[sorted_keys & self.mask] = True

    def contains(self, keys: torch.Tensor) -> torch.Tensor:
        maybe = self.filter[keys & self.mask]
        which = maybe.nonzero().squeeze(1)
        maybe[which] = is_observed(keys[which], self.keys)
        return maybe


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


class LinkSampler:
    """Draws from a ``link_sampling_cdf`` by inverse CDF with a guide table (Chen & Asau):
    ``guide[j]`` is the first link whose CDF reaches j/m, so a draw u starts at
    ``guide[floor(u m)]`` and steps on while the CDF is below u, almost always 0-2 steps.
    The same links ``searchsorted(cdf, u)`` gives, without its ~20 cache misses a draw."""

    def __init__(self, cdf: torch.Tensor) -> None:
        self.cdf = cdf
        self.m = cdf.numel()
        grid = torch.arange(self.m, dtype=torch.float64, device=cdf.device) / self.m
        self.guide = torch.searchsorted(cdf, grid)

    def draw(self, n: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, generator=gen, device=self.cdf.device, dtype=torch.float64)
        links = self.guide[(u * self.m).long().clamp_(max=self.m - 1)]
        todo = (self.cdf[links] < u).nonzero().squeeze(1)
        while todo.numel():  # cdf[-1] == 1 > u: every draw stops by the last link
            links[todo] += 1
            todo = todo[self.cdf[links[todo]] < u[todo]]
        return links


def _draw_links(
    n: int,
    n_links: int,
    links: torch.Tensor | LinkSampler | None,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    if links is None:
        return torch.randint(n_links, (n,), generator=gen, device=device)
    sampler = links if isinstance(links, LinkSampler) else LinkSampler(links)
    return sampler.draw(n, gen)


def sample_negatives(
    n: int,
    n_books: int,
    n_links: int,
    observed: torch.Tensor | ObservedPairs,
    gen: torch.Generator,
    link_cdf: torch.Tensor | LinkSampler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (book, link) pairs none of which is in ``observed`` (sorted keys, or an
    ``ObservedPairs``); rejects are redrawn. Books are uniform; links uniform, or drawn from
    ``link_cdf`` (``link_sampling_cdf``, or a ``LinkSampler`` made from one).
    """
    if isinstance(observed, ObservedPairs):
        contains, device = observed.contains, observed.keys.device
    else:
        contains, device = (lambda keys: is_observed(keys, observed)), observed.device
    books = torch.randint(n_books, (n,), generator=gen, device=device)
    links = _draw_links(n, n_links, link_cdf, gen, device)
    bad = contains(pair_keys(books, links, n_links)).nonzero().squeeze(1)
    while bad.numel():
        books[bad] = torch.randint(n_books, (bad.numel(),), generator=gen, device=device)
        links[bad] = _draw_links(bad.numel(), n_links, link_cdf, gen, device)
        again = contains(pair_keys(books[bad], links[bad], n_links))
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
    if observed.numel() >= n_books * n_links:
        raise InputError("every (book, link) pair is observed: there are no negatives to learn")
    if config.validation_fraction <= 0:
        return observed, pairs, None
    n_val = max(1, round(config.validation_fraction * observed.numel()))
    held = observed[torch.randperm(observed.numel(), generator=gen)[:n_val]].sort().values
    train_pairs = pairs[~ObservedPairs(held).contains(keys)]
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
    n_train = train_pairs.shape[0]
    config = config.resolved(n_train)
    with torch.random.fork_rng(devices=[]):  # seeded initial tables; global RNG untouched
        torch.manual_seed(seed)
        model = BookLinkModel(n_books, n_links, config.embedding_dim, config.objective)

    model.to(device)
    # Adam for the two scalars of Dense(1); the tables are updated by ``sgd_step``
    optimizer = ScaleAdam(model, config.scale_learning_rate)
    embedding_lr = config.learning_rate
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
            first_epoch, start_epoch, history, best, stopped, embedding_lr = loaded
            log.info("resuming after epoch %d (best so far: %d)", start_epoch, best["epoch"])

    observed = observed.to(device)
    train_pairs = train_pairs.to(device)
    if val is not None:
        val = tuple(t.to(device) for t in val)
    gradients = torch.compile(pair_gradients, dynamic=True) if config.compile else pair_gradients
    link_counts = torch.bincount(train_pairs[:, 1], minlength=n_links)
    link_cdf = link_sampling_cdf(link_counts, config.negative_power, device)
    link_sampler = None if link_cdf is None else LinkSampler(link_cdf)
    observed_pairs = ObservedPairs(observed)

    bsz, ratio = config.batch_size, config.negative_ratio
    assert bsz is not None and config.patience is not None  # resolved above
    n_steps = math.ceil(n_train / bsz)
    steps_per_draw = max(1, NEGATIVES_PER_DRAW // (bsz * ratio))
    cap = config.max_logit_scale if config.objective == "classification" else None
    last_epoch = first_epoch + config.max_epochs

    bar = _ProgressBar(progress, last_epoch, n_steps)
    try:
        for epoch in range(start_epoch + 1, last_epoch + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            gen = torch.Generator(device=device).manual_seed((seed * 1_000_003 + epoch) % 2**63)
            draws = _epoch_draws(
                train_pairs,
                bsz * steps_per_draw,
                ratio,
                n_books,
                n_links,
                observed_pairs,
                gen,
                link_sampler,
            )
            bar.start_epoch(epoch)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for pos, neg_books, neg_links in draws:
                for i in range(0, pos.shape[0], bsz):
                    n_pos = min(bsz, pos.shape[0] - i)
                    books = torch.cat(
                        [pos[i : i + n_pos, 0], neg_books[i * ratio : (i + n_pos) * ratio]]
                    )
                    links = torch.cat(
                        [pos[i : i + n_pos, 1], neg_links[i * ratio : (i + n_pos) * ratio]]
                    )
                    loss = sgd_step(
                        model, optimizer, books, links, n_pos, embedding_lr, cap, gradients
                    )
                    total += loss
                    bar.advance(loss / books.numel())
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
                embedding_lr *= config.lr_decay
                optimizer.lr *= config.lr_decay
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
                        "embedding_lr": embedding_lr,
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


NEGATIVES_PER_DRAW = 1 << 18  # negatives drawn at once: a few dozen steps' worth


def _epoch_draws(
    train_pairs: torch.Tensor,
    chunk: int,
    ratio: int,
    n_books: int,
    n_links: int,
    observed: ObservedPairs,
    gen: torch.Generator,
    link_cdf: LinkSampler | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch's samples: the training pairs in a seeded order, ``chunk`` at a time, each
    with ``ratio`` times as many negatives (books, links)."""
    n_train = train_pairs.shape[0]
    shuffled = train_pairs[torch.randperm(n_train, generator=gen, device=train_pairs.device)]
    for start in range(0, n_train, chunk):
        pos = shuffled[start : start + chunk]
        neg_books, neg_links = sample_negatives(
            pos.shape[0] * ratio, n_books, n_links, observed, gen, link_cdf
        )
        yield pos, neg_books, neg_links


_EPS = 1e-12  # as F.normalize


class ScaleAdam:
    """Adam (torch's defaults: betas 0.9 / 0.999, eps 1e-8) for Dense(1)'s weight (the logit
    scale) and bias, held as one 2-vector. Written out because ``torch.optim.Adam`` imports
    torch._dynamo on its first step (~1 s in a fresh process) and costs ~0.5 ms a step, as
    much as a tenth of the whole step here."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, model: BookLinkModel, lr: float) -> None:
        self.weight, self.bias = model.dense.weight, model.dense.bias
        self.lr = lr
        self.steps = 0
        self.exp_avg = torch.zeros(2, device=self.weight.device)
        self.exp_avg_sq = torch.zeros(2, device=self.weight.device)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One update from ``grad`` = (dL/d scale, dL/d bias)."""
        beta1, beta2 = self.BETAS
        self.steps += 1
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self.exp_avg_sq / (1 - beta2**self.steps)).sqrt_().add_(self.EPS)
        update = self.exp_avg / denom * (self.lr / (1 - beta1**self.steps))
        self.weight.view(-1).sub_(update[:1])
        self.bias.sub_(update[1:])

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "exp_avg": self.exp_avg.clone(),
            "exp_avg_sq": self.exp_avg_sq.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Raises ValueError for a state of another shape (e.g. an older bundle's Adam)."""
        try:
            avg = torch.as_tensor(state["exp_avg"], dtype=torch.float32).reshape(2)
            avg_sq = torch.as_tensor(state["exp_avg_sq"], dtype=torch.float32).reshape(2)
            steps, lr = int(state["steps"]), float(state["lr"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise ValueError(f"not a ScaleAdam state: {e}") from e
        self.exp_avg.copy_(avg)
        self.exp_avg_sq.copy_(avg_sq)
        self.steps, self.lr = steps, lr


def pair_gradients(
    book_rows: torch.Tensor,
    link_rows: torch.Tensor,
    n_pos: int,
    scale: torch.Tensor,
    bias: torch.Tensor,
    classification: bool,
    row_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The summed loss of a batch and its gradients, in closed form.

    ``book_rows``/``link_rows`` (n, d) are the raw vectors of the batch's pairs, the first
    ``n_pos`` positive. The score is cos = <b/|b|, l/|l|>; classification: logit = scale * cos
    + bias, loss = BCE-with-logits; regression: loss = (cos - y)^2 with y = +1 / -1. Returns
    (loss summed over the pairs, dL/d book_rows, dL/d link_rows, dL/d cos, mean dL/d scale,
    mean dL/d bias); the last two are zero for regression. With dc = dL/dcos:
    dL/db = dc * (l/(|b||l|) - cos * b/|b|^2), and the same with b and l swapped. The two row
    gradients come multiplied by ``row_scale`` (``sgd_step`` passes -lr: the step itself, at
    no extra pass over the (n, d) arrays).
    """
    inv_b = torch.linalg.vector_norm(book_rows, dim=1).clamp_(min=_EPS).reciprocal_()
    inv_l = torch.linalg.vector_norm(link_rows, dim=1).clamp_(min=_EPS).reciprocal_()
    inv_bl = inv_b * inv_l
    cos = torch.linalg.vecdot(book_rows, link_rows).mul_(inv_bl)
    if classification:
        logit = cos * scale + bias
        loss = F.softplus(logit).sum() - logit[:n_pos].sum()
        d_logit = torch.sigmoid(logit)
        d_logit[:n_pos] -= 1
        d_scale, d_bias = (d_logit * cos).mean(), d_logit.mean()
        d_cos = d_logit.mul_(scale)
    else:
        target = torch.full_like(cos, -1.0)
        target[:n_pos] = 1.0
        diff = cos - target
        loss = diff.square().sum()
        d_scale = d_bias = torch.zeros((), dtype=cos.dtype, device=cos.device)
        d_cos = diff.mul_(2)
    d_rows = d_cos * row_scale
    along = (d_rows * inv_bl)[:, None]
    d_rows_cos = d_rows.mul_(cos)
    d_book = (link_rows * along).addcmul_(
        book_rows, (d_rows_cos * inv_b * inv_b)[:, None], value=-1
    )
    d_link = (book_rows * along).addcmul_(
        link_rows, (d_rows_cos * inv_l * inv_l)[:, None], value=-1
    )
    return loss, d_book, d_link, d_cos, d_scale, d_bias


@torch.no_grad()
def sgd_step(
    model: BookLinkModel,
    optimizer: ScaleAdam,
    books: torch.Tensor,
    links: torch.Tensor,
    n_pos: int,
    lr: float,
    max_logit_scale: float | None,
    gradients: Callable = pair_gradients,
) -> torch.Tensor:
    """One step on a batch (the first ``n_pos`` pairs positive): SGD with step ``lr`` on the
    rows of the summed loss's gradient (a row used twice gets both), Adam on Dense(1)'s
    scale and bias, the scale then capped. Returns the summed loss (a tensor: no sync)."""
    book_table, link_table = model.book.weight, model.link.weight
    classification = model.objective == "classification"
    loss, d_book, d_link, _, d_scale, d_bias = gradients(
        F.embedding(books, book_table),
        F.embedding(links, link_table),
        n_pos,
        model.dense.weight[0, 0],
        model.dense.bias[0],
        classification,
        -lr,  # the rows' gradients come scaled by -lr (index_add_'s alpha takes a slow path)
    )
    book_table.index_add_(0, books, d_book)
    link_table.index_add_(0, links, d_link)
    if classification:
        optimizer.step(torch.stack([d_scale, d_bias]))
        if max_logit_scale is not None:  # the learned logit scale, capped (see TrainConfig)
            model.dense.weight.clamp_(max=max_logit_scale)
    return loss


@torch.no_grad()
def evaluate(model: BookLinkModel, val: tuple[torch.Tensor, ...]) -> float:
    """AUC of the model's scores on a ``holdout`` validation set."""
    pos_b, pos_l, neg_b, neg_l = val
    return auc(model(pos_b, pos_l), model(neg_b, neg_l))


def _snapshot(model: BookLinkModel, optimizer: ScaleAdam) -> dict[str, Any]:
    """Numpy copy of the weights and Adam state, in canonical sign (dense weight >= 0)."""
    return _canonical(
        _to_numpy(model.state_dict()), _to_numpy(optimizer.state_dict()), model.objective
    )


def _canonical(weights: dict[str, np.ndarray], opt: dict[str, Any], objective: str) -> dict:
    """The weights and Adam state (numpy) with the dense weight made >= 0.

    sigmoid(w * cos(b, l) + c) is unchanged when both ``w`` and the link table change sign. A
    negative ``w`` would leave books pointing away from their links, and a book folded in from
    its links would then land opposite its neighbours; flipping keeps fold-in meaningful.
    """
    if objective == "classification" and weights["dense.weight"][0, 0] < 0:
        weights["link.weight"] = weights["link.weight"] * -1
        weights["dense.weight"] = weights["dense.weight"] * -1
        opt["exp_avg"] = opt["exp_avg"] * np.array([-1, 1], dtype=opt["exp_avg"].dtype)
    return {"model": weights, "optimizer": opt}


def _load_resume(
    model: BookLinkModel,
    optimizer: ScaleAdam,
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
    if state.get("optimizer"):  # Adam's state for the scale and bias (tables may have grown)
        try:
            optimizer.load_state_dict({**state["optimizer"], "lr": config.scale_learning_rate})
        except (TypeError, ValueError):  # e.g. from a bundle trained with torch's Adam
            log.info("the resumed optimizer state does not fit; Adam starts afresh")
    if grown:
        log.info("tables grew since the resumed run; new rows start random")
    return epoch


# ---------------------------------------------------------------------------------------------
# Warm start: the schedule of a run that starts from a trained model's tables


WARM_LR_SCALE = 0.5  # the tables' SGD step, and Adam's for Dense(1), x this
WARM_MAX_EPOCHS = 4


def warm_schedule(config: TrainConfig) -> TrainConfig:
    """``config`` for a warm start (``bookvec.model.training.warm``): most rows have converged, so
    a smaller step and fewer epochs; the loss, sampler and early stopping are the same.
    Measured in ``benchmarks/incremental.py`` (the README's "Keeping a model current")."""
    return replace(
        config,
        learning_rate=config.learning_rate * WARM_LR_SCALE,
        scale_learning_rate=config.scale_learning_rate * WARM_LR_SCALE,
        max_epochs=min(config.max_epochs, WARM_MAX_EPOCHS),
    )


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
