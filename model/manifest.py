"""``manifest.json`` of a model bundle, typed: what training recorded, checked on every open.

A manifest of another format version is refused with a BundleFormatError (an older one: train
again). No torch, no polars: the runtime, the indexer and every command read this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookvec import settings
from bookvec.errors import BundleError, BundleFormatError

if TYPE_CHECKING:
    from bookvec.model.corpus.prepare import CleaningConfig
    from bookvec.model.training.config import TrainConfig

FORMAT_VERSION = 2  # 2: pairs.parquet and held_out_pairs.npy required
MANIFEST = "manifest.json"
RETRAIN = "train again with `bookvec train`"


@dataclass(frozen=True)
class Counts:
    books: int
    links: int
    pairs: int
    dim: int


@dataclass(frozen=True)
class CorpusInfo:
    path: str | None = None  # the corpus file trained on, resolved
    sha256: str | None = None
    synthetic: bool = False


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``, typed. ``config`` is the resolved ``TrainConfig.to_dict()`` (the
    batch size and patience used), ``config_requested`` what was asked for; ``metrics`` holds
    the trainer's numbers and ``metrics["evaluation"]``; ``warm_start`` the parent and changes
    of a warm-started model (None for a cold one)."""

    model_id: str
    counts: Counts
    files: Mapping[str, FileEntry]
    format_version: int = FORMAT_VERSION
    created: str | None = None
    corpus: CorpusInfo = field(default_factory=CorpusInfo)
    config: Mapping[str, Any] = field(default_factory=dict)
    config_requested: Mapping[str, Any] = field(default_factory=dict)
    cleaning: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    warm_start: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["history"] = list(record["history"])
        if record["warm_start"] is None:
            del record["warm_start"]
        return record

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = MANIFEST) -> Manifest:
        """The manifest in ``raw`` (parsed JSON); BundleError naming the field that is wrong,
        BundleFormatError for another format version."""
        if not isinstance(raw, dict):
            raise _malformed(where, f"a JSON {type(raw).__name__}, not an object")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise _format_error(where, version)
        model_id = raw.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise _malformed(where, "no model_id string")
        counts = _object(raw, "counts", where, required=True)
        for key in ("books", "links", "pairs", "dim"):
            value = counts.get(key)
            if type(value) is not int or value < (1 if key == "dim" else 0):
                raise _malformed(where, f"counts.{key} is {value!r}, not a count")
        files = {}
        for name, meta in _object(raw, "files", where, required=True).items():
            if not (
                isinstance(meta, dict)
                and isinstance(meta.get("sha256"), str)
                and type(meta.get("size")) is int
            ):
                raise _malformed(where, f"files.{name} lacks a sha256 string or a size")
            files[name] = FileEntry(sha256=meta["sha256"], size=meta["size"])
        corpus = _object(raw, "corpus", where)
        for key in ("path", "sha256"):
            if corpus.get(key) is not None and not isinstance(corpus[key], str):
                raise _malformed(where, f"corpus.{key} is {corpus[key]!r}, not a string")
        history = raw.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise _malformed(where, "history is not a list of objects")
        created = raw.get("created")
        if created is not None and not isinstance(created, str):
            raise _malformed(where, f"created is {created!r}, not a string")
        warm_start = raw.get("warm_start")
        if warm_start is not None and not isinstance(warm_start, dict):
            raise _malformed(where, "warm_start is not an object")
        return cls(
            model_id=model_id,
            counts=Counts(**{k: counts[k] for k in ("books", "links", "pairs", "dim")}),
            files=files,
            format_version=version,
            created=created,
            corpus=CorpusInfo(
                path=corpus.get("path"),
                sha256=corpus.get("sha256"),
                synthetic=bool(corpus.get("synthetic", False)),
            ),
            config=_object(raw, "config", where),
            config_requested=_object(raw, "config_requested", where),
            cleaning=_object(raw, "cleaning", where),
            metrics=_object(raw, "metrics", where),
            history=tuple(history),
            versions=_object(raw, "versions", where),
            warm_start=warm_start,
        )

    def train_config(self, *, requested: bool = False) -> TrainConfig:
        """The training config (resolved, or as requested) as a TrainConfig."""
        from bookvec.model.training.config import TrainConfig

        return TrainConfig.from_dict(dict(self.config_requested if requested else self.config))

    def cleaning_config(self) -> CleaningConfig:
        """The link cleaning the model was trained with (new books are cleaned the same way)."""
        from bookvec.model.corpus.prepare import CleaningConfig

        return CleaningConfig.from_dict(dict(self.cleaning))


def _object(raw: dict, key: str, where: str, *, required: bool = False) -> dict[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _malformed(where, f"no {key} object" if value is None else f"{key} is not an object")
    return value


def _malformed(where: str, problem: str) -> BundleError:
    return BundleError(f"{where}: malformed manifest ({problem})", hint=RETRAIN)


def _format_error(where: str, version: object) -> BundleFormatError:
    if type(version) is int and version < FORMAT_VERSION:
        message = (
            f"{where}: bundle format {version} is an older bookvec's (this one reads format "
            f"{FORMAT_VERSION}, which stores the training and held-out pairs)"
        )
        return BundleFormatError(message, version=version, hint=RETRAIN)
    return BundleFormatError(
        f"{where}: bundle format {version!r}, this bookvec reads format {FORMAT_VERSION}",
        version=version,
        hint="train again with this version of bookvec, or upgrade bookvec",
    )


def read_manifest(path: Path) -> Manifest:
    """The manifest of the bundle directory ``path``; BundleError when it is absent, unreadable,
    malformed or of another format."""
    manifest_path = path / MANIFEST
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(
            f"{path} is not a model bundle (no {MANIFEST})",
            hint="train one with `bookvec train`",
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, huge integers
        raise BundleError(
            f"{manifest_path}: unreadable manifest ({str(exc).split(';')[0]})", hint=RETRAIN
        ) from None
    if isinstance(raw, dict) and raw.get("format_version") != FORMAT_VERSION:
        raise _format_error(str(path), raw.get("format_version"))
    return Manifest.from_dict(raw, where=str(manifest_path))


def manifest_of(model_id: str | None, models_dir: Path | None = None) -> Manifest | None:
    """The manifest of a model id if one is readable on this machine (for labels), else None."""
    if not model_id or not settings.NAME_PATTERN.fullmatch(model_id):
        return None
    try:
        return read_manifest((models_dir or settings.models_dir()) / model_id)
    except BundleError:
        return None
