"""The title keys of a store or bundle, built once and kept on disk beside it.

`bookvec.titles` resolves a loosely typed title by keying every known title (case, accents,
punctuation, a leading article, a trailing qualifier); over 37k titles that is ~1 s a call.
This file holds those keys in SQLite (the standard library's, no new dependency): one row per
title with its loose and base keys, both indexed, so a loose title costs two indexed lookups.
An unknown title still needs every base key for the fuzzy suggestions; they are read in one
query rather than computed. `complete()` serves prefix autocompletion from the same index.

The file says how many titles it holds (`count`); a reader trusts it only while the store or
bundle it describes holds that many, and otherwise falls back to listing the titles.
Resolution rules and errors are exactly `bookvec.titles.TitleIndex`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError
from bookvec.titles import MAX_CANDIDATES, base_key, loose_key, suggest

FILE = "titles.sqlite"  # beside an Edge store generation's shard
_SCHEMA = """
CREATE TABLE titles (
    title TEXT PRIMARY KEY, loose TEXT NOT NULL, base TEXT NOT NULL, rank INTEGER
);
CREATE INDEX titles_loose ON titles (loose);
CREATE INDEX titles_base ON titles (base);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE packed (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Every title and base key in suggestion order, as two values of table `packed` ("titles": a
# JSON array; "bases": the keys one per line, as base keys hold no line break): an unknown
# title reads two values instead of a row per title (at 370k titles ~0.1 s against ~0.5 s).
# A file without them (written before) is read row by row until its next update packs it.
_IN_ORDER = "SELECT title, base FROM titles ORDER BY rank, title"


def _rows(titles: Iterable[str], ranked: bool = False) -> Iterable[tuple]:
    for rank, title in enumerate(titles):
        yield title, loose_key(title), base_key(title), rank if ranked else None


def write_keys(
    path: Path, titles: Iterable[str], *, count: int, stamp: str = "", ranked: bool = False
) -> None:
    """Write the key index of `titles` to `path`, replacing any there (atomically).
    `ranked`: suggestions break ties in the order given (a bundle's), not by title (a store's)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    db = sqlite3.connect(tmp)
    try:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        db.executemany("INSERT OR IGNORE INTO titles VALUES (?, ?, ?, ?)", _rows(titles, ranked))
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("count", str(count)), ("stamp", stamp)])
        _pack(db)
        db.commit()
    finally:
        db.close()
    os.replace(tmp, path)


def _pack(db: sqlite3.Connection) -> None:
    """(Re)write the packed titles and base keys from the rows (see `_IN_ORDER`); a file
    written before the packed table gets it here."""
    db.execute("CREATE TABLE IF NOT EXISTS packed (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    rows = db.execute(_IN_ORDER).fetchall()
    bases = "\n".join(base for _, base in rows)
    db.execute("DELETE FROM packed")
    if bases.count("\n") != max(len(rows) - 1, 0):
        return  # a base key with a line break (none should have one): rows are read instead
    titles = json.dumps([title for title, _ in rows], ensure_ascii=False)
    db.executemany("INSERT INTO packed VALUES (?, ?)", [("titles", titles), ("bases", bases)])


def open_keys(path: Path, *, writable: bool = False) -> TitleKeys | None:
    """The key index at `path`, or None when there is none or it cannot be read."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        if writable:
            db = sqlite3.connect(path)
        else:  # read-only, and usable from any thread (a bundle's index is cached per process)
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        return TitleKeys(db, count=int(meta["count"]), stamp=meta.get("stamp", ""))
    except (sqlite3.Error, KeyError, ValueError):
        return None


class TitleKeys:
    """An open key index; `resolve` as `TitleIndex.resolve`, over the titles it holds."""

    def __init__(self, db: sqlite3.Connection, *, count: int, stamp: str) -> None:
        self._db = db
        self.count = count
        self.stamp = stamp
        self.what = "book"

    def resolve(self, query: str, *, exact: bool = False, what: str | None = None) -> str:
        what = what or self.what
        if self._db.execute("SELECT 1 FROM titles WHERE title = ?", (query,)).fetchone():
            return query
        if not exact:
            for column, key in (("loose", loose_key(query)), ("base", base_key(query))):
                rows = self._db.execute(f"SELECT title FROM titles WHERE {column} = ?", (key,))
                same = sorted(title for (title,) in rows)
                if len(same) == 1:
                    return same[0]
                if len(same) > 1:
                    raise AmbiguousTitleError(query, same[:MAX_CANDIDATES], what=what)
        titles, keys = self._in_order()
        raise TitleNotFoundError(query, suggest(query, titles, keys=keys), what=what)

    def _in_order(self) -> tuple[list[str], list[str]]:
        """Every title and its base key in the order TitleIndex would hold them: a bundle's
        (rank), or sorted as a store lists its titles (rank NULL; SQLite compares UTF-8 bytes,
        which is code point order)."""
        try:
            packed = dict(self._db.execute("SELECT name, value FROM packed"))
        except sqlite3.Error:  # a file from before the packed table
            packed = {}
        if "titles" in packed and "bases" in packed:
            titles = json.loads(packed["titles"])
            keys = packed["bases"].split("\n") if titles else []
            if len(keys) == len(titles):
                return titles, keys
        rows = self._db.execute(_IN_ORDER).fetchall()
        return [title for title, _ in rows], [key for _, key in rows]

    def complete(self, prefix: str, limit: int = 10) -> list[str]:
        """Titles whose loose key starts with the prefix's, in key then title order."""
        key = loose_key(prefix)
        if not key:
            return []
        end = key[:-1] + chr(ord(key[-1]) + 1)
        rows = self._db.execute(
            "SELECT title FROM titles WHERE loose >= ? AND loose < ? ORDER BY loose, title LIMIT ?",
            (key, end, int(limit)),
        )
        return [title for (title,) in rows]

    def keyed(self) -> tuple[list[str], list[str]]:
        """Every title and its base key (stored, so a fuzzy match computes none)."""
        rows = self._db.execute("SELECT title, base FROM titles ORDER BY title").fetchall()
        return [title for title, _ in rows], [base for _, base in rows]

    def titles(self) -> list[str]:
        return [t for (t,) in self._db.execute("SELECT title FROM titles ORDER BY title")]

    def update(self, added: Iterable[str], removed: Iterable[str], *, count: int) -> None:
        """Add and remove titles and record the new count, in one transaction."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO titles VALUES (?, ?, ?, ?)", _rows(added))
            self._db.executemany("DELETE FROM titles WHERE title = ?", ((t,) for t in removed))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'count'", (str(count),))
            try:
                _pack(self._db)
            except sqlite3.OperationalError:  # a file from before the packed table
                pass
        self.count = count

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TitleKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
