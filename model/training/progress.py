"""Training progress on stderr: epoch, loss and validation AUC (rich, imported only when
shown)."""

from __future__ import annotations

import torch


class ProgressBar:
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
