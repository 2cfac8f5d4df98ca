"""The model bundle: one directory that training writes and everything else only reads.

    models/<model_id>/
      manifest.json            the typed ``Manifest``: format version, config, corpus, counts,
                               metrics, versions, file hashes
      books.parquet            index, title, genres, author, ... (the payload source)
      links.parquet            index, name, count
      pairs.parquet            book, link (int32): the training pairs, file order
      held_out_pairs.npy       int32 (H, 2): the validation positives (H = 0 without a split)
      book_vectors.npy         L2-normalised float32 (n_books, dim)
      link_vectors.npy         L2-normalised float32 (n_links, dim)
      score.onnx               book_idx[N], link_idx[N] -> probability[N]
      fold_in.onnx             link_idx[K, L], mask[K, L] -> vector[K, dim]
      book_embeddings_raw.npy  float32 tables before normalisation (optional: warm starts,
      link_embeddings_raw.npy  ``bookvec vectors --raw``)
      weights.pt               raw tables and dense layer (optional: resuming)
      book_titles.sqlite       title keys of the books and links (``bookvec.titlekeys``:
      link_titles.sqlite       a loose title in one lookup; optional)
    models/CURRENT             one line: the model_id of the current bundle

Format 2 makes ``pairs.parquet`` and ``held_out_pairs.npy`` required, so nothing downstream
needs the corpus file or torch; a format-1 bundle is refused with a BundleFormatError telling
to retrain. A bundle is built in a hidden temporary directory beside its final place and renamed
into place only when complete; CURRENT is replaced atomically. An interrupted run never leaves a
half bundle where a good one was. No torch here: the runtime and the indexer read this.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bookvec import settings
from bookvec.errors import BundleError, DataNotFoundError
from bookvec.model.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    RETRAIN,
    CorpusInfo,
    Counts,
    FileEntry,
    Manifest,
    manifest_of,
    read_manifest,
)
from bookvec.outfiles import fsync_dir, write_atomic
from bookvec.outfiles import sha256_file as sha256_of

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FORMAT_VERSION", "MANIFEST", "Bundle", "BundleWriter", "Counts", "CorpusInfo", "FileEntry",
    "Manifest", "fsync_dir", "manifest_of", "open_bundle", "read_manifest", "sha256_of",
]  # fmt: skip

# The bundle's file names, defined here only (and MANIFEST in bookvec.model.manifest).
CURRENT = "CURRENT"
BOOKS = "books.parquet"
LINKS = "links.parquet"
PAIRS = "pairs.parquet"
HELD_OUT_PAIRS = "held_out_pairs.npy"
BOOK_VECTORS = "book_vectors.npy"
LINK_VECTORS = "link_vectors.npy"
SCORE_GRAPH = "score.onnx"
FOLD_IN_GRAPH = "fold_in.onnx"
RAW_BOOK_TABLE = "book_embeddings_raw.npy"
RAW_LINK_TABLE = "link_embeddings_raw.npy"
WEIGHTS = "weights.pt"
BOOK_TITLE_KEYS = "book_titles.sqlite"  # bookvec.titlekeys indexes: a loose title in one lookup
LINK_TITLE_KEYS = "link_titles.sqlite"
TITLE_KEYS = {"book": BOOK_TITLE_KEYS, "link": LINK_TITLE_KEYS}
REQUIRED_FILES = (
    BOOKS,
    LINKS,
    PAIRS,
    HELD_OUT_PAIRS,
    BOOK_VECTORS,
    LINK_VECTORS,
    SCORE_GRAPH,
    FOLD_IN_GRAPH,
)


# ---------------------------------------------------------------------------------------------
# A bundle on disk


@dataclass(frozen=True)
class Bundle:
    """A model bundle on disk. Tables and vectors are loaded on first use."""

    path: Path
    manifest: Manifest = field(repr=False)

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def dim(self) -> int:
        return self.manifest.counts.dim

    @property
    def n_books(self) -> int:
        return self.manifest.counts.books

    @property
    def n_links(self) -> int:
        return self.manifest.counts.links

    @property
    def synthetic(self) -> bool:
        return self.manifest.corpus.synthetic

    def file(self, name: str) -> Path:
        return self.path / name

    @cached_property
    def books(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.file(BOOKS))

    @cached_property
    def links(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.file(LINKS))

    @cached_property
    def pairs(self) -> np.ndarray:
        """The (book index, link index) pairs trained on, int32 (P, 2), file order."""
        import polars as pl

        frame = pl.read_parquet(self.file(PAIRS), columns=["book", "link"])
        return frame.to_numpy().astype(np.int32, copy=False).reshape(-1, 2)

    @cached_property
    def held_out_pairs(self) -> np.ndarray:
        """The validation positives training held out, int32 (H, 2); H = 0 without a split."""
        return np.load(self.file(HELD_OUT_PAIRS)).astype(np.int32, copy=False).reshape(-1, 2)

    @cached_property
    def book_vectors(self) -> np.ndarray:
        return np.load(self.file(BOOK_VECTORS), mmap_mode="r")

    @cached_property
    def link_vectors(self) -> np.ndarray:
        return np.load(self.file(LINK_VECTORS), mmap_mode="r")

    @cached_property
    def book_titles(self) -> list[str]:
        return self.books.get_column("title").to_list()

    @cached_property
    def book_index(self) -> dict[str, int]:
        return {title: i for i, title in enumerate(self.book_titles)}

    @cached_property
    def link_names(self) -> list[str]:
        return self.links.get_column("name").to_list()

    @cached_property
    def link_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.link_names)}

    def verify(self, names: tuple[str, ...] | None = None) -> None:
        """Check the files' sha256 against the manifest; raise BundleError on any mismatch."""
        recorded = self.manifest.files
        for name in names or tuple(recorded):
            if name not in recorded:
                raise BundleError(f"bundle {self.path}: {name} is not listed in its manifest")
            path = self.file(name)
            if not path.is_file():
                raise BundleError(f"bundle {self.path}: {name} is missing", hint=RETRAIN)
            if sha256_of(path) != recorded[name].sha256:
                raise BundleError(
                    f"bundle {self.path}: {name} does not match the hash in its manifest",
                    hint="the file was changed or damaged; train again with `bookvec train`",
                )


def check_files(path: Path, manifest: Manifest) -> None:
    """Cheap integrity check for every open: each required file is listed, each listed file is
    there with its recorded size."""
    for name in REQUIRED_FILES:
        if name not in manifest.files:
            raise BundleError(f"bundle {path}: {name} is not listed in its manifest", hint=RETRAIN)
    for name, meta in manifest.files.items():
        file_path = path / name
        try:
            size = file_path.stat().st_size
        except FileNotFoundError:
            raise BundleError(f"bundle {path}: {name} is missing", hint=RETRAIN) from None
        if size != meta.size:
            raise BundleError(
                f"bundle {path}: {name} has {size} bytes, its manifest says {meta.size}",
                hint="the file was changed or damaged; train again with `bookvec train`",
            )


def current_model_id(models_dir: Path | None = None) -> str | None:
    pointer = (models_dir or settings.models_dir()) / CURRENT
    try:
        value = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (IsADirectoryError, ValueError) as exc:  # a directory, not UTF-8 (other OSErrors:
        # a file where BOOKVEC_HOME goes, no permission: the CLI says those in its own words)
        raise BundleError(
            f"{pointer} is unreadable ({exc.strerror if isinstance(exc, OSError) else exc})",
            hint="write the id of a model under models/ in it (see `ls` there), or train again",
        ) from None
    if len(value) > 200 or any(ord(c) < 32 for c in value):
        raise BundleError(
            f"{pointer} holds no model id (garbage: {len(value)} characters)",
            hint="write the id of a model under models/ in it (see `ls` there), or train again",
        )
    if value and not settings.NAME_PATTERN.fullmatch(value):  # CURRENT names an id, never a path
        raise BundleError(
            f"{pointer} holds no model id ({value!r} is not one: {settings.NAME_RULE})",
            hint="write the id of a model under models/ in it (see `ls` there), or train again",
        )
    return value or None


def open_bundle(ref: str | Path | None = None, *, models_dir: Path | None = None) -> Bundle:
    """Open a bundle by path, by model id, or (ref None) the one BOOKVEC_MODEL or CURRENT names."""
    models_dir = models_dir or settings.models_dir()
    if ref is None:
        ref = os.environ.get(settings.ENV_MODEL) or current_model_id(models_dir)
        if ref is None:
            raise DataNotFoundError(
                f"no trained model under {models_dir}",
                hint="run `bookvec train` (or `bookvec quickstart`) first",
            )
    if isinstance(ref, Path) or settings.looks_like_path(str(ref)):
        path = Path(ref).expanduser()  # a directory, named as one
    else:  # a model id: looked up under models/ only, never relative to the working directory
        path = models_dir / settings.check_model_id(str(ref))
    if not path.is_dir():
        raise DataNotFoundError(
            f"no model bundle {str(ref)!r} (looked in {path})",
            hint="pass a bundle directory or a model id from `bookvec info`",
        )
    manifest = read_manifest(path)
    check_files(path, manifest)
    return Bundle(path=path, manifest=manifest)


# ---------------------------------------------------------------------------------------------
# Writing a bundle


def new_model_id() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{os.urandom(3).hex()}"


class BundleWriter:
    """Build a bundle in a temporary directory; ``commit`` makes it visible atomically.

    with BundleWriter(models_dir) as writer:
        write files into writer.path ...
        bundle = writer.commit({"counts": ..., "config": ..., ...})
    Leaving the block without commit (an exception, Ctrl-C) removes the temporary directory.
    """

    def __init__(self, models_dir: Path | None = None, model_id: str | None = None) -> None:
        self.models_dir = models_dir or settings.models_dir()
        self.model_id = model_id or new_model_id()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".tmp-{self.model_id}-", dir=self.models_dir))
        self.committed: Bundle | None = None

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed is None:
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, fields: Mapping[str, Any], *, make_current: bool = True) -> Bundle:
        """Hash the files, write the manifest (``fields`` are its other fields, as in
        ``Manifest.to_dict()``: counts, config, corpus, ...) and rename the bundle into place."""
        missing = [name for name in REQUIRED_FILES if not (self.path / name).is_file()]
        if missing:
            raise BundleError(f"bundle incomplete, missing: {', '.join(missing)}")
        files = {}
        for entry in sorted(self.path.iterdir()):
            if entry.is_file() and entry.name != MANIFEST:
                files[entry.name] = {"sha256": sha256_of(entry), "size": entry.stat().st_size}
        raw = {
            **fields,
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "files": files,
        }
        manifest = Manifest.from_dict(raw, where=f"the manifest of {self.model_id}")
        text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True)
        write_atomic(self.path / MANIFEST, text)
        fsync_dir(self.path)
        final = self.models_dir / self.model_id
        os.replace(self.path, final)
        fsync_dir(self.models_dir)
        if make_current:
            set_current(self.model_id, self.models_dir)
        self.committed = Bundle(path=final, manifest=manifest)
        return self.committed


def set_current(model_id: str, models_dir: Path | None = None) -> None:
    models_dir = models_dir or settings.models_dir()
    write_atomic(models_dir / CURRENT, model_id + "\n")
    fsync_dir(models_dir)
