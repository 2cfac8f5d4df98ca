"""The shapes the store speaks, and the one interface both backends implement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bookvec.errors import ConfigError

# Called with the number of points just written (an increment, like tqdm.update / rich advance).
Progress = Callable[[int], None]

# Payload fields with a payload index, created before any bulk load.
KEYWORD_FIELDS = ("title", "genres", "author", "authors", "country")
INTEGER_FIELDS = ("year",)


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


@dataclass(frozen=True)
class UpsertReport:
    added: int
    updated: int
    unchanged: int

    @property
    def written(self) -> int:
        return self.added + self.updated


@dataclass(frozen=True)
class CollectionInfo:
    name: str  # server: the physical collection behind the alias; edge: the collection name
    backend: str  # "edge" | "server"
    model_version: str | None
    vector_size: int
    points: int
    location: str  # edge: the live generation's directory; server: the URL or ":memory:"


class BookStore(Protocol):
    backend: str

    def info(self) -> CollectionInfo | None: ...

    def ensure_collection(
        self,
        *,
        vector_size: int,
        model_version: str,
        shards: int | None = None,
        replicas: int | None = None,
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
    ) -> int: ...

    def upsert(
        self, points: Iterable[BookPoint], *, progress: Progress | None = None
    ) -> UpsertReport: ...

    def search(
        self,
        vector: Sequence[float],
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        exclude_titles: Iterable[str] = (),
    ) -> list[Hit]: ...

    def search_like(
        self, title: str, *, limit: int = 10, filter: BookFilter | None = None
    ) -> list[Hit]: ...

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
    ) -> list[Hit]: ...

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]: ...

    def count(self, filter: BookFilter | None = None) -> int: ...

    def delete(self, titles: Iterable[str]) -> int: ...

    def titles(self) -> list[str]: ...

    def close(self) -> None: ...
