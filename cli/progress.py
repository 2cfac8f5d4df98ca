"""Progress bars on stderr (rich), silent with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bookvec.cli import output


@contextmanager
def counting_progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; shows a bar with the count and its rate on an interactive stderr."""
    if output.is_quiet() or not output.stderr.is_terminal:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        _rate_column(),
        TimeElapsedColumn(),
        console=output.stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def rate_text(speed: float | None) -> str:
    """The rate a bar shows: ``12,345/s`` (nothing until rich has measured one)."""
    return f"{speed:,.0f}/s" if speed else ""


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(rate_text(task.speed), style="progress.data.speed")

    return RateColumn()


class _TrainBar:
    """Epoch, loss and validation AUC of a training run (the "train" bar of bookvec.progress)."""

    def __init__(self, max_epochs: int, n_steps: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.n_steps = n_steps
        self.last_auc = "-"
        self.i = 0
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

    def start_epoch(self, epoch: int) -> None:
        self.progress.reset(self.task, total=self.n_steps)
        self.progress.update(self.task, epoch=epoch, auc=self.last_auc)
        self.i = 0

    def advance(self, loss) -> None:
        self.i += 1
        if self.i % 16 == 0 or self.i == self.n_steps:  # .item() syncs; not every step
            self.progress.update(self.task, completed=self.i, loss=f"{loss.item():.4f}")

    def end_epoch(self, row: dict) -> None:
        if row["val_auc"] is not None:
            self.last_auc = f"{row['val_auc']:.4f}"
        self.progress.update(self.task, loss=f"{row['loss']:.4f}", auc=self.last_auc)

    def close(self) -> None:
        self.progress.stop()


class _DownloadBar:
    """Bytes done / total, rate and time left of a download (the "download" bar)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.task = None

    def start(self, total: int | None, completed: int) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
            )
            self.task = self.bar.add_task(self.label, total=total, completed=completed)
            self.bar.start()
        else:
            self.bar.reset(self.task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self.bar.advance(self.task, n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def rich_display(kind: str, **fields):
    """The CLI's display for bookvec.progress: rich bars on stderr."""
    if kind == "train":
        return _TrainBar(fields["max_epochs"], fields["n_steps"])
    if kind == "download":
        return _DownloadBar(fields["label"])
    return None
