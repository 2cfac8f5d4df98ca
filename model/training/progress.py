"""Training progress: epoch, loss and validation AUC, through the display the caller installed
(``bookvec.progress``; the CLI's is a rich bar on stderr)."""

from __future__ import annotations

from typing import Any

from bookvec import progress


def ProgressBar(enabled: bool, max_epochs: int, n_steps: int) -> Any:  # noqa: N802
    """The bar of one training run; a NullBar when disabled or when nothing is installed."""
    if not enabled:
        return progress.NullBar()
    return progress.bar("train", max_epochs=max_epochs, n_steps=n_steps)
