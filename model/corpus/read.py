"""Reading book records: ``RawBook``, ``read_books``, ``book_payload``.

Input formats (chosen by ``format=`` or the file name, else sniffed from the content):

- ``ndjson``: one JSON value a line, plain or gzip (sniffed from the magic bytes). A line that
  starts with ``[`` is the 6-field Wikipedia format ``[title, infobox, links, external_links,
  timestamp, length]`` (positions 3-5 may be missing); a line that starts with ``{`` is an
  object ``{"title", "links", "genres"?, "author"?, "country"?, "language"?, "publisher"?,
  "year"?, "infobox"?}``. ``.ndjson``, ``.json``, ``.jsonl`` and ``.gz`` mean this format.
- ``csv``: columns ``title``, ``links`` (``|``-separated), ``genres`` (``|``-separated) and
  optionally ``author``, ``country``, ``language``, ``publisher``, ``year``.
- ``parquet``: the same columns; ``links``/``genres`` a list column or ``|``-separated text.

``path`` may be ``"-"`` for standard input (read as bytes and sniffed). A UTF-8 BOM and CRLF line
ends are accepted; blank lines are skipped. Anything else malformed raises
``bookvec.errors.InputError`` naming file, line and title, unless ``skip_invalid=True``: then
the record is skipped and ``(line, title or None, reason)`` is appended to ``rejects``.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from bookvec import inputs
from bookvec.errors import DataNotFoundError, InputError
from bookvec.model.corpus.payload import book_payload, split_authors

FORMATS = ("ndjson", "csv", "parquet")
_FORMAT_ALIASES = {"jsonl": "ndjson", "json": "ndjson"}
_EXTENSIONS = {
    ".ndjson": "ndjson", ".json": "ndjson", ".jsonl": "ndjson", ".csv": "csv",
    ".parquet": "parquet",
}  # fmt: skip
_FIELDS = ("author", "country", "language", "publisher")  # object/CSV keys kept in infobox
_HINT = "fix or remove that record, or pass --skip-invalid to skip bad records"


__all__ = ["FORMATS", "RawBook", "book_payload", "read_books", "split_authors"]


@dataclass(frozen=True)
class RawBook:
    """One record as read, before any cleaning."""

    title: str
    infobox: dict[str, str]  # position 1 of the 6-field format
    links: list[str]  # position 2, original case, duplicates kept
    external_links: list[str] = field(default_factory=list)  # position 3
    timestamp: str | None = None  # position 4
    length: int | None = None  # position 5
    line: int | None = None  # 1-based line (CSV: row + 1 for the header; Parquet: row)
    genres: list[str] | None = None  # only from input that gives genres directly


class _Bad(Exception):
    """One invalid record; turned into an InputError or a reject by ``read_books``."""

    def __init__(self, reason: str, title: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.title = title


# ---------------------------------------------------------------------------- reading


def read_books(
    path: str | Path,
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    rejects: list[tuple[int | None, str | None, str]] | None = None,
) -> Iterator[RawBook]:
    """The records of ``path`` in file order (see the module docstring for the formats).

    A missing file raises ``DataNotFoundError`` and an unknown format ``InputError`` at once;
    bad records raise while iterating.
    """
    name = "<stdin>" if str(path) == "-" else str(path)
    if format is not None and format.lower() not in (*FORMATS, *_FORMAT_ALIASES):
        raise InputError(
            f"unknown format {format!r}", path=name, hint="use one of: " + ", ".join(FORMATS)
        )
    if name != "<stdin>" and not inputs.readable(path):  # a FIFO is fine, a directory not
        raise DataNotFoundError(
            f"corpus file not found: {name}", hint="check the path, or fetch a corpus first"
        )
    fmt = _FORMAT_ALIASES.get(format.lower(), format.lower()) if format else _by_extension(name)
    return _read(path, name, fmt, skip_invalid, rejects)


def _by_extension(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".gz"):
        return _EXTENSIONS.get(Path(lower[:-3]).suffix, "ndjson")
    return _EXTENSIONS.get(Path(lower).suffix)


def _read(
    path: str | Path,
    name: str,
    fmt: str | None,
    skip_invalid: bool,
    rejects: list[tuple[int | None, str | None, str]] | None,
) -> Iterator[RawBook]:
    raw = inputs.stdin_binary() if name == "<stdin>" else open(path, "rb")
    line = None
    seen: dict[str, int | None] = {}
    try:
        stream = _maybe_gunzip(raw)
        fmt = fmt or _sniff(stream.peek(8)[:8])
        if fmt == "ndjson":
            records: Iterator[tuple[int, Any]] = _json_lines(stream)
        else:
            records = _table_rows(stream, name, fmt)
        for line, record in records:
            try:
                if isinstance(record, _Bad):
                    raise record
                book = _to_book(record, line)
                if book.title in seen:
                    raise _Bad(f"duplicate title (first at line {seen[book.title]})", book.title)
                seen[book.title] = line
                yield book
            except _Bad as bad:
                if not skip_invalid:
                    raise InputError(
                        bad.reason, path=name, line=line, title=bad.title, hint=_HINT
                    ) from None
                if rejects is not None:
                    rejects.append((line, bad.title, bad.reason))
    except (OSError, EOFError, zlib.error) as exc:  # a damaged or truncated gzip stream
        after = f" after line {line}" if line else ""
        raise InputError(
            f"cannot read{after}: {exc}", path=name, hint="is the file complete?"
        ) from None
    finally:
        if name != "<stdin>":
            raw.close()


def _maybe_gunzip(raw: BinaryIO) -> io.BufferedReader:
    stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    if stream.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=stream))  # type: ignore[arg-type]
    return stream


def _sniff(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "ndjson" if first in (b"[", b"{", b"") else "csv"


# orjson reads a 64-bit integer or less as json does, a longer one as a float: a line that may
# hold one (20 digits, and a float in what orjson read) goes through the json module, as does any
# line orjson refuses (the json module's message, its NaN and lone surrogates, a BOM, Unicode
# spaces).
_STR = {str}
_DIGITS = b"0123456789"


def _json_lines(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    for line, data in enumerate(stream, 1):
        if not data.strip():
            continue
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = _has_float  # a marker: not read
        # an integer past 64 bits has 20 digits or more: a line with fewer has none
        if value is not _has_float and (
            len(data) - len(data.translate(None, _DIGITS)) < 20 or not _has_float(value)
        ):
            yield line, value
            continue
        yield from _json_line(line, data)


def _has_float(value: Any) -> bool:
    """Whether a decoded JSON value holds a float at any depth (lists of strings skipped in C)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            item, kind = list(item.values()), list
        if kind is list and not set(map(type, item)) <= _STR:
            stack.extend(item)
    return False


def _json_line(line: int, data: bytes) -> Iterator[tuple[int, Any]]:
    """One line through the json module: its value, or why it is not one (as a _Bad)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield line, _Bad(f"not UTF-8: invalid byte at column {exc.start + 1}")
        return
    if line == 1:
        text = text.lstrip("\ufeff")
    text = text.strip()
    if not text:
        return
    try:
        yield line, json.loads(text)
    except RecursionError:
        yield line, _Bad("JSON nested too deeply")
    except json.JSONDecodeError as exc:
        reason = f"not JSON ({exc.msg} at column {exc.colno})"
        if line == 1 and text in ("[", "{"):
            reason += "; the file must hold one record per line (ndjson), not one JSON document"
        yield line, _Bad(reason)
    except ValueError as exc:  # an integer past Python's digit limit ("Exceeds the limit")
        yield line, _Bad(f"a number with too many digits ({str(exc).split(';')[0]})")


def _table_rows(stream: BinaryIO, name: str, fmt: str) -> Iterator[tuple[int, Any]]:
    import polars as pl

    data = io.BytesIO(stream.read())
    try:
        frame = pl.read_parquet(data) if fmt == "parquet" else pl.read_csv(data, infer_schema=False)
    except Exception as exc:  # polars raises many kinds; all mean "this is not a readable table"
        raise InputError(
            f"cannot read as {fmt}: {exc}".splitlines()[0], path=name, hint=f"is it {fmt}?"
        ) from None
    frame = frame.rename({col: col.lstrip("\ufeff").strip().lower() for col in frame.columns})
    for required in ("title", "links"):
        if required not in frame.columns:
            raise InputError(
                f"no {required!r} column (columns: {', '.join(frame.columns)})",
                path=name,
                line=1 if fmt == "csv" else None,
                hint="a table needs at least the columns title and links",
            )
    offset = 2 if fmt == "csv" else 1
    for row, record in enumerate(frame.iter_rows(named=True)):
        yield row + offset, {**record, "_table": True}


# ---------------------------------------------------------------------------- validation


def _to_book(record: Any, line: int) -> RawBook:
    if isinstance(record, list):
        return _from_array(record, line)
    if isinstance(record, dict):
        return _from_object(record, line)
    raise _Bad(f"not a JSON array or object but {type(record).__name__}")


def _check_title(value: Any) -> str:
    if value is None:
        raise _Bad("no title")
    if not isinstance(value, str):
        raise _Bad(f"title must be a string, not {type(value).__name__}")
    if not value.strip():
        raise _Bad("empty title")
    return value


def _check_strings(value: Any, what: str, title: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{what} must be a list of strings, not {type(value).__name__}", title)
    if set(map(type, value)) <= {str}:  # the fast path, in C
        return value
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _Bad(f"{what} must be strings; item {i} is {type(item).__name__}", title)
    return value


def _check_infobox(value: Any, title: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"infobox must be an object, not {type(value).__name__}", title)
    if set(map(type, value)) <= {str} and set(map(type, value.values())) <= {str}:
        return value
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None}


def _check_length(value: Any, title: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _Bad(f"length must be an integer, not {value!r}", title)


def _check_timestamp(value: Any, title: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _Bad(f"timestamp must be a string, not {type(value).__name__}", title)


def _from_array(record: list, line: int) -> RawBook:
    title = record[0] if record and isinstance(record[0], str) else None
    if len(record) < 3:
        raise _Bad(f"too few fields: {len(record)} (need title, infobox, links)", title)
    title = _check_title(record[0])
    extra = list(record[3:6]) + [None] * (6 - max(len(record), 3))
    return RawBook(
        title=title,
        infobox=_check_infobox(record[1], title),
        links=_check_strings(record[2], "links (position 2)", title),
        external_links=_check_strings(extra[0], "external links (position 3)", title),
        timestamp=_check_timestamp(extra[1], title),
        length=_check_length(extra[2], title),
        line=line,
    )


def _split_bars(value: Any) -> Any:
    """A ``|``-separated table cell -> a list (lists and nulls pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def _from_object(record: dict, line: int) -> RawBook:
    title = _check_title(record.get("title"))
    table = record.pop("_table", False)
    links, genres = record.get("links"), record.get("genres")
    if table:
        links, genres = _split_bars(links), _split_bars(genres)
    elif "links" not in record:
        raise _Bad("no 'links' key", title)
    if isinstance(genres, str):
        genres = [genres]
    infobox = _check_infobox(record.get("infobox"), title)
    for key in (*_FIELDS, "genre"):
        if record.get(key) is not None:
            infobox[key] = str(record[key])
    if record.get("year") is not None:
        infobox["pub_date"] = str(record["year"])
    return RawBook(
        title=title,
        infobox=infobox,
        links=_check_strings(links, "links", title),
        external_links=_check_strings(
            _split_bars(record.get("external_links")), "external links", title
        ),
        timestamp=_check_timestamp(record.get("timestamp"), title),
        length=_check_length(record.get("length"), title),
        line=line,
        genres=None if genres is None else _check_strings(genres, "genres", title),
    )
