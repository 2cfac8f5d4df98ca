"""Where bookvec keeps its state, and the environment variables that move it.

Everything lives under ``BOOKVEC_HOME`` (default: the platform's user data directory):

    BOOKVEC_HOME/
      data/       fetched and synthetic corpora
      models/     model bundles, one directory each; models/CURRENT names the current one
      store/      the embedded Qdrant Edge store(s)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from bookvec.errors import ConfigError

ENV_HOME = "BOOKVEC_HOME"
ENV_MODEL = "BOOKVEC_MODEL"
ENV_QDRANT_URL = "BOOKVEC_QDRANT_URL"
ENV_QDRANT_API_KEY = "BOOKVEC_QDRANT_API_KEY"
ENV_COLLECTION = "BOOKVEC_COLLECTION"

DEFAULT_COLLECTION = "books"

# Names that become directory names under BOOKVEC_HOME (a collection's store, a model bundle):
# a letter or digit first (no ".", "..", "-x" or hidden names), then letters, digits, ".", "_",
# "-"; no separators, so a name can never point outside its parent directory.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(value: object, what: str) -> str:
    """A collection name or model id, checked in one place: names are never paths."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ConfigError(f"{what} {shown} is not a valid name", hint=f"use {NAME_RULE}")
    return value


def check_collection(value: object) -> str:
    return check_name(value, "collection name")


def check_model_id(value: object) -> str:
    return check_name(value, "model id")


def looks_like_path(ref: str) -> bool:
    """A --model value meant as a directory: it has a separator or starts with ~ or ."""
    return "/" in ref or os.sep in ref or ref.startswith(("~", "."))


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

    def __post_init__(self) -> None:
        check_collection(self.collection)

    @classmethod
    def from_env(cls) -> QdrantSettings:
        return cls(
            url=os.environ.get(ENV_QDRANT_URL) or None,
            api_key=os.environ.get(ENV_QDRANT_API_KEY) or None,
            collection=os.environ.get(ENV_COLLECTION) or DEFAULT_COLLECTION,
        )
