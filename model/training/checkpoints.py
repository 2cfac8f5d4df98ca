"""The training state of a run on disk, and the weight snapshots it holds.

With ``checkpoint_dir`` the full training state (weights, Adam, learning rates, history, the
best epoch so far) is written after every epoch, atomically (``state.pt``; ``best.pt`` is a
hard link to the best epoch's state). A resumed run ends with the vectors an uninterrupted run
would have given. Checkpoints are read with ``torch.load(weights_only=True)`` only; one from
other pairs or another config (threads, device and compile aside) is refused (ConfigError).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bookvec.errors import ConfigError
from bookvec.model.training.config import TrainConfig
from bookvec.model.training.model import BookLinkModel, ScaleAdam, _to_numpy, _weights_to_torch
from bookvec.outfiles import fsync_dir

log = logging.getLogger("bookvec.model.training.train")


_NOT_FINGERPRINTED = ("threads", "device", "compile")  # may change between run and resume


def _fingerprint(data: np.ndarray, n_books: int, n_links: int, config: TrainConfig) -> dict:
    """What a checkpoint must agree with to be resumed: the pairs and the (resolved) config."""
    flat = np.asarray(data).reshape(-1)
    digest = hashlib.sha256()
    for start in range(0, flat.size, 1 << 22):  # the int64 bytes, a slice at a time (no copy)
        digest.update(flat[start : start + (1 << 22)].astype(np.int64).tobytes())
    kept = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED}
    return {
        "pairs_sha256": digest.hexdigest(),
        "n_books": n_books,
        "n_links": n_links,
        "config": kept,
    }


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
# Snapshots and warm starts


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
        np.negative(weights["link.weight"], out=weights["link.weight"])  # our copy: in place
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
