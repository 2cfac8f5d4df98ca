"""From a corpus file to training data: ``CleaningConfig``, ``clean_link``, ``prepare``,
``PreparedCorpus``.

The default ``CleaningConfig`` reproduces the original notebook exactly:

1. books = the records minus titles starting with ``Wikipedia:`` (any case); book index = order
   in the file;
2. link counts: each book's links de-duplicated *in original case*, then each cleaned
   (lowercased, removed ones dropped), so "Science fiction" and "science fiction" in one book
   count twice, as in the original ``list(chain(*[list(set(book[2])) for book in books]))``;
3. kept links: count >= ``min_books``; order: count descending, then name ascending (the
   original broke ties in set order, which changes from run to run);
4. pairs: for each book, for each link in file order (duplicates kept), ``(book, link)`` when
   the cleaned link is kept.

``strip_anchors`` cuts ``#section`` off links; ``keep_duplicate_pairs=False`` keeps one pair
per (book, link).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import chain
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from bookvec.errors import ConfigError, DataNotFoundError, InputError
from bookvec.model.bundle import BOOKS, LINKS, PAIRS
from bookvec.model.corpus.read import RawBook, book_payload, read_books
from bookvec.outfiles import sha256_file

FILES = (BOOKS, LINKS, PAIRS)  # the bundle's table files, the same tables
_META_CLEANING = "bookvec.cleaning"
_META_SHA = "bookvec.source_sha256"


@dataclass(frozen=True)
class CleaningConfig:
    """How links are normalised and which are kept. The defaults are the original's."""

    lowercase: bool = True
    remove: tuple[str, ...] = (
        "hardcover",
        "paperback",
        "hardback",
        "e-book",
        "wikipedia:wikiproject books",
        "wikipedia:wikiproject novels",
    )
    min_books: int = 4
    drop_wikipedia_pages: bool = True
    strip_anchors: bool = False
    keep_duplicate_pairs: bool = True

    def __post_init__(self) -> None:
        for name in ("lowercase", "drop_wikipedia_pages", "strip_anchors", "keep_duplicate_pairs"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"cleaning.{name} must be true or false")
        if isinstance(self.remove, str) or not all(isinstance(r, str) for r in self.remove):
            raise ConfigError("cleaning.remove must be a list of link names")
        object.__setattr__(self, "remove", tuple(self.remove))
        if self.lowercase and any(r != r.lower() for r in self.remove):
            bad = [r for r in self.remove if r != r.lower()]
            raise ConfigError(
                f"cleaning.remove has upper-case names {bad} but links are lowercased",
                hint="write them in lower case",
            )
        if isinstance(self.min_books, bool) or not isinstance(self.min_books, int):
            raise ConfigError("cleaning.min_books must be an integer")
        if self.min_books < 1:
            raise ConfigError(f"cleaning.min_books must be >= 1, not {self.min_books}")

    def to_dict(self) -> dict:
        """A JSON-ready dict (``remove`` as a list)."""
        data = asdict(self)
        data["remove"] = list(self.remove)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> CleaningConfig:
        """The inverse of ``to_dict``; unknown keys raise ``ConfigError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown cleaning options: {', '.join(unknown)}")
        data = dict(data)
        if "remove" in data and isinstance(data["remove"], list):
            data["remove"] = tuple(data["remove"])
        return cls(**data)


def clean_link(link: str, cleaning: CleaningConfig) -> str | None:
    """The normalised form of one raw link, or None when the cleaning drops it."""
    if cleaning.strip_anchors:
        link = link.split("#", 1)[0].rstrip()
        if not link:
            return None
    if cleaning.lowercase:
        link = link.lower()
    return None if link in cleaning.remove else link


def is_wikipedia_page(title: str) -> bool:
    """True for project pages such as ``Wikipedia:WikiProject Books/...`` (not books)."""
    return title[:10].lower() == "wikipedia:"


@dataclass
class PreparedCorpus:
    """Books, kept links and (book, link) pairs, ready for training."""

    books: pl.DataFrame  # index, title, genres, author, authors, country, language, ...
    links: pl.DataFrame  # index, name, count; count desc, name asc
    pairs: np.ndarray  # int32 (P, 2): (book index, link index)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    source_sha256: str = ""

    @property
    def n_books(self) -> int:
        return self.books.height

    @property
    def n_links(self) -> int:
        return self.links.height

    def save(self, directory: str | Path) -> None:
        """Write books.parquet, links.parquet, pairs.parquet (cleaning and source hash in
        the Parquet metadata) into ``directory``, creating it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {_META_CLEANING: json.dumps(self.cleaning.to_dict()), _META_SHA: self.source_sha256}
        self.books.write_parquet(directory / BOOKS, metadata=meta)
        self.links.write_parquet(directory / LINKS, metadata=meta)
        pairs = pl.DataFrame(
            {"book": self.pairs[:, 0], "link": self.pairs[:, 1]},
            schema={"book": pl.Int32, "link": pl.Int32},
        )
        pairs.write_parquet(directory / PAIRS, metadata=meta)

    @classmethod
    def load(cls, directory: str | Path) -> PreparedCorpus:
        """Read what ``save`` wrote."""
        directory = Path(directory)
        missing = [name for name in FILES if not (directory / name).is_file()]
        if missing:
            raise DataNotFoundError(
                f"no prepared corpus in {directory} (missing {', '.join(missing)})",
                hint="run prepare first",
            )
        try:
            books = pl.read_parquet(directory / BOOKS)
            links = pl.read_parquet(directory / LINKS)
            pair_frame = pl.read_parquet(directory / PAIRS)
            meta = pl.read_parquet_metadata(directory / PAIRS)
            pairs = pair_frame.select("book", "link").to_numpy().astype(np.int32, copy=False)
            cleaning = CleaningConfig.from_dict(json.loads(meta.get(_META_CLEANING, "{}")))
        except (pl.exceptions.PolarsError, OSError, ValueError, KeyError) as exc:
            raise InputError(f"corrupt prepared corpus: {exc}", path=str(directory)) from None
        return cls(books, links, pairs.reshape(-1, 2), cleaning, meta.get(_META_SHA, ""))


def prepare(
    path: str | Path,
    cleaning: CleaningConfig = CleaningConfig(),
    extra: Sequence[RawBook] = (),
) -> PreparedCorpus:
    """Read a corpus file (any format ``read_books`` knows; ``"-"`` is stdin) and clean it.

    ``extra``: more books (the store's upserted ones) added to the file's; a title in both
    keeps the extra record (the user's latest word). The source hash then covers them too,
    so a run on the file alone and one with them are different runs."""
    from bookvec import inputs

    if str(path) == "-" or inputs.is_pipe(path):  # read once: to a file, hashed and read
        with tempfile.NamedTemporaryFile(suffix=".corpus", delete=False) as tmp:
            if str(path) == "-":
                shutil.copyfileobj(inputs.stdin_binary(), tmp, 1 << 20)
            else:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, tmp, 1 << 20)
        try:
            return prepare(tmp.name, cleaning, extra)
        finally:
            os.unlink(tmp.name)
    try:
        source = sha256_file(path)
        if not extra:
            return prepare_books(read_books(path), cleaning, source_sha256=source)
        taken = {book.title for book in extra}
        records = chain((b for b in read_books(path) if b.title not in taken), extra)
        return prepare_books(records, cleaning, source_sha256=_with_extra(source, extra))
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(exc.message, path=str(path), hint=exc.hint) from None


def _with_extra(source_sha256: str, extra: Sequence[RawBook]) -> str:
    digest = hashlib.sha256(source_sha256.encode())
    for book in extra:
        record = [book.title, book.infobox, book.links, book.genres]
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def prepare_books(
    records: Iterable[RawBook], cleaning: CleaningConfig = CleaningConfig(), source_sha256: str = ""
) -> PreparedCorpus:
    """``prepare`` on records already read."""
    books = [
        b for b in records if not (cleaning.drop_wikipedia_pages and is_wikipedia_page(b.title))
    ]
    if not books:
        raise InputError("the corpus holds no books", hint="is it the right file?")

    # Counts: each book's links de-duplicated in original case; each distinct raw link is
    # cleaned once (in Python, as at upsert time); the joins and counting run in polars.
    per_book_sets = chain.from_iterable(set(book.links) for book in books)
    raw_counts = pl.Series("raw", list(per_book_sets), dtype=pl.String).value_counts(name="n")
    cleaned = [clean_link(raw, cleaning) for raw in raw_counts.get_column("raw").to_list()]
    raw_counts = raw_counts.with_columns(name=pl.Series(cleaned, dtype=pl.String))
    links = (
        raw_counts.drop_nulls("name")
        .group_by("name")
        .agg(count=pl.col("n").sum().cast(pl.Int32))
        .filter(pl.col("count") >= cleaning.min_books)
        .sort(["count", "name"], descending=[True, False])
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int32))
    )
    if links.is_empty():
        raise InputError(
            f"no link is linked by {cleaning.min_books} or more books",
            hint="lower min_books, or use a larger corpus",
        )

    # Pairs: every link in file order, duplicates kept, when its cleaned form is kept.
    link_of_raw = raw_counts.join(links, on="name").select("raw", link="index")
    sizes = np.fromiter(map(len, (b.links for b in books)), dtype=np.int64, count=len(books))
    occurrences = pl.DataFrame(
        {
            "book": np.repeat(np.arange(len(books), dtype=np.int32), sizes),
            "raw": pl.Series(list(chain.from_iterable(b.links for b in books)), dtype=pl.String),
        }
    )
    found = occurrences.join(link_of_raw, on="raw", maintain_order="left").select("book", "link")
    if not cleaning.keep_duplicate_pairs:
        found = found.unique(maintain_order=True)
    pairs = found.to_numpy().astype(np.int32, copy=False).reshape(-1, 2)
    per_book = np.bincount(pairs[:, 0], minlength=len(books))
    return PreparedCorpus(
        _books_frame(books, per_book),
        links.select("index", "name", "count"),
        pairs,
        cleaning,
        source_sha256=source_sha256,
    )


_BOOK_SCHEMA = {
    "index": pl.Int32,
    "title": pl.String,
    "genres": pl.List(pl.String),
    "author": pl.String,
    "authors": pl.List(pl.String),
    "country": pl.String,
    "language": pl.String,
    "publisher": pl.String,
    "year": pl.Int32,
    "n_links": pl.Int32,
}


_ARROW_TYPES = {
    "genres": pa.list_(pa.string()),
    "authors": pa.list_(pa.string()),
    "year": pa.int32(),
}


def _books_frame(books: list[RawBook], per_book: np.ndarray) -> pl.DataFrame:
    payloads = [book_payload(book) for book in books]
    columns = {
        key: pa.array([p[key] for p in payloads], type=_ARROW_TYPES.get(key, pa.string()))
        for key in _BOOK_SCHEMA
        if key in payloads[0]
    }  # through Arrow: polars builds list columns from Python lists slowly
    columns["index"] = pa.array(np.arange(len(books), dtype=np.int32))
    columns["n_links"] = pa.array(per_book.astype(np.int32))
    frame = pl.from_arrow(pa.table({key: columns[key] for key in _BOOK_SCHEMA}))
    return frame.cast(_BOOK_SCHEMA)  # type: ignore[return-value]
