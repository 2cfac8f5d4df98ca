"""Progress of long library calls (training epochs, downloads), shown by whoever installed a
display: the CLI installs rich bars on stderr; a library user sees none unless they install
one. The library itself never imports a terminal toolkit (an import-linter contract).

A display is a callable ``factory(kind, **fields) -> bar``; the bar of each kind has the
methods its caller uses:

- ``"train"`` (fields ``max_epochs``, ``n_steps``): ``start_epoch(epoch)``,
  ``advance(loss)`` (``loss`` has ``.item()``; the bar decides how often to read it),
  ``end_epoch(row)`` (the history row: ``loss``, ``val_auc``), ``close()``;
- ``"download"`` (field ``label``): ``start(total, completed)``, ``advance(n)``, ``stop()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Factory = Callable[..., Any]

_factory: Factory | None = None


class NullBar:
    """A bar that shows nothing: every method accepts anything and does nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def install(factory: Factory | None) -> Factory | None:
    """Show progress through ``factory`` from now on (None: show none); returns the previous."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def bar(kind: str, **fields: Any) -> Any:
    """A bar of ``kind`` from the installed display, or a NullBar when there is none."""
    made = _factory(kind, **fields) if _factory is not None else None
    return NullBar() if made is None else made
