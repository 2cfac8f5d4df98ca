"""Book and link vectors out of bookvec, in the formats other tools read. No torch.

- **parquet**: one row per book (or link): ``index``, ``title`` (``name`` for links),
  ``vector`` (a fixed-size list of float32, Arrow ``fixed_size_list``), then the payload
  fields (books: genres, author, authors, country, language, publisher, year, n_links;
  links: count).
- **npy**: ``OUT.npy`` holds the float32 (n, d) matrix; ``OUT.index.tsv`` beside it names
  row i on line i + 2 (a header line first): ``index``, ``title`` and the metadata columns
  (genres joined with "; "). Tab, newline, carriage return and "%" inside a field are
  percent-encoded (``%09``, ``%0A``, ``%0D``, ``%25``); ``urllib.parse.unquote`` decodes.
- **word2vec**: text, as gensim's ``KeyedVectors.load_word2vec_format(path)`` reads it: a
  first line "N D", then one line per row, ``token v1 ... vD``. The token is the title with
  "%" and every whitespace character percent-encoded as UTF-8 (space -> ``%20``, tab ->
  ``%09``, no-break space -> ``%C2%A0``), so titles with spaces survive the round trip:
  ``urllib.parse.unquote(token)`` gives the title back, exactly. Values are written with 9
  significant digits, enough to read back the same float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import numpy as np

from bookvec.errors import BundleError, ConfigError, InputError
from bookvec.model.bundle import RAW_BOOK_TABLE, RAW_LINK_TABLE

if TYPE_CHECKING:
    import polars as pl

    from bookvec.model.bundle import Bundle

FORMATS = ("parquet", "npy", "word2vec")
EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".txt": "word2vec",
    ".w2v": "word2vec",
    ".vec": "word2vec",
}
INDEX_SUFFIX = ".index.tsv"
RAW_FILES = {"books": RAW_BOOK_TABLE, "links": RAW_LINK_TABLE}


# ---------------------------------------------------------------------------------------------
# Escaping


def escape_token(title: str) -> str:
    """A title as one whitespace-free word2vec token: "%" and whitespace percent-encoded."""
    if not title:
        raise InputError("an empty title cannot be a word2vec token")
    return "".join(_percent(ch) if ch == "%" or ch.isspace() else ch for ch in title)


def unescape_token(token: str) -> str:
    """The inverse of ``escape_token`` (and of ``escape_field``)."""
    return unquote(token, errors="strict")


def escape_field(text: str) -> str:
    """A TSV field: "%", tab, newline and carriage return percent-encoded."""
    return "".join(_percent(ch) if ch in "%\t\n\r" else ch for ch in text)


def _percent(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Formats


def format_for(path: str | Path, format: str | None = None) -> str:
    """The export format: ``format`` when given, else by the file's extension."""
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(
                f"unknown format {format!r}", hint="use one of: " + ", ".join(FORMATS)
            )
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ConfigError(
            f"cannot tell the format of {str(path)!r} from its extension",
            hint="use .parquet, .npy, .txt/.w2v/.vec, or pass --format",
        )
    return EXTENSIONS[suffix]


def index_path(npy_path: str | Path) -> Path:
    """Where the row index of ``OUT.npy`` goes: ``OUT.index.tsv``."""
    path = Path(npy_path)
    stem = path.name[: -len(".npy")] if path.name.lower().endswith(".npy") else path.name
    return path.with_name(stem + INDEX_SUFFIX)


@dataclass
class VectorTable:
    """What an export holds: names (titles or link names), vectors, optional metadata."""

    names: list[str]
    vectors: np.ndarray  # float32 (n, d)
    metadata: pl.DataFrame | None = None  # one row per name, columns other than the name
    name_column: str = "title"

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.names):
            raise InputError(f"{len(self.names)} names for vectors of shape {self.vectors.shape}")
        if self.metadata is not None and self.metadata.height != len(self.names):
            raise InputError(f"{self.metadata.height} metadata rows for {len(self.names)} names")


def write(table: VectorTable, path: str | Path, format: str | None = None) -> list[Path]:
    """Write ``table`` to ``path`` in ``format`` (or by extension); returns the files written.

    Each file is written beside its destination and renamed into place.
    """
    fmt = format_for(path, format)
    path = Path(path)
    if fmt == "parquet":
        write_parquet(table, path)
        return [path]
    if fmt == "npy":
        return write_npy(table, path)
    write_word2vec(table, path)
    return [path]


def write_parquet(table: VectorTable, path: Path) -> None:
    import polars as pl

    n, dim = table.vectors.shape
    frame = pl.DataFrame(
        {
            "index": pl.Series("index", np.arange(n, dtype=np.int32)),
            table.name_column: pl.Series(table.name_column, table.names, dtype=pl.String),
            "vector": pl.Series("vector", table.vectors, dtype=pl.Array(pl.Float32, dim)),
        }
    )
    if table.metadata is not None:
        extra = table.metadata.drop([c for c in table.metadata.columns if c in frame.columns])
        frame = pl.concat([frame, extra], how="horizontal")
    with _atomic(path) as tmp:
        frame.write_parquet(tmp)


def read_parquet(path: str | Path) -> VectorTable:
    import polars as pl

    frame = pl.read_parquet(path)
    name_column = "title" if "title" in frame.columns else "name"
    if name_column not in frame.columns or "vector" not in frame.columns:
        raise InputError(
            "not a bookvec vector export (no title/name or vector column)", path=str(path)
        )
    vectors = np.asarray(frame.get_column("vector").to_numpy(), dtype=np.float32)
    metadata = frame.drop(["index", name_column, "vector"], strict=False)
    return VectorTable(frame[name_column].to_list(), vectors, metadata, name_column)


def write_npy(table: VectorTable, path: Path) -> list[Path]:
    index = index_path(path)
    columns = [("index", [str(i) for i in range(len(table.names))])]
    columns.append((table.name_column, table.names))
    if table.metadata is not None:
        for column in table.metadata.columns:
            if column in ("index", table.name_column):
                continue
            columns.append((column, [_tsv_value(v) for v in table.metadata[column].to_list()]))
    lines = ["\t".join(escape_field(name) for name, _ in columns)]
    lines.extend(
        "\t".join(escape_field(values[i]) for _, values in columns) for i in range(len(table.names))
    )
    with _atomic(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, table.vectors)
    with _atomic(index) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path, index]


def read_npy(path: str | Path) -> VectorTable:
    path = Path(path)
    index = index_path(path)
    if not index.is_file():
        raise InputError(f"no index file {index.name} beside it", path=str(path))
    vectors = np.load(path)
    rows = index.read_text(encoding="utf-8").split("\n")
    header = rows[0].split("\t")
    body = [row.split("\t") for row in rows[1:] if row]
    if len(header) < 2 or header[0] != "index":
        raise InputError("not a bookvec index file (header must start with index)", path=str(index))
    names = [unescape_token(row[1]) for row in body]
    return VectorTable(names, vectors, None, header[1])


def write_word2vec(table: VectorTable, path: Path) -> None:
    n, dim = table.vectors.shape
    line = " ".join(["%.9g"] * dim)
    with _atomic(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(f"{n} {dim}\n")
            for name, row in zip(table.names, table.vectors.tolist(), strict=True):
                handle.write(escape_token(name) + " " + line % tuple(row) + "\n")


def read_word2vec(path: str | Path) -> VectorTable:
    """Read a word2vec text file (tokens unescaped back to titles)."""
    with open(path, encoding="utf-8") as handle:
        head = handle.readline().split()
        try:
            n, dim = int(head[0]), int(head[1])
        except (IndexError, ValueError):
            raise InputError("first line must be 'N D'", path=str(path), line=1) from None
        names: list[str] = []
        vectors = np.empty((n, dim), dtype=np.float32)
        for i, text in enumerate(handle):
            parts = text.rstrip("\n").split(" ")
            if i >= n or len(parts) != dim + 1:
                raise InputError(f"expected {n} rows of a token and {dim} numbers", path=str(path),
                                 line=i + 2)  # fmt: skip
            names.append(unescape_token(parts[0]))
            vectors[i] = np.asarray(parts[1:], dtype=np.float32)
    if len(names) != n:
        raise InputError(f"header says {n} rows, found {len(names)}", path=str(path))
    return VectorTable(names, vectors)


def read(path: str | Path, format: str | None = None) -> VectorTable:
    """Read back what ``write`` wrote (metadata only from Parquet)."""
    fmt = format_for(path, format)
    return {"parquet": read_parquet, "npy": read_npy, "word2vec": read_word2vec}[fmt](path)


# ---------------------------------------------------------------------------------------------
# From a bundle


def bundle_table(bundle: Bundle, *, links: bool = False, raw: bool = False) -> VectorTable:
    """The bundle's book (or link) vectors with their metadata.

    ``raw``: the vectors before L2 normalisation, only where the bundle stores them
    (``book_embeddings_raw.npy`` / ``link_embeddings_raw.npy``); the bundle's ``weights.pt``
    also holds them, but reading it needs torch, which exports never import.
    """
    what = "links" if links else "books"
    if raw:
        file = bundle.file(RAW_FILES[what])
        if not file.is_file():
            raise BundleError(
                f"model {bundle.model_id} does not store raw (unnormalised) {what[:-1]} vectors",
                hint="export the normalised ones (the default, what search and score use), "
                "or train again with a bookvec that writes " + RAW_FILES[what],
            )
        vectors = np.load(file)
    else:
        vectors = np.asarray(bundle.link_vectors if links else bundle.book_vectors)
    frame = bundle.links if links else bundle.books
    name_column = "name" if links else "title"
    names = frame.get_column(name_column).to_list()
    metadata = frame.drop([c for c in ("index", name_column) if c in frame.columns])
    return VectorTable(names, vectors, metadata, name_column)


# ---------------------------------------------------------------------------------------------
# Helpers


def _tsv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


@contextmanager
def _atomic(path: Path) -> Iterator[str]:
    """``with _atomic(path) as tmp``: write ``tmp``; it replaces ``path`` only on success
    (a symlink's target, never the link; a device or FIFO is written through)."""
    from bookvec.outfiles import output_file

    if not Path(path).parent.is_dir():
        raise InputError("the folder does not exist", path=str(Path(path).parent))
    with output_file(path, what="vectors") as where:
        yield str(where)
