"""The model bundle: one directory that training writes and everything else only reads.

    models/<model_id>/
      manifest.json      format version, config, corpus, counts, metrics, versions, file hashes
      books.parquet      index, title, genres, author, ... (the payload source)
      links.parquet      index, name, count
      pairs.parquet      book, link (int32): the training pairs, file order (optional: older
                         bundles lack it; ``Bundle.pairs`` is None then)
      book_vectors.npy   L2-normalised float32 (n_books, dim)
      link_vectors.npy   L2-normalised float32 (n_links, dim)
      score.onnx         book_idx[N], link_idx[N] -> probability[N]
      fold_in.onnx       link_idx[K, L], mask[K, L] -> vector[K, dim]
      weights.pt         raw tables and dense layer (for resuming; optional)
    models/CURRENT       one line: the model_id of the current bundle

A bundle is built in a hidden temporary directory beside its final place and renamed into
place only when complete; CURRENT is replaced with ``os.replace``. An interrupted run never
leaves a half bundle where a good one was. No torch here: the runtime and the indexer read this.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bookvec import settings
from bookvec.errors import BundleError, DataNotFoundError

if TYPE_CHECKING:
    import polars as pl

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
REQUIRED_FILES = (
    "books.parquet",
    "links.parquet",
    "book_vectors.npy",
    "link_vectors.npy",
    "score.onnx",
    "fold_in.onnx",
)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A model bundle on disk. Tables and vectors are loaded on first use."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    @property
    def dim(self) -> int:
        return int(self.manifest["counts"]["dim"])

    @property
    def n_books(self) -> int:
        return int(self.manifest["counts"]["books"])

    @property
    def n_links(self) -> int:
        return int(self.manifest["counts"]["links"])

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("corpus", {}).get("synthetic", False))

    def file(self, name: str) -> Path:
        return self.path / name

    @cached_property
    def books(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.file("books.parquet"))

    @cached_property
    def links(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.file("links.parquet"))

    @cached_property
    def pairs(self) -> np.ndarray | None:
        """The (book index, link index) pairs trained on, int32 (P, 2); None if not stored."""
        import polars as pl

        path = self.file("pairs.parquet")
        if not path.is_file():
            return None
        frame = pl.read_parquet(path, columns=["book", "link"])
        return frame.to_numpy().astype(np.int32, copy=False).reshape(-1, 2)

    @cached_property
    def book_vectors(self) -> np.ndarray:
        return np.load(self.file("book_vectors.npy"), mmap_mode="r")

    @cached_property
    def link_vectors(self) -> np.ndarray:
        return np.load(self.file("link_vectors.npy"), mmap_mode="r")

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
        recorded = self.manifest.get("files", {})
        for name in names or tuple(recorded):
            if name not in recorded:
                raise BundleError(f"bundle {self.path}: {name} is not listed in its manifest")
            path = self.file(name)
            if not path.is_file():
                raise BundleError(
                    f"bundle {self.path}: {name} is missing",
                    hint="train again with `bookvec train`",
                )
            if sha256_of(path) != recorded[name]["sha256"]:
                raise BundleError(
                    f"bundle {self.path}: {name} does not match the hash in its manifest",
                    hint="the file was changed or damaged; train again with `bookvec train`",
                )


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(
            f"{path} is not a model bundle (no {MANIFEST})",
            hint="train one with `bookvec train`",
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, huge integers
        raise BundleError(
            f"{manifest_path}: unreadable manifest ({str(exc).split(';')[0]})",
            hint="train again with `bookvec train`",
        ) from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if isinstance(manifest, dict) and version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {version!r}, this bookvec reads format {FORMAT_VERSION}",
            hint="train again with this version of bookvec",
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise BundleError(
            f"{manifest_path}: malformed manifest ({problem})",
            hint="train again with `bookvec train`",
        )
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a manifest's shape (the fields every reader relies on), if anything."""
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__}, not an object"
    if not isinstance(manifest.get("model_id"), str) or not manifest["model_id"]:
        return "no model_id string"
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        return "no counts object"
    for key in ("books", "links", "dim"):
        value = counts.get(key)
        if type(value) is not int or value < (1 if key == "dim" else 0):
            return f"counts.{key} is {value!r}, not a count"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "no files object"
    for name, meta in files.items():
        if not (
            isinstance(meta, dict)
            and isinstance(meta.get("sha256"), str)
            and type(meta.get("size")) is int
        ):
            return f"files.{name} lacks a sha256 string or a size"
    return None


def check_files(path: Path, manifest: dict[str, Any]) -> None:
    """Cheap integrity check for every open: each file is there with its recorded size."""
    for name, meta in manifest.get("files", {}).items():
        file_path = path / name
        try:
            size = file_path.stat().st_size
        except FileNotFoundError:
            raise BundleError(
                f"bundle {path}: {name} is missing", hint="train again with `bookvec train`"
            ) from None
        if size != meta["size"]:
            raise BundleError(
                f"bundle {path}: {name} has {size} bytes, its manifest says {meta['size']}",
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
    manifest = _read_manifest(path)
    check_files(path, manifest)
    return Bundle(path=path, manifest=manifest)


def new_model_id() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{os.urandom(3).hex()}"


class BundleWriter:
    """Build a bundle in a temporary directory; ``commit`` makes it visible atomically.

    with BundleWriter(models_dir) as writer:
        write files into writer.path ...
        bundle = writer.commit(manifest)
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

    def commit(self, manifest: dict[str, Any], *, make_current: bool = True) -> Bundle:
        missing = [name for name in REQUIRED_FILES if not (self.path / name).is_file()]
        if missing:
            raise BundleError(f"bundle incomplete, missing: {', '.join(missing)}")
        files = {}
        for entry in sorted(self.path.iterdir()):
            if entry.is_file() and entry.name != MANIFEST:
                files[entry.name] = {"sha256": sha256_of(entry), "size": entry.stat().st_size}
        manifest = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "files": files,
        }
        _write_atomic(self.path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
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
    _write_atomic(models_dir / CURRENT, model_id + "\n")
    fsync_dir(models_dir)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (best effort: skipped where it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
