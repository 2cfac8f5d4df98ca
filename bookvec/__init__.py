"""bookvec: embeddings of books learned from the pages they link to.

    import bookvec
    m = bookvec.load()                      # the current model: bundle + ONNX runtime
    m.most_similar("Dune", topn=5)          # neighbours, titles resolved loosely
    ix = bookvec.open_index()               # the store and its model
    ix.search("Dune", genres=["science fiction"], years=(1950, None))

The public names are loaded on first use (PEP 562), so ``import bookvec`` stays cheap and the
query side never imports torch; ``bookvec.train`` imports it inside the call. The code lives in
``bookvec.library`` (docs/python.md); typed errors in ``bookvec.errors``; the command line is
``bookvec.cli``, training ``bookvec.model``, the vector store ``bookvec.indexer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "load": "bookvec.library.model",
    "Model": "bookvec.library.model",
    "Vectors": "bookvec.library.model",
    "open_index": "bookvec.library.index",
    "Index": "bookvec.library.index",
    "train": "bookvec.library.training",
    "evaluate": "bookvec.library.analysis",
    **dict.fromkeys(
        (
            "BookLinks",
            "BookRecord",
            "Contribution",
            "DeleteReport",
            "Explanation",
            "Hit",
            "IndexReport",
            "Info",
            "LinkHit",
            "LinkScore",
            "Neighbour",
            "PairScore",
            "ScoreResult",
            "SearchResult",
            "TrainSummary",
            "UpsertReport",
        ),
        "bookvec.library.results",
    ),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ loads them
    from bookvec.library.index import Index, open_index  # noqa: F401
    from bookvec.library.model import Model, Vectors, load  # noqa: F401
    from bookvec.library.results import (  # noqa: F401
        BookLinks,
        BookRecord,
        Contribution,
        DeleteReport,
        Explanation,
        Hit,
        IndexReport,
        Info,
        LinkHit,
        LinkScore,
        Neighbour,
        PairScore,
        ScoreResult,
        SearchResult,
        TrainSummary,
        UpsertReport,
    )
    from bookvec.library.training import train  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bookvec' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
