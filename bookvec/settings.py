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


def check_url(url: str) -> str:
    """A Qdrant server URL, checked before any client is built: http(s), a host, a port in
    1..65535. Raises ConfigError naming what is wrong (credentials in it are not repeated)."""
    from urllib.parse import urlsplit

    from bookvec.errors import ConfigError

    text = url.strip()
    hint = f"give e.g. http://localhost:6333 (--url or {ENV_QDRANT_URL})"

    def bad(why: str) -> ConfigError:
        return ConfigError(f"the Qdrant URL is malformed: {why}", hint=hint)

    if not text:
        raise bad("it is empty")
    if any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise bad("it holds spaces or control characters")
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        host, port = parts.hostname, parts.port  # port: ValueError if not 0..65535 digits
    except ValueError as exc:
        raise bad(str(exc).replace("Port", "port")) from None
    if parts.scheme not in ("http", "https"):
        raise bad(f"scheme {parts.scheme!r}: use http:// or https://")
    if not host:
        raise bad("it names no host")
    if port == 0:
        raise bad("port 0 is not a port a server listens on")
    return text
