"""Where bookvec keeps its state, and the environment variables that move it.

Everything lives under ``BOOKVEC_HOME`` (default: the platform's user data directory):

    BOOKVEC_HOME/
      data/       fetched and synthetic corpora
      models/     model bundles, one directory each; models/CURRENT names the current one
      store/      the embedded Qdrant Edge store(s)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "BOOKVEC_HOME"
ENV_MODEL = "BOOKVEC_MODEL"
ENV_QDRANT_URL = "BOOKVEC_QDRANT_URL"
ENV_QDRANT_API_KEY = "BOOKVEC_QDRANT_API_KEY"
ENV_COLLECTION = "BOOKVEC_COLLECTION"

DEFAULT_COLLECTION = "books"


def home() -> Path:
    """The root of all bookvec state."""
    value = os.environ.get(ENV_HOME)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("bookvec", appauthor=False))


def data_dir() -> Path:
    return home() / "data"


def models_dir() -> Path:
    return home() / "models"


def store_dir() -> Path:
    return home() / "store"


@dataclass(frozen=True)
class QdrantSettings:
    """How to reach the vector store: a URL means a Qdrant server, none means embedded Edge."""

    url: str | None = None
    api_key: str | None = None
    collection: str = DEFAULT_COLLECTION

    @classmethod
    def from_env(cls) -> QdrantSettings:
        return cls(
            url=os.environ.get(ENV_QDRANT_URL) or None,
            api_key=os.environ.get(ENV_QDRANT_API_KEY) or None,
            collection=os.environ.get(ENV_COLLECTION) or DEFAULT_COLLECTION,
        )
