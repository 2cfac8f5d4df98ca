"""What the library returns: small frozen dataclasses. ``to_dict()`` is exactly the record the
CLI prints with --json (same names, same values), so the CLI and the HTTP service share one
JSON shape by construction. Results that are lists (hits, links, scores) iterate over their
items and give the CLI's JSON array with ``records()``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


def _score(value: float) -> float:
    return round(float(value), 6)


@dataclass(frozen=True)
class Neighbour:
    """A book near a query: its cosine (or fused) score and its payload's main fields."""

    title: str
    score: float
    genres: tuple[str, ...] = ()
    author: str | None = None
    country: str | None = None
    year: int | None = None
    corpus: str | None = None  # "synthetic" when the model was trained on synthetic data

    @classmethod
    def from_payload(
        cls, title: str, score: float, payload: Mapping[str, Any], *, synthetic: bool = False
    ):
        return cls(
            title=title,
            score=_score(score),
            genres=tuple(payload.get("genres") or ()),
            author=payload.get("author"),
            country=payload.get("country"),
            year=payload.get("year"),
            corpus="synthetic" if synthetic else None,
        )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "title": self.title,
            "score": self.score,
            "genres": list(self.genres),
            "author": self.author,
            "country": self.country,
            "year": self.year,
        }
        if self.corpus is not None:
            record["corpus"] = self.corpus
        return record


class Hit(Neighbour):
    """A book found in the store (`bookvec search`): the same fields as a Neighbour."""


class _Rows:
    """A result holding a tuple of rows: iterate, index and count them; records() is the
    CLI's --json array."""

    def _rows(self) -> tuple:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())

    def __getitem__(self, i: int):
        return self._rows()[i]

    def records(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self._rows()]


@dataclass(frozen=True)
class SearchResult(_Rows):
    """`bookvec search`: the hits, best first, and what the query was resolved to."""

    hits: tuple[Hit, ...]
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    link: str | None = None  # the page a --link query was resolved to
    mode: str = "dense"
    diverse: bool = False
    filters: Mapping[str, Any] = field(default_factory=dict)
    synthetic: bool = False

    def _rows(self) -> tuple:
        return self.hits

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.records(),
            "positive": list(self.positive),
            "negative": list(self.negative),
            "link": self.link,
            "mode": self.mode,
            "diverse": self.diverse,
            "filters": dict(self.filters),
            "synthetic": self.synthetic,
        }


@dataclass(frozen=True)
class LinkScore:
    """One page of `bookvec links`: the probability, whether the article links there, and how
    many books link to the page."""

    title: str
    score: float
    observed: bool
    books: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "score": self.score,
            "observed": self.observed,
            "books": self.books,
        }


@dataclass(frozen=True)
class BookLinks(_Rows):
    """`bookvec links BOOK`: the pages the model predicts the book links to, best first."""

    title: str
    links: tuple[LinkScore, ...]
    observed: int = 0  # how many of the book's own links the model knows
    upserted: bool = False

    def _rows(self) -> tuple:
        return self.links

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "upserted": self.upserted,
            "observed": self.observed,
            "links": self.records(),
        }


@dataclass(frozen=True)
class LinkHit:
    """A page near a page (`bookvec similar-links`)."""

    title: str
    score: float
    books: int

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "score": self.score, "books": self.books}


@dataclass(frozen=True)
class Contribution:
    link: str
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {"link": self.link, "contribution": self.contribution}


@dataclass(frozen=True)
class Explanation:
    """`bookvec explain A B`. ``a_links``/``b_links`` (the pages each article links to) and
    ``cosines`` (page -> (cos A, cos B) for the pages listed) are for display, not JSON."""

    a: str
    b: str
    similarity: float
    shared_links: tuple[Contribution, ...]
    pulling_links: tuple[Contribution, ...]
    a_upserted: bool = False
    b_upserted: bool = False
    a_links: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    b_links: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    cosines: Mapping[str, tuple[float, float]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "a": self.a,
            "b": self.b,
            "similarity": self.similarity,
            "shared_links": [c.to_dict() for c in self.shared_links],
            "pulling_links": [c.to_dict() for c in self.pulling_links],
        }
        if self.a_upserted:
            record["a_upserted"] = True
        if self.b_upserted:
            record["b_upserted"] = True
        return record


@dataclass(frozen=True)
class PairScore:
    """P(the book's article links to the page), `bookvec score`."""

    book: str
    link: str
    probability: float
    upserted: bool = False

    @classmethod
    def of(cls, book: str, link: str, probability: float, upserted: bool) -> PairScore:
        """The same as PairScore(...), at 10,000 a batch: the frozen __init__ sets each
        field through object.__setattr__."""
        score = object.__new__(cls)
        score.__dict__.update(book=book, link=link, probability=probability, upserted=upserted)
        return score

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "book": self.book,
            "link": self.link,
            "probability": self.probability,
        }
        if self.upserted:
            record["upserted"] = True
        return record


@dataclass(frozen=True)
class ScoreResult(_Rows):
    """Scored pairs in input order, and the rows left out as (line, reason) when invalid rows
    were skipped."""

    scores: tuple[PairScore, ...]
    rejects: tuple[tuple[int, str], ...] = ()

    def _rows(self) -> tuple:
        return self.scores

    @property
    def probabilities(self) -> list[float]:
        return [s.probability for s in self.scores]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.records(),
            "rejects": [{"line": line, "reason": reason} for line, reason in self.rejects],
        }


@dataclass(frozen=True)
class UpsertReport:
    """`bookvec upsert --json`: counts, and the first rejects (``rejected`` counts them all)."""

    added: int
    updated: int
    unchanged: int
    rejected: int = 0
    rejects: tuple[Mapping[str, Any], ...] = ()
    dry_run: bool = False

    @property
    def stored(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejects": [dict(r) for r in self.rejects],
            "rejects_listed": len(self.rejects),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class DeleteReport:
    """`bookvec delete --json`."""

    deleted: int
    titles: tuple[str, ...]
    remaining: int
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "titles": list(self.titles),
            "remaining": self.remaining,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class BookRecord:
    """One book's stored record (its payload), trained or upserted."""

    title: str
    genres: tuple[str, ...] = ()
    author: str | None = None
    authors: tuple[str, ...] = ()
    country: str | None = None
    language: str | None = None
    publisher: str | None = None
    year: int | None = None
    source: str | None = None  # "bundle" (trained) or "upsert"
    links: tuple[str, ...] = ()  # an upserted book's links, as given (cleaned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "genres": list(self.genres),
            "author": self.author,
            "authors": list(self.authors),
            "country": self.country,
            "language": self.language,
            "publisher": self.publisher,
            "year": self.year,
            "source": self.source,
            "links": list(self.links),
        }


@dataclass(frozen=True)
class Info:
    """`bookvec info --json`: where state lives, the model, the store (each section holds an
    "error" instead when it cannot be read)."""

    home: str
    model: Mapping[str, Any]
    store: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"home": self.home, "model": dict(self.model), "store": dict(self.store)}


@dataclass(frozen=True)
class Record:
    """A result whose JSON is a plain mapping (index and train reports): ``data`` is it."""

    data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


class IndexReport(Record):
    """`bookvec index --json`: what was written, where, how (``incremental`` after a warm
    start: added, moved, changed, unchanged, removed)."""


class TrainSummary(Record):
    """`bookvec train --json`: the new model, its counts and metrics."""
