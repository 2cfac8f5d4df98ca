"""What the commands do, without the Typer layer: index a bundle, fold in and upsert new books,
resolve titles against the store. Composes the runtime and the indexer; never imports torch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bookvec import titles as title_lookup

PAYLOAD_FIELDS = ("genres", "author", "authors", "country", "language", "publisher", "year")


def content_hash(payload: dict[str, Any], links: Iterable[str] = ()) -> str:
    body = json.dumps({"payload": payload, "links": sorted(links)}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]


def payload_from_row(row: dict[str, Any], *, source: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"title": row["title"]}
    for name in PAYLOAD_FIELDS:
        value = row.get(name)
        if name in ("genres", "authors"):
            value = list(value or [])
        payload[name] = value
    payload["source"] = source
    return payload


def bundle_points(bundle) -> Iterator[Any]:
    """Every book of a bundle as a store point: its normalised vector and its payload."""
    from bookvec.indexer import BookPoint

    vectors = np.asarray(bundle.book_vectors, dtype=np.float32)
    for row, vector in zip(bundle.books.iter_rows(named=True), vectors, strict=True):
        payload = payload_from_row(row, source="bundle")
        payload["content_hash"] = content_hash({**payload, "model": bundle.model_id})
        yield BookPoint(title=row["title"], vector=vector, payload=payload)


def index_bundle(bundle, store, *, progress: Callable[[int], None] | None = None) -> int:
    """Replace the collection's contents with the bundle's books (atomic on both backends)."""
    return store.replace_all(
        bundle_points(bundle),
        vector_size=bundle.dim,
        model_version=bundle.model_id,
        progress=progress,
    )


def resolve_store_title(store, query: str, *, exact: bool = False) -> str:
    """A title as typed -> a title in the store (exact id lookup first, then the loose rules)."""
    if store.get([query]):
        return query
    return title_lookup.resolve(query, store.titles(), exact=exact)


# --- new books: fold-in through ONNX Runtime, then upsert ------------------------------------


@dataclass
class FoldInResult:
    points: list[Any] = field(default_factory=list)
    rejected: list[tuple[int | None, str | None, str]] = field(default_factory=list)


def fold_in_books(books: Iterable[Any], bundle, runtime) -> FoldInResult:
    """New books -> store points, their vectors folded in from the links the model knows."""
    from bookvec.indexer import BookPoint
    from bookvec.model.corpus import book_payload
    from bookvec.model.prepare import clean_link

    cleaning = bundle_cleaning(bundle)
    link_index = bundle.link_index
    result = FoldInResult()
    pending: list[tuple[Any, dict[str, Any], list[int], list[str]]] = []
    for book in books:
        names = [clean_link(link, cleaning) for link in book.links]
        known = [name for name in names if name is not None and name in link_index]
        if not known:
            result.rejected.append(
                (book.line, book.title, "none of its links is known to the model")
            )
            continue
        payload = book_payload(book)
        payload["source"] = "upsert"
        payload["content_hash"] = content_hash({**payload, "model": bundle.model_id}, known)
        pending.append((book, payload, [link_index[name] for name in known], known))
    if pending:
        vectors = runtime.fold_in([indices for _, _, indices, _ in pending])
        for (book, payload, _, _), vector in zip(pending, vectors, strict=True):
            result.points.append(BookPoint(title=book.title, vector=vector, payload=payload))
    return result


def bundle_cleaning(bundle):
    """The link cleaning the bundle was trained with (new books must be cleaned the same way)."""
    from bookvec.model.prepare import CleaningConfig

    return CleaningConfig.from_dict(bundle.manifest["cleaning"])


def resolve_bundle_book(bundle, query: str, *, exact: bool = False) -> int:
    if query in bundle.book_index:
        return bundle.book_index[query]
    return bundle.book_index[title_lookup.resolve(query, bundle.book_titles, exact=exact)]


def resolve_bundle_link(bundle, query: str, *, exact: bool = False) -> int:
    from bookvec.model.prepare import clean_link

    if query in bundle.link_index:
        return bundle.link_index[query]
    cleaning = bundle_cleaning(bundle)
    cleaned = clean_link(query, cleaning)
    if cleaned is not None and cleaned in bundle.link_index:
        return bundle.link_index[cleaned]
    name = title_lookup.resolve(query, bundle.link_names, exact=exact, what="link")
    return bundle.link_index[name]
