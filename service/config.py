"""The service's settings: one frozen dataclass, validated once, handed to every worker."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bookvec.errors import ConfigError

ENV_API_KEY = "BOOKVEC_API_KEY"  # the write key (upsert, delete)
ENV_READ_KEY = "BOOKVEC_READ_KEY"  # optional: without it reads are open
ENV_CONFIG = "BOOKVEC_SERVE_CONFIG"  # how `bookvec serve` hands the config to its workers

MB = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    """What a server answers for and how much it accepts. Keys never appear in its repr."""

    home: str | None = None
    model: str | None = None
    url: str | None = None
    qdrant_api_key: str | None = field(default=None, repr=False)
    collection: str = "books"
    api_key: str | None = field(default=None, repr=False)
    read_key: str | None = field(default=None, repr=False)
    # Bounds a real deployment can live with: a 10,000-book upsert in NDJSON is ~3 MB.
    max_body_bytes: int = 32 * MB
    max_limit: int = 1000  # books or pages in one answer
    max_pairs: int = 100_000  # pairs in one score request
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_limit", "max_pairs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, not {value!r}")
        for name in ("api_key", "read_key"):
            key = getattr(self, name)
            if key is not None and (len(key) < 8 or key != key.strip()):
                raise ConfigError(
                    f"the {name.replace('_', ' ')} is too short or has surrounding spaces",
                    hint="use at least 8 characters, e.g. `openssl rand -hex 16`",
                )
        if not isinstance(self.cors_origins, tuple):
            object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(
                    f"CORS origin {origin!r} is not an origin",
                    hint="give e.g. https://example.org (scheme and host, no path)",
                )

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The config `bookvec serve` put in the environment, else one from the plain
        variables (BOOKVEC_API_KEY, BOOKVEC_READ_KEY) with the defaults."""
        text = os.environ.get(ENV_CONFIG)
        if text:
            values = json.loads(text)
            values["cors_origins"] = tuple(values.get("cors_origins") or ())
            return cls(**values)
        return cls(
            api_key=os.environ.get(ENV_API_KEY) or None,
            read_key=os.environ.get(ENV_READ_KEY) or None,
        )


def read_key_file(path: str | Path, what: str = "--api-key-file") -> str:
    """The key in a file (its first line, stripped), with errors naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{what} {path}: {reason}", hint="give a readable file") from None
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(f"{what} {path} is empty", hint="put the key on its first line")
    return lines[0].strip()
