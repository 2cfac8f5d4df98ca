"""The title-key index of an Edge generation (bookvec/titlekeys.py), kept in step with it.

Written beside the shard when a generation is built, updated by every upsert and delete with
the titles they add and remove, and trusted by readers only while the count it records equals
the shard's (a write that stopped half-way leaves them different, and the next write rebuilds
it). Keeping it is never worth failing a write for: on any error the file is removed, and
title resolution falls back to listing the store's titles.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qdrant_edge as edge

from bookvec.titlekeys import FILE, TitleKeys, open_keys, write_keys

SCROLL_PAGE = 10_000


@dataclass
class TitleDelta:
    """What one write does to the set of titles."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def exact_count(shard: edge.EdgeShard) -> int:
    return shard.count(edge.CountRequest(exact=True))


def noting_titles(batches: Iterable[list[Any]], titles: list[str]) -> Iterator[list[Any]]:
    """Pass batches of prepared points through, noting their titles."""
    for batch in batches:
        titles.extend(item.title for item in batch)
        yield batch


def all_titles(shard: edge.EdgeShard) -> Iterator[str]:
    offset = None
    while True:
        request = edge.ScrollRequest(
            offset=offset, limit=SCROLL_PAGE, with_payload=["title"], with_vector=False
        )
        records, offset = shard.scroll(request)
        yield from (rec.payload["title"] for rec in records)
        if offset is None:
            return


def write_for(generation: Path, shard: edge.EdgeShard, titles: Iterable[str]) -> None:
    """A fresh key index for a generation just built."""
    _guarded(generation, lambda: write_keys(generation / FILE, titles, count=exact_count(shard)))


def copy_for(source: Path, target: Path) -> None:
    """Carry the key index along when a generation is copied to be changed."""
    if (source / FILE).is_file():
        _guarded(target, lambda: shutil.copyfile(source / FILE, target / FILE))


def update_for(generation: Path, shard: edge.EdgeShard, before: int, delta: TitleDelta) -> None:
    """After a write: apply its delta if the index matched the shard before it, else rebuild."""

    def update() -> None:
        after = exact_count(shard)
        keys = open_keys(generation / FILE, writable=True)
        if keys is not None and keys.count == before:
            with keys:
                keys.update(delta.added, delta.removed, count=after)
            return
        if keys is not None:
            keys.close()
        write_keys(generation / FILE, all_titles(shard), count=after)

    _guarded(generation, update)


def drop_for(generation: Path) -> None:
    """Forget a generation's key index (readers then list the store's titles)."""
    with contextlib.suppress(OSError):
        (generation / FILE).unlink()


def open_for(generation: Path, shard: edge.EdgeShard) -> TitleKeys | None:
    """The generation's key index if it describes the shard as it is, else None."""
    keys = open_keys(generation / FILE)
    if keys is not None and keys.count != exact_count(shard):
        keys.close()
        return None
    return keys


def _guarded(generation: Path, action) -> None:
    try:
        action()
    except (sqlite3.Error, OSError):
        with contextlib.suppress(OSError):
            (generation / FILE).unlink()
