"""Incremental reindex: bring a store up to a new model by writing only what changed.

``diff_points`` compares the books a reindex would write with the points the store holds: a
book is *added* (not stored), *changed* (its payload differs, its content hash aside: that
hash names the model), *moved* (its unit vector is more than ``tolerance`` away, in L2
distance, from the stored one), or *unchanged* (it keeps its stored point, vector included);
a stored point whose title is not among the books is *removed*. ``apply_changes`` on either
backend then writes the upserts and deletes and records the new model version:

- Edge: on a copy of the live generation, published at the end (CURRENT switches atomically,
  as a full reindex does; readers answer from the old generation until then).
- server: in place in the live collection (upserts, then deletes, then the model version in
  the collection metadata). A copy would cost a full upload, which is what this avoids;
  readers see a mix of the two models' vectors while it runs (all within the tolerance or
  about to be replaced). An interrupted run leaves the old model version recorded, and the
  next ``bookvec index`` diffs against what is stored, so it completes the work.

The diff is against the stored points, not against the parent model: running it again after
an interruption, or against a store indexed with any earlier model, gives the right answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bookvec.errors import ModelMismatchError
from bookvec.indexer.points import batched, dedupe, prepare_batch
from bookvec.indexer.types import BookPoint, BookStore, Progress

# L2 distance between unit vectors (~ the angle in radians): 0.05 is a cosine of 0.99875.
DEFAULT_TOLERANCE = 0.05
_PAGE = 1000


@dataclass(frozen=True)
class ChangeSet:
    """What a store needs to reach a new set of points; counts say why each point is written."""

    upserts: list[BookPoint] = field(repr=False)
    deletes: list[str] = field(repr=False)
    added: int
    moved: int
    changed: int  # payload or sparse vector changed, vector not moved
    unchanged: int
    removed: int
    tolerance: float

    @property
    def written(self) -> int:
        return len(self.upserts)

    def counts(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "moved": self.moved,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "written": self.written,
            "tolerance": self.tolerance,
        }


def _payload_key(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "content_hash"}


def _same_sparse(old, new) -> bool:
    """Two sparse vectors ((indices, values) or None) equal up to float32 rounding."""
    if old is None or new is None:
        return old is None and new is None
    a, b = dict(zip(*old, strict=True)), dict(zip(*new, strict=True))
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(b[k])) for k in a)


def diff_points(
    store: BookStore, points: Iterable[BookPoint], *, tolerance: float = DEFAULT_TOLERANCE
) -> ChangeSet:
    """Compare ``points`` with the store's (see the module docstring). Reads the stored
    payloads and vectors a page at a time; of a repeated title the last point wins."""
    import numpy as np

    info = store.info()
    if info is None:
        raise ModelMismatchError("the store holds no collection to update incrementally")
    size = info.vector_size
    upserts: list[BookPoint] = []
    added = moved = changed = unchanged = 0
    seen: set[str] = set()
    for batch in batched(points, _PAGE):
        items = dedupe(prepare_batch(batch, size))
        stored = store.get([item.title for item in items], with_vectors=True)
        new = np.asarray([item.vector for item in items], dtype=np.float64)
        new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
        for item, vector in zip(items, new, strict=True):
            seen.add(item.title)
            record = stored.get(item.title)
            if record is None:
                added += 1
                upserts.append(BookPoint(item.title, item.vector, item.payload, item.sparse))
                continue
            old = np.asarray(record.vector, dtype=np.float64)
            old /= max(float(np.linalg.norm(old)), 1e-12)
            is_moved = float(np.linalg.norm(vector - old)) > tolerance
            # a new vocabulary renumbers the sparse dimensions (link index = dimension), and a
            # new corpus changes their weights: such a point is rewritten as changed
            is_changed = _payload_key(record.payload) != _payload_key(
                item.payload
            ) or not _same_sparse(record.sparse, item.sparse)
            moved += is_moved
            changed += is_changed and not is_moved  # disjoint: a moved book counts as moved
            if is_moved or is_changed:
                upserts.append(BookPoint(item.title, item.vector, item.payload, item.sparse))
            else:
                unchanged += 1
    deletes = [title for title in store.titles() if title not in seen]
    return ChangeSet(
        upserts=upserts,
        deletes=deletes,
        added=added,
        moved=moved,
        changed=changed,
        unchanged=unchanged,
        removed=len(deletes),
        tolerance=tolerance,
    )


def reindex_incremental(
    store: Any,
    points: Iterable[BookPoint],
    *,
    model_version: str,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Progress | None = None,
) -> ChangeSet:
    """``diff_points``, then ``store.apply_changes``: the store ends holding ``points`` (each
    within ``tolerance`` of its vector) under ``model_version``. Returns the change set."""
    changes = diff_points(store, points, tolerance=tolerance)
    store.apply_changes(
        changes.upserts, changes.deletes, model_version=model_version, progress=progress
    )
    return changes
