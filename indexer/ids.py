"""Point ids and content hashes: the same title gives the same id on every backend."""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

# Fixed for ever: changing it changes every point id in every existing store.
NAMESPACE = uuid.UUID("3b0f2d4e-6c1a-5e8b-9f47-b00c5ec0ffee")

# Provenance, not content: a book re-sent from another source with the same content is unchanged.
# The filter keys are derived from author and country (indexer/keys.py), not content either.
UNHASHED_FIELDS = ("content_hash", "source", "author_keys", "country_key")


_NAMESPACE_BYTES = NAMESPACE.bytes


def point_id(title: str) -> str:
    """uuid5 of the title (NFC-normalised), as a string: `str(uuid.uuid5(NAMESPACE, title))`
    without building UUID objects (a third of the cost, and bulk loads call it per point)."""
    name = (title if title.isascii() else unicodedata.normalize("NFC", title)).encode("utf-8")
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_hash(payload: Mapping[str, Any], vector: Sequence[float]) -> str:
    """A stable hash of a point's payload and vector, for points that arrive without one.

    The vector is rounded to 6 decimals so that last-bit differences between runtimes (CPU vs
    GPU fold-in) do not make an unchanged book look changed.
    """
    import numpy as np

    body = {k: v for k, v in payload.items() if k not in UNHASHED_FIELDS}
    digest = hashlib.sha256(
        json.dumps(
            body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        ).encode("utf-8")
    )
    rounded = np.round(np.asarray(vector, dtype=np.float64), 6) + 0.0  # + 0.0 folds -0.0 into 0.0
    digest.update(rounded.astype("<f8").tobytes())
    return digest.hexdigest()[:32]
