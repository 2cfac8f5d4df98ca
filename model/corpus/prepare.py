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
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    so a run on the file alone and one with them are different runs. The file is read twice
    (``prepare_books``' two passes)."""
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
            return prepare_books(lambda: read_books(path), cleaning, source_sha256=source)
        taken = {book.title for book in extra}

        def records() -> Iterator[RawBook]:
            return chain((b for b in read_books(path) if b.title not in taken), extra)

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


PREPARE_CHUNK = 50_000  # books read, encoded and counted at a time
_KEYS = ("h1", "h2")  # a cleaned name's 128-bit key in the first pass
# The first pass's counts are kept in buckets by their key's top bits, each summed on its own:
# a merge of all the counts at once took ~130 bytes a distinct link (3.0M at 10x, ~30M at
# 100x: 4-5 GB) beyond the 20 bytes a count holds; one bucket's merge takes 1/64 of that.
COUNT_BUCKETS = 64
_BUCKET = (pl.col("h1") // (1 << 58)).cast(pl.UInt8).alias("bucket")
_COUNT_SCHEMA = {"h1": pl.UInt64, "h2": pl.UInt64, "n": pl.UInt32}


def prepare_books(
    records: Iterable[RawBook] | Callable[[], Iterable[RawBook]],
    cleaning: CleaningConfig = CleaningConfig(),
    source_sha256: str = "",
) -> PreparedCorpus:
    """``prepare`` on records: an iterable (held as a list), or a function that gives the same
    records afresh on each call (then nothing is held per record).

    Two passes, ``PREPARE_CHUNK`` books at a time, so memory follows the kept links, not the
    distinct raw ones (mostly one-off pages). 1: the link counts (each book's links
    de-duplicated in original case, then cleaned) by a 128-bit hash of the cleaned name, no
    string kept. 2: the books' payload columns and each chunk's pairs to the links whose
    count reached ``min_books``, with those links' names; a name that differs from the first
    one seen under its hash (a collision) is caught by a third hash and raises."""
    if callable(records):
        again = records
    else:
        held = records if isinstance(records, Sequence) else list(records)
        again = lambda: held  # noqa: E731

    buckets: list[list[pl.DataFrame]] = [[] for _ in range(COUNT_BUCKETS)]
    counted = 0
    for batch in _batches(again(), cleaning):
        counted += len(batch)
        raw, code, sizes = _encode(batch)
        per_book = _books_per_raw(raw, code, sizes)
        named = pl.DataFrame({"name": clean_links(raw, cleaning), "n": per_book})
        counts = (
            named.drop_nulls("name").select(*_hashes(), "n").group_by(_KEYS).agg(pl.col("n").sum())
        )
        del named
        split = counts.with_columns(_BUCKET).partition_by("bucket", as_dict=True, include_key=False)
        for (at,), part in split.items():
            bucket = buckets[at]  # type: ignore[index]
            bucket.append(part)
            if len(bucket) >= 8:  # keep the counts compact, one bucket's merge at a time
                bucket[:] = [_sum_counts(bucket)]
        del counts, split
    if not counted:
        raise InputError("the corpus holds no books", hint="is it the right file?")
    # The kept links' order here is only an intermediate: the links table is sorted below.
    sums = []
    for bucket in buckets:
        if bucket:
            sums.append(_sum_counts(bucket).filter(pl.col("n") >= cleaning.min_books))
            bucket.clear()
    kept = pl.concat(sums) if sums else pl.DataFrame(schema=_COUNT_SCHEMA)
    kept = kept.with_row_index("kept").with_columns(pl.col("kept").cast(pl.Int32))
    del buckets, sums
    if kept.is_empty():
        raise InputError(
            f"no link is linked by {cleaning.min_books} or more books",
            hint="lower min_books, or use a larger corpus",
        )

    check = np.zeros(kept.height, dtype=np.uint64)  # the third hash of each kept name
    seen = np.zeros(kept.height, dtype=bool)
    names, parts, tables = [], [], []
    n_books = 0
    for batch in _batches(again(), cleaning):
        raw, code, sizes = _encode(batch)
        tables.append(_payload_table(batch))
        named = (
            pl.DataFrame({"name": clean_links(raw, cleaning)})
            .with_columns(*_hashes())
            .join(kept.select(*_KEYS, "kept"), on=_KEYS, how="left", maintain_order="left")
        )
        link = named.get_column("kept").fill_null(-1).to_numpy().astype(np.int32)[code]
        books = np.repeat(np.arange(n_books, n_books + len(batch), dtype=np.int32), sizes)
        n_books += len(batch)
        mask = link >= 0
        parts.append(_dedupe(np.stack([books[mask], link[mask]], axis=1), cleaning))
        found = (
            named.drop_nulls("kept")
            .unique("name")
            .select("kept", "name", third=pl.col("name").hash(seed=3))
        )
        at = found.get_column("kept").to_numpy()
        third = found.get_column("third").to_numpy()
        first = ~seen[at]
        if len(np.unique(at)) != len(at) or np.any(check[at[~first]] != third[~first]):
            raise RuntimeError("prepare: two link names share a 128-bit hash; please report")
        check[at[first]], seen[at[first]] = third[first], True
        names.append(found.filter(pl.Series(first)).select("kept", "name"))
    if n_books != counted or not seen.all():
        raise InputError("the corpus changed while it was read", hint="read it again")

    links = (
        pl.concat(names)
        .join(kept.select("kept", count=pl.col("n").cast(pl.Int32)), on="kept")
        .sort(["count", "name"], descending=[True, False])
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int32))
    )
    del names
    link_of_kept = np.empty(kept.height, dtype=np.int32)
    link_of_kept[links.get_column("kept").to_numpy()] = np.arange(links.height, dtype=np.int32)
    pairs = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int32)
    del parts
    pairs[:, 1] = link_of_kept[pairs[:, 1]]
    per_book = np.bincount(pairs[:, 0], minlength=n_books)
    return PreparedCorpus(
        _books_frame(tables, per_book),
        links.select("index", "name", "count"),
        pairs,
        cleaning,
        source_sha256=source_sha256,
    )


def clean_links(raw: pl.Series, cleaning: CleaningConfig) -> pl.Series:
    """``clean_link`` of every raw link (None where dropped), vectorised for printable ASCII
    (where polars' lowercase and whitespace agree with Python's); the rest in Python."""
    plain = raw.str.contains(r"^[\x20-\x7E]*$")
    frame = pl.DataFrame({"raw": raw, "plain": plain})
    name = pl.col("raw")
    if cleaning.strip_anchors:
        name = name.str.split_exact("#", 1).struct.field("field_0").str.strip_chars_end(" ")
        name = pl.when(name == "").then(None).otherwise(name)
    if cleaning.lowercase:
        name = name.str.to_lowercase()
    name = pl.when(name.is_in(list(cleaning.remove))).then(None).otherwise(name)
    cleaned = frame.select(pl.when(pl.col("plain")).then(name).otherwise(None).alias("name"))
    out = cleaned.get_column("name")
    others = np.flatnonzero(~plain.to_numpy())
    if others.size:
        fixed = [clean_link(r, cleaning) for r in raw.gather(others).to_list()]
        out = out.scatter(others, pl.Series(fixed, dtype=pl.String))
    return out.rename("name")


def _batches(records: Iterable[RawBook], cleaning: CleaningConfig) -> Iterator[list[RawBook]]:
    batch: list[RawBook] = []
    for book in records:
        if cleaning.drop_wikipedia_pages and is_wikipedia_page(book.title):
            continue
        batch.append(book)
        if len(batch) >= PREPARE_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _sum_counts(counts: list[pl.DataFrame]) -> pl.DataFrame:
    if len(counts) == 1:
        return counts[0]
    return pl.concat(counts).group_by(_KEYS).agg(pl.col("n").sum())


def _hashes() -> list[pl.Expr]:
    return [pl.col("name").hash(seed=1).alias("h1"), pl.col("name").hash(seed=2).alias("h2")]


def _encode(batch: list[RawBook]) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """A chunk's distinct raw links (original case), each occurrence's code into them (int32,
    file order) and each book's number of occurrences."""
    sizes = np.fromiter(map(len, (b.links for b in batch)), dtype=np.int64, count=len(batch))
    occurrences = pl.Series("raw", list(chain.from_iterable(b.links for b in batch)))
    occurrences = occurrences.cast(pl.String)
    distinct = occurrences.unique().to_frame().with_row_index("code")
    codes = (
        occurrences.to_frame()
        .join(distinct, on="raw", how="left", maintain_order="left")
        .get_column("code")
        .to_numpy()
        .astype(np.int32)
    )
    return distinct.get_column("raw"), codes, sizes


def _books_per_raw(raw: pl.Series, code: np.ndarray, sizes: np.ndarray) -> pl.Series:
    """For each distinct raw link of a chunk, the number of its books that link to it."""
    n = max(len(raw), 1)
    local = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    per_book = np.unique(local * n + code)  # each (book, raw link) once
    return pl.Series(np.bincount(per_book % n, minlength=len(raw)), dtype=pl.UInt32)


def _dedupe(pairs: np.ndarray, cleaning: CleaningConfig) -> np.ndarray:
    """One pair per (book, link), the first in file order, unless duplicates are kept."""
    if cleaning.keep_duplicate_pairs or not len(pairs):
        return pairs
    keys = pairs[:, 0].astype(np.int64) << 32 | pairs[:, 1].astype(np.int64)
    return pairs[np.sort(np.unique(keys, return_index=True)[1])]


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


def _payload_table(books: list[RawBook]) -> pa.Table:
    payloads = [book_payload(book) for book in books]
    return pa.table(
        {
            key: pa.array([p.get(key) for p in payloads], type=_ARROW_TYPES.get(key, pa.string()))
            for key in _BOOK_SCHEMA
            if key not in ("index", "n_links")
        }
    )  # through Arrow: polars builds list columns from Python lists slowly


def _books_frame(tables: list[pa.Table], per_book: np.ndarray) -> pl.DataFrame:
    table = pa.concat_tables(tables)
    columns = {key: table.column(key) for key in table.column_names}
    columns["index"] = pa.array(np.arange(len(per_book), dtype=np.int32))
    columns["n_links"] = pa.array(per_book.astype(np.int32))
    frame = pl.from_arrow(pa.table({key: columns[key] for key in _BOOK_SCHEMA}))
    return frame.cast(_BOOK_SCHEMA)  # type: ignore[return-value]
