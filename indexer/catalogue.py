"""The catalogue of upserted books: what `bookvec upsert` was given, kept with the store so
that a reindex (from any client) and a damaged shard can be rebuilt from it.

Both backends keep it in the points themselves: an upserted book's point has
``source == "upsert"`` and its cleaned links in one string field (``links``, JSON; a single
string, not a keyword-indexed list: payload conversion costs per value, and nothing filters by
links). The embedded store also keeps a log beside its generations, so that the catalogue
survives a shard that cannot be opened:

    <root>/catalogue.jsonl   one JSON object a line, appended and fsynced before the shard
                             is written: {"op": "put", "title", "payload"} or
                             {"op": "del", "title"}; rewritten whole (a temp file, renamed)
                             after a full reindex. A torn last line (a crash mid-append) is
                             ignored; the last record of a title wins.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookvec.errors import StoreError

LINKS_FIELD = "links"
SOURCE_FIELD = "source"
UPSERTED = "upsert"
BUNDLE = "bundle"
LOG = "catalogue.jsonl"


@dataclass(frozen=True)
class UpsertedBook:
    """A book the user added: its title, cleaned links (model-independent) and payload
    (without the links and the title, which are fields of their own here)."""

    title: str
    links: list[str]
    payload: dict[str, Any] = field(default_factory=dict)


def encode_links(links: Iterable[str]) -> str:
    import orjson  # here: a search by title never needs it

    links = list(links)
    try:  # the same text as the json module's, several times faster (it refuses lone surrogates)
        return orjson.dumps(links).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(links, ensure_ascii=False, separators=(",", ":"))


def _line(record: dict[str, Any]) -> bytes:
    """One log line; orjson for speed, the json module for what orjson refuses or writes
    otherwise (lone surrogates, integers past 64 bits, a float that is not finite)."""
    import orjson

    try:
        text = orjson.dumps(record, default=str)
        if b"null" not in text or not _has_nonfinite(record):
            return text + b"\n"
    except (TypeError, orjson.JSONEncodeError):
        pass
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _has_nonfinite(value: Any) -> bool:
    # a walk with a stack, strings and None skipped first: it runs for every logged book
    # (each payload has a None), and the recursive version cost 4% of a bulk upsert
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is int or kind is bool:
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def is_upserted(payload: Mapping[str, Any] | None) -> bool:
    return bool(payload) and payload.get(SOURCE_FIELD) == UPSERTED


def book_from_payload(title: str, payload: Mapping[str, Any]) -> UpsertedBook:
    body = dict(payload)
    raw = body.pop(LINKS_FIELD, None)
    body.pop("title", None)
    try:
        links = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    except ValueError:
        links = []
    return UpsertedBook(title=title, links=[str(link) for link in links], payload=body)


def sorted_books(books: Iterable[UpsertedBook]) -> list[UpsertedBook]:
    return sorted(books, key=lambda book: book.title)


class CatalogueLog:
    """The embedded store's log of upserts and deletes. Written only under the store's writer
    lock (generations.Layout.writing)."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOG

    def exists(self) -> bool:
        return self.path.is_file()

    def append_puts(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Record written points: upserted books as puts, any other point as a delete of its
        title from the catalogue (it was overwritten by a non-upserted point)."""
        lines = []
        for title, payload in items:
            if is_upserted(payload):
                lines.append({"op": "put", "title": title, "payload": dict(payload)})
            else:
                lines.append({"op": "del", "title": title})
        self._append(lines)

    def append_deletes(self, titles: Iterable[str]) -> None:
        self._append([{"op": "del", "title": title} for title in titles])

    def replay(self) -> dict[str, dict[str, Any]]:
        """title -> payload of every upserted book the log holds now."""
        books: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return books
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                op, title = record["op"], record["title"]
            except (ValueError, KeyError, TypeError):
                if number == len(lines):  # a torn last line: the append it ended never finished
                    break
                raise StoreError(
                    f"store damaged: the catalogue {self.path} is unreadable at line {number}",
                    hint="restore it from a backup, or move it aside to keep only what the "
                    "store's points hold",
                ) from None
            if op == "put":
                books[title] = dict(record.get("payload") or {})
            else:
                books.pop(title, None)
        return books

    def rewrite(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Replace the log by puts of exactly these books (after a full reindex)."""
        tmp = self.path.with_name(f".{LOG}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for title, payload in items:
                record = {"op": "put", "title": title, "payload": dict(payload)}
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _sync_dir(self.path.parent)

    def _append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        data = b"".join(map(_line, records))
        new = not self.path.exists()
        with open(self.path, "a+b") as handle:
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a torn line (rare): drop it before appending
                    handle.seek(0)
                    handle.truncate(handle.read().rfind(b"\n") + 1)
                    handle.seek(0, os.SEEK_END)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if new:
            _sync_dir(self.path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
