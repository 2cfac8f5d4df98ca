"""The shapes the store speaks, and the one interface both backends implement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bookvec.errors import ConfigError

# Called with the number of points just written (an increment, like tqdm.update / rich advance).
Progress = Callable[[int], None]

# Payload fields with a payload index, created before any bulk load: exactly the fields filters
# use (the author filter matches `authors`, so co-authors count). No index on `title` or
# `author`: nothing filters by them, and on Edge each index costs ~3 us per point written.
# author_keys / country_key: the normalised forms the filters match (indexer/keys.py); authors
# and country stay indexed for stores written before the keys existed (filters.py).
KEYWORD_FIELDS = ("genres", "authors", "country", "author_keys", "country_key")
INTEGER_FIELDS = ("year",)

QUANTIZATIONS = ("none", "int8")
# hnsw_ef at query time, chosen from the recall curve at 300k books (README, `benchmarks/search.py
# --recall-curve`); HNSW itself exists only above Edge's indexing threshold (~51k 50-d books).
DEFAULT_HNSW_EF = 128
# The recall@10 (against exact search) the embedded store's hnsw_ef is chosen to reach once its
# graph exists, unless an hnsw_ef is given (indexer/calibrate.py).
DEFAULT_RECALL_TARGET = 0.99
CALIBRATION = "calibration"  # the key of its record in a generation's index metadata
# How a filtered search that would walk the graph is done: "plain" (the graph walk, filtered
# points skipped), "acorn" (Qdrant's ACORN: the neighbours of filtered-out neighbours tried too,
# for filters keeping at most ACORN_MAX_SELECTIVITY of the points, Qdrant's default) or "exact"
# (every matching point scored, through the payload index). A genre filter the query book is not
# in leaves its graph neighbourhood filtered out: the plain walk's recall@10 there was 0.971 at
# 370k books and 0.58 at 3.7M. The calibration times each and keeps the fastest that reaches
# its recall target (indexer/calibrate.py; README, "Scale settings").
FILTERED_SEARCHES = ("plain", "acorn", "exact")
DEFAULT_FILTERED_SEARCH = "acorn"  # where nothing was measured (hnsw_ef given, a server)
ACORN_MAX_SELECTIVITY = 0.4


@dataclass(frozen=True)
class IndexOptions:
    """How the vector index is built (m, ef_construct, quantization) and searched (hnsw_ef).
    Fixed when a collection is created and stored with it; changing them needs a reindex."""

    hnsw_m: int = 16  # Qdrant's defaults for m and ef_construct
    hnsw_ef_construct: int = 100
    hnsw_ef: int = DEFAULT_HNSW_EF
    quantization: str = "none"  # "int8": scalar quantization, rescored with the originals
    # The `links` sparse vector beside the dense one: "none" (dense only), "dot" (the stored
    # weights as they are) or "idf" (the store's IDF modifier weighs the query side);
    # sparse_weighting names how the points' weights were made (bookvec.sparse), so that
    # upsert makes new books' the same way.
    sparse: str = "none"
    sparse_weighting: str | None = None
    # Embedded store: once a write builds the HNSW graph, hnsw_ef becomes the smallest value
    # whose measured recall@10 against exact search reaches this (indexer/calibrate.py);
    # None: hnsw_ef as given. A server builds its graph in the background: as given there.
    # Kept in the generation's metadata with the calibration, not in to_dict.
    recall_target: float | None = None
    # How filtered searches that would walk the graph are done (FILTERED_SEARCHES); chosen with
    # hnsw_ef by the calibration and kept with it, like recall_target.
    filtered_search: str = DEFAULT_FILTERED_SEARCH

    def __post_init__(self) -> None:
        if self.filtered_search not in FILTERED_SEARCHES:
            raise ConfigError(
                f"unknown filtered search {self.filtered_search!r}",
                hint="use " + ", ".join(FILTERED_SEARCHES),
            )
        if not 4 <= self.hnsw_m <= 128:
            raise ConfigError(f"--hnsw-m must be 4..128, not {self.hnsw_m}", hint="16 is usual")
        if not 4 <= self.hnsw_ef_construct <= 4096:
            raise ConfigError(f"hnsw ef_construct must be 4..4096, not {self.hnsw_ef_construct}")
        if not 1 <= self.hnsw_ef <= 4096:
            raise ConfigError(
                f"--hnsw-ef must be 1..4096, not {self.hnsw_ef}", hint=f"{DEFAULT_HNSW_EF} is usual"
            )
        if self.recall_target is not None and not 0.5 <= self.recall_target <= 1.0:
            raise ConfigError(f"recall target must be 0.5..1.0, not {self.recall_target}")
        if self.sparse not in ("none", "dot", "idf"):
            raise ConfigError(f"unknown sparse scoring {self.sparse!r}", hint="none, dot or idf")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(
                f"unknown quantization {self.quantization!r}",
                hint="use " + " or ".join(QUANTIZATIONS),
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "hnsw_ef": self.hnsw_ef,
            "quantization": self.quantization,
            "sparse": self.sparse,
            "sparse_weighting": self.sparse_weighting,
        }

    @property
    def has_sparse(self) -> bool:
        return self.sparse != "none"

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> IndexOptions:
        """From stored metadata; keys a collection made before they existed get the defaults."""
        raw = raw or {}
        known = {k: raw[k] for k in cls().to_dict() if raw.get(k) is not None}
        record = raw.get(CALIBRATION)
        if isinstance(record, dict) and record.get("target") is not None:
            known["recall_target"] = record["target"]
        if isinstance(record, dict) and record.get("filtered_search") in FILTERED_SEARCHES:
            known["filtered_search"] = record["filtered_search"]
        return cls(**known)


@dataclass(frozen=True)
class BookFilter:
    """Conditions on the payload; all given ones must hold. Years are inclusive."""

    genres_any: tuple[str, ...] = ()
    genres_all: tuple[str, ...] = ()
    author: str | None = None  # matches any of the book's authors
    country: str | None = None
    year_from: int | None = None
    year_to: int | None = None

    def __post_init__(self) -> None:
        for name in ("genres_any", "genres_all"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if (
            self.year_from is not None
            and self.year_to is not None
            and self.year_from > self.year_to
        ):
            raise ConfigError(
                f"year range {self.year_from}..{self.year_to} is empty",
                hint="give the earlier year first",
            )

    @property
    def is_empty(self) -> bool:
        return not (
            self.genres_any
            or self.genres_all
            or self.author
            or self.country
            or self.year_from is not None
            or self.year_to is not None
        )


@dataclass(frozen=True)
class BookPoint:
    title: str
    vector: Sequence[float]
    payload: dict[str, Any] = field(default_factory=dict)
    # The book's links as a sparse vector (indices, values): bookvec.sparse makes it.
    sparse: tuple[Sequence[int], Sequence[float]] | None = None


@dataclass(frozen=True)
class Hit:
    title: str
    score: float
    payload: dict[str, Any]
    id: str


@dataclass(frozen=True)
class Record:
    title: str
    id: str
    payload: dict[str, Any]
    vector: list[float] | None = None  # unit length (the store normalises for cosine)
    sparse: tuple[list[int], list[float]] | None = None  # with_vectors, when it has one


@dataclass(frozen=True)
class UpsertReport:
    added: int
    updated: int
    unchanged: int

    @property
    def written(self) -> int:
        return self.added + self.updated

    def __add__(self, other: UpsertReport) -> UpsertReport:
        return UpsertReport(
            self.added + other.added, self.updated + other.updated, self.unchanged + other.unchanged
        )


@dataclass(frozen=True)
class CollectionInfo:
    name: str  # server: the physical collection behind the alias; edge: the collection name
    backend: str  # "edge" | "server"
    model_version: str | None
    vector_size: int
    points: int | None  # None: not counted (info(count=False), for a query's settings)
    location: str  # edge: the live generation's directory; server: the URL or ":memory:"
    index: IndexOptions = field(default_factory=IndexOptions)
    indexed_vectors: int | None = None  # in the HNSW graph (0: every search is exact)
    shards: int = 1
    replicas: int = 1
    # how hnsw_ef was chosen (calibrate.Calibration.to_dict()); None: as given
    calibration: dict[str, Any] | None = None


class BookStore(Protocol):
    backend: str

    def info(self, *, count: bool = True) -> CollectionInfo | None: ...

    def ensure_collection(
        self,
        *,
        vector_size: int,
        model_version: str,
        shards: int | None = None,
        replicas: int | None = None,
        options: IndexOptions | None = None,
    ) -> None: ...

    def replace_all(
        self,
        points: Iterable[BookPoint],
        *,
        vector_size: int,
        model_version: str,
        progress: Progress | None = None,
        shards: int | None = None,
        replicas: int | None = None,
        options: IndexOptions | None = None,
    ) -> int: ...

    def upsert(
        self,
        points: Iterable[BookPoint],
        *,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> UpsertReport: ...

    def apply_changes(
        self,
        upserts: Iterable[BookPoint],
        deletes: Iterable[str],
        *,
        model_version: str,
        progress: Progress | None = None,
    ) -> None: ...

    def search(
        self,
        vector: Sequence[float],
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        exclude_titles: Iterable[str] = (),
        sparse: tuple[Sequence[int], Sequence[float]] | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]: ...

    def search_like(
        self,
        title: str,
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]: ...

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]: ...

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]: ...

    def count(self, filter: BookFilter | None = None) -> int: ...

    def delete(self, titles: Iterable[str]) -> int: ...

    def titles(self) -> list[str]: ...

    def upserted(self) -> list[Any]: ...  # catalogue.UpsertedBook, by title

    def exclusive(self) -> AbstractContextManager[None]: ...  # the writer lock, across calls

    def close(self) -> None: ...
