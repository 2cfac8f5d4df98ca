"""(book, link) pairs: read from CSV, JSONL or Parquet (`bookvec score --pairs`), and scored
through the model's score graph (ONNX Runtime), upserted books through their stored vectors."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookvec.errors import BookvecError, ConfigError, InputError, TitleNotFoundError
from bookvec.library.results import PairScore, ScoreResult

PAIR_FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_EXTENSIONS |= {".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class PairRow:
    """One input row: where it came from (line, or row number for Parquet) and its titles."""

    line: int
    book: str
    link: str


def _pairs_format(source: str, format: str | None, data: bytes) -> str:
    if format is not None:
        if format not in PAIR_FORMATS:
            raise ConfigError(
                f"unknown pairs format {format!r}", hint="use one of: " + ", ".join(PAIR_FORMATS)
            )
        return format
    by_extension = _EXTENSIONS.get(Path(source).suffix.lower()) if source != "-" else None
    if by_extension:
        return by_extension
    if data.startswith(b"PAR1"):
        return "parquet"
    first = next((line for line in data.splitlines() if line.strip()), b"")
    return "jsonl" if first.lstrip(b"\xef\xbb\xbf \t").startswith(b"{") else "csv"


def _read_source(source: str) -> tuple[bytes, str]:
    from bookvec import inputs

    if source == "-":
        return inputs.stdin_binary().read(), "<stdin>"
    path = Path(source)
    if not inputs.readable(path):  # a FIFO (`<(...)`) is fine, a directory not
        raise InputError("no such file", path=source, hint="check the path, or use - for stdin")
    return path.read_bytes(), source


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path=name) from None


def read_pairs(
    source: str,
    *,
    format: str | None = None,
    rejects: list[tuple[int, str]] | None = None,
) -> list[PairRow]:
    """(book, link) rows from CSV (columns book,link; header optional), JSONL
    ({"book", "link"}) or Parquet (columns book, link); ``-`` is stdin.

    A malformed row raises InputError naming its line, unless ``rejects`` is given: then it is
    appended there as (line, reason) and reading goes on.
    """
    data, name = _read_source(source)
    fmt = _pairs_format(source, format, data)

    def bad(line: int, reason: str) -> None:
        if rejects is None:
            raise InputError(reason, path=name, line=line)
        rejects.append((line, reason))

    rows: list[PairRow] = []
    if fmt == "parquet":
        import polars as pl

        try:
            frame = pl.read_parquet(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
            raise InputError(f"not a readable Parquet file ({exc})", path=name) from None
        missing = [c for c in ("book", "link") if c not in frame.columns]
        if missing:
            raise InputError(
                f"Parquet file lacks column(s) {', '.join(missing)}",
                path=name,
                hint="give string columns book and link",
            )
        for number, (book, link) in enumerate(frame.select("book", "link").iter_rows(), 1):
            if isinstance(book, str) and isinstance(link, str) and book and link:
                rows.append(PairRow(number, book, link))
            else:
                bad(number, "book and link must be non-empty strings")
        return rows
    text = _text(data, name)
    if fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:  # also an integer past Python's digit limit
                bad(number, f"not JSON ({getattr(exc, 'msg', None) or str(exc).split(';')[0]})")
                continue
            if isinstance(record, dict) and all(
                isinstance(record.get(key), str) and record[key] for key in ("book", "link")
            ):
                rows.append(PairRow(number, record["book"], record["link"]))
            else:
                bad(number, 'expected {"book": "...", "link": "..."}')
        return rows
    columns = (0, 1)
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        names = [cell.strip().lower() for cell in row]
        if not rows and "book" in names and "link" in names:  # a header row
            columns = (names.index("book"), names.index("link"))
            continue
        if len(row) <= max(columns) or not row[columns[0]] or not row[columns[1]]:
            bad(number, "expected two columns: book,link")
            continue
        rows.append(PairRow(number, row[columns[0]], row[columns[1]]))
    return rows


def score_rows(model, rows: list[PairRow], *, exact: bool, skip_invalid: bool, source=None):
    """Score PairRows with ``model`` (a bookvec.Model). An unknown title raises, as an
    InputError naming ``source`` and the row's line when ``source`` is given; with
    ``skip_invalid`` it goes to the result's rejects instead."""
    columns = ([r.line for r in rows], [r.book for r in rows], [r.link for r in rows])
    return score_columns(model, *columns, exact=exact, skip_invalid=skip_invalid, source=source)


def score_columns(
    model,
    lines: list[int] | None,
    books: list[str],
    links: list[str],
    *,
    exact: bool,
    skip_invalid: bool,
    source=None,
):
    """score_rows over columns (``lines`` None: rows numbered from 1). Titles the bundle holds
    as given are looked up for the whole batch at once; only the others go through the loose
    rules (and the store's upserted books), row by row in input order, so the first bad row
    is the one reported, as before."""
    import numpy as np

    bundle = model.bundle
    book_at, link_at = bundle.book_index.get, bundle.link_index.get
    book_idx = [book_at(b, -1) for b in books]
    link_idx = [link_at(k, -1) for k in links]
    rejects: list[tuple[int, str]] = []
    upserted: dict[int, Any] = {}  # position -> the store record of an upserted book
    dropped: set[int] = set()
    for i in [i for i, (b, k) in enumerate(zip(book_idx, link_idx, strict=True)) if b < 0 or k < 0]:
        line = lines[i] if lines is not None else i + 1
        try:
            if book_idx[i] < 0:
                try:
                    book_idx[i] = model.book_index(books[i], exact=exact)
                except TitleNotFoundError:
                    record = model._upserted(books[i], exact=exact)  # a book added by upsert
                    if record is None:
                        raise
                    upserted[i] = record
            if link_idx[i] < 0:
                link_idx[i] = model.link_index(links[i], exact=exact)
        except BookvecError as exc:
            if skip_invalid:
                rejects.append((line, str(exc)))
                dropped.add(i)
                upserted.pop(i, None)
                continue
            if source is None:
                raise
            raise InputError(str(exc), path=source, line=line) from None
    if dropped:
        kept = [i for i in range(len(books)) if i not in dropped]
        position = {old: new for new, old in enumerate(kept)}
        upserted = {position[i]: r for i, r in upserted.items()}
        book_idx = [book_idx[i] for i in kept]
        link_idx = [link_idx[i] for i in kept]
    b = np.asarray(book_idx, dtype=np.int64)
    k = np.asarray(link_idx, dtype=np.int64)
    probabilities = np.zeros(len(b), dtype=np.float32)
    trained = np.ones(len(b), dtype=bool)
    if upserted:
        trained[list(upserted)] = False
    if trained.any():
        probabilities[trained] = model.runtime.score(b[trained], k[trained])
    if upserted:
        from bookvec.library.catalogue import VectorScorer

        scorer = VectorScorer(bundle, model.runtime)
        for i, record in upserted.items():
            probabilities[i] = scorer.score(record.vector, [link_idx[i]])[0]
    titles, names = bundle.book_titles, bundle.link_names
    make = PairScore.of
    scores = tuple(
        make(titles[bi], names[ki], p, False)
        for bi, ki, p in zip(book_idx, link_idx, round6(probabilities), strict=True)
    )
    if upserted:
        scores = tuple(
            make(upserted[i].title, s.link, s.probability, True) if i in upserted else s
            for i, s in enumerate(scores)
        )
    return ScoreResult(scores=scores, rejects=tuple(sorted(rejects)))


def round6(values) -> list[float]:
    """``[round(float(v), 6) for v in values]``, vectorised: rint(v * 1e6) / 1e6 is the same
    double wherever v * 1e6 is not within a hair of a half (the division is correctly
    rounded, as the parse of round's decimal is); those few go through round itself."""
    import numpy as np

    exact = np.asarray(values, dtype=np.float64)
    scaled = exact * 1e6
    out = np.rint(scaled) / 1e6
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    if near_half.size:
        out[near_half] = [round(v, 6) for v in exact[near_half].tolist()]
    return out.tolist()
