"""Point ids and content hashes: the same title gives the same id on every backend."""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Fixed for ever: changing it changes every point id in every existing store.
NAMESPACE = uuid.UUID("3b0f2d4e-6c1a-5e8b-9f47-b00c5ec0ffee")

# Provenance, not content: a book re-sent from another source with the same content is unchanged.
UNHASHED_FIELDS = ("content_hash", "source")


def point_id(title: str) -> str:
    """uuid5 of the title (NFC-normalised), as a string."""
    return str(uuid.uuid5(NAMESPACE, unicodedata.normalize("NFC", title)))


def content_hash(payload: Mapping[str, Any], vector: Sequence[float]) -> str:
    """A stable hash of a point's payload and vector, for points that arrive without one.

    The vector is rounded to 6 decimals so that last-bit differences between runtimes (CPU vs
    GPU fold-in) do not make an unchanged book look changed.
    """
    body = {k: v for k, v in payload.items() if k not in UNHASHED_FIELDS}
    digest = hashlib.sha256(
        json.dumps(
            body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        ).encode("utf-8")
    )
    rounded = np.round(np.asarray(vector, dtype=np.float64), 6) + 0.0  # + 0.0 folds -0.0 into 0.0
    digest.update(rounded.astype("<f8").tobytes())
    return digest.hexdigest()[:32]
