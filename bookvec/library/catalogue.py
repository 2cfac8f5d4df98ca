"""Upserted books as first-class books: folded in again under the model being indexed, written
back out as a corpus for the next training, and scored and exported like trained ones.

The catalogue itself (title, cleaned links, payload of every upserted book) lives with the
store (bookvec.indexer.catalogue); this module composes it with a bundle and the runtime.
Never imports torch."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookvec.indexer.catalogue import LINKS_FIELD, UPSERTED, UpsertedBook, encode_links
from bookvec.indexer.ids import UNHASHED_FIELDS

# Payload fields that are the store's own bookkeeping (hash, source, filter keys), not the book's.
_DERIVED = (*UNHASHED_FIELDS, LINKS_FIELD, "title")


def cleaned_links(links: Iterable[str], cleaning) -> list[str]:
    """The links as the model's cleaning leaves them, in order, repeats kept as the fold-in
    counts them (what the catalogue keeps: also the links this model does not know, for the
    next model)."""
    from bookvec.model.corpus.prepare import clean_link

    names = (clean_link(link, cleaning) for link in links)
    return [name for name in names if name is not None]


def upsert_payload(payload: dict[str, Any], links: list[str], known: list[str], model_id: str):
    """An upserted book's payload: the book's fields, its links, source and content hash.
    The same function for a first upsert and a reindex, so that upserting the same file
    again after `bookvec index` finds the books unchanged."""
    from bookvec.library.actions import content_hash

    body = {k: v for k, v in payload.items() if k not in _DERIVED}
    body["title"] = payload["title"]
    body["source"] = UPSERTED
    body[LINKS_FIELD] = encode_links(links)
    body["content_hash"] = content_hash({**body, "model": model_id}, known)
    return body


@dataclass
class Refolded:
    points: list[Any] = field(default_factory=list)  # BookPoint
    unplaced: list[UpsertedBook] = field(default_factory=list)  # no link this model knows


def refold(books: Iterable[UpsertedBook], bundle, runtime, weights=None) -> Refolded:
    """Upserted books -> store points under this bundle (the runtime's fold-in); with
    ``weights`` (actions.bundle_link_weights) their sparse vectors too."""
    from bookvec.indexer import BookPoint
    from bookvec.library.actions import bundle_cleaning

    cleaning = bundle_cleaning(bundle)
    link_index = bundle.link_index
    result = Refolded()
    pending: list[tuple[UpsertedBook, dict[str, Any], list[int]]] = []
    for book in books:
        links = cleaned_links(book.links, cleaning)
        known = [name for name in links if name in link_index]
        if not known:
            result.unplaced.append(book)
            continue
        payload = upsert_payload(
            {**book.payload, "title": book.title}, links, known, bundle.model_id
        )
        pending.append((book, payload, [link_index[name] for name in known]))
    if pending:
        vectors = runtime.fold_in([indices for _, _, indices in pending])
        for (book, payload, indices), vector in zip(pending, vectors, strict=True):
            sparse = weights.vector(indices) if weights is not None else None
            result.points.append(
                BookPoint(title=book.title, vector=vector, payload=payload, sparse=sparse)
            )
    return result


@dataclass
class Reindexed:
    points: int
    bundle_books: int
    upserted_books: int
    unplaced: list[str]
    unplaced_file: str | None = None


def gather(bundle, store, *, weights=None, runtime=None) -> tuple[Iterator[Any], int, Refolded]:
    """What a reindex writes: the points (every trained book, then every upserted book folded
    in again; an upserted title also in the bundle keeps its upserted version: the user's
    latest word on it), how many trained books they hold, and the upserted books refolded."""
    from bookvec.library.actions import bundle_points

    catalogue = store.upserted()
    refolded = Refolded()
    if catalogue:
        if runtime is None:
            from bookvec.model.runtime import Runtime

            runtime = Runtime(bundle.path)
        refolded = refold(catalogue, bundle, runtime, weights)
    taken = {point.title for point in refolded.points}
    kept = sum(1 for title in bundle.book_titles if title not in taken)

    def points() -> Iterator[Any]:
        yield from (p for p in bundle_points(bundle, weights) if p.title not in taken)
        yield from refolded.points

    return points(), kept, refolded


def reindex(
    bundle,
    store,
    *,
    runtime=None,
    progress: Callable[[int], None] | None = None,
    unplaced_dir: Path | None = None,
    **options: Any,
) -> Reindexed:
    """Rebuild the store from the bundle plus the catalogue (see `gather`). Books no link of
    this model places are written to a JSONL file `bookvec upsert` reads (under
    `unplaced_dir`), never silently dropped."""
    from bookvec.library.actions import bundle_link_weights

    index_options = options.get("options")
    weights = bundle_link_weights(bundle, getattr(index_options, "sparse_weighting", None))
    with store.exclusive():  # the catalogue read and the write under one lock
        points, kept, refolded = gather(bundle, store, weights=weights, runtime=runtime)
        count = store.replace_all(
            points,
            vector_size=bundle.dim,
            model_version=bundle.model_id,
            progress=progress,
            **options,
        )
    return finish(Reindexed(count, kept, len(refolded.points), []), refolded, bundle, unplaced_dir)


def finish(result: Reindexed, refolded: Refolded, bundle, unplaced_dir: Path | None) -> Reindexed:
    """Record (and save for `bookvec upsert`) the upserted books this model cannot place."""
    result.unplaced = [b.title for b in refolded.unplaced]
    if refolded.unplaced and unplaced_dir is not None:
        result.unplaced_file = str(write_books(refolded.unplaced, unplaced_dir, bundle.model_id))
    return result


def write_books(books: Iterable[UpsertedBook], directory: Path, model_id: str) -> Path:
    """Upserted books as JSONL that `bookvec upsert` reads (written whole, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"unplaced-{model_id}.jsonl"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for book in books:
            handle.write(json.dumps(jsonl_record(book), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def jsonl_record(book: UpsertedBook) -> dict[str, Any]:
    payload = book.payload
    record: dict[str, Any] = {"title": book.title, "links": list(book.links)}
    if payload.get("genres"):
        record["genres"] = list(payload["genres"])
    authors = payload.get("authors") or ([payload["author"]] if payload.get("author") else [])
    if authors:
        record["author"] = "; ".join(authors)
    for name in ("country", "language", "publisher", "year"):
        if payload.get(name) is not None:
            record[name] = payload[name]
    return record


def raw_books(books: Iterable[UpsertedBook]) -> Iterator[Any]:
    """The catalogue as corpus records (RawBook), for the next training to include:
    ``prepare_books(chain(read_books(corpus), raw_books(store.upserted())), cleaning)``."""
    from bookvec.model.corpus.read import RawBook

    for book in books:
        payload = book.payload
        infobox: dict[str, str] = {}
        authors = payload.get("authors") or ([payload["author"]] if payload.get("author") else [])
        if authors:
            infobox["author"] = "; ".join(authors)
        for name in ("country", "language", "publisher"):
            if payload.get(name):
                infobox[name] = str(payload[name])
        if payload.get("year") is not None:
            infobox["published"] = str(payload["year"])
        yield RawBook(
            title=book.title,
            infobox=infobox,
            links=list(book.links),
            genres=list(payload.get("genres") or []),
        )


# --- scoring an upserted book: its vector is in the store, not in the score graph's table ------


class VectorScorer:
    """The score graph's formula for a book vector outside its table: classification
    sigmoid(w * cos + b), regression (cos + 1) / 2, over the bundle's normalised link vectors
    (the table score.onnx bakes in). w and b are read back from score.onnx itself through ONNX
    Runtime (two pairs of book 0 with far-apart cosines), so they are the graph's own."""

    def __init__(self, bundle, runtime) -> None:
        import numpy as np

        self.links = np.asarray(bundle.link_vectors, dtype=np.float32)
        self.classification = runtime.objective == "classification"
        self.w, self.b = 0.0, 0.0
        if self.classification:
            book = np.asarray(bundle.book_vectors[0], dtype=np.float32)
            cos = self.links @ book
            lo, hi = int(np.argmin(cos)), int(np.argmax(cos))
            p = runtime.score(np.array([0, 0]), np.array([lo, hi])).astype(np.float64)
            logit = np.log(p) - np.log1p(-p)
            span = float(cos[hi] - cos[lo])
            self.w = float(logit[1] - logit[0]) / span if span > 1e-6 else 0.0
            self.b = float(logit[0]) - self.w * float(cos[lo])

    def score(self, vector, link_idx):
        import numpy as np

        from bookvec.model.linalg import normalise

        unit = normalise(vector, dtype=np.float64)
        cos = self.links[np.asarray(link_idx, dtype=np.int64)].astype(np.float64) @ unit
        if self.classification:
            return (1.0 / (1.0 + np.exp(-(self.w * cos + self.b)))).astype(np.float32)
        return ((cos + 1.0) * 0.5).astype(np.float32)


def find_upserted(query: str, *, exact: bool = False):
    """The store's record (with its vector) of an upserted book a title names, or None: for
    commands that take a title and read the bundle, when the bundle does not know it."""
    from bookvec import settings
    from bookvec.errors import BookvecError
    from bookvec.indexer import open_store
    from bookvec.indexer.catalogue import is_upserted
    from bookvec.library.actions import resolve_store_title

    try:
        store = open_store(
            settings.QdrantSettings.from_env(), path=settings.store_dir(), read_only=True
        )
    except BookvecError:
        return None
    try:
        if store.info() is None:
            return None
        title = resolve_store_title(store, query, exact=exact)
        record = store.get([title], with_vectors=True).get(title)
    except BookvecError:
        return None
    finally:
        store.close()
    return record if record is not None and is_upserted(record.payload) else None


def record_links(record, bundle) -> list[int]:
    """The link indices (of this bundle) an upserted book's catalogue entry names, distinct."""
    from bookvec.indexer.catalogue import book_from_payload

    book = book_from_payload(record.title, record.payload)
    index = bundle.link_index
    return sorted({index[name] for name in book.links if name in index})


def predicted_links_for_vector(bundle, runtime, record, *, limit: int, missing_only: bool):
    """actions.predicted_links for an upserted book (its stored vector)."""
    import numpy as np

    from bookvec.library.actions import ranked_links

    probability = VectorScorer(bundle, runtime).score(record.vector, np.arange(bundle.n_links))
    return ranked_links(bundle, probability, record_links(record, bundle), limit, missing_only)


# --- exports ---------------------------------------------------------------------------------


def store_upserted_vectors(bundle):
    """(records with vectors, reason) of the store's upserted books, when the store holds this
    bundle's vectors (another model's vectors are another space); ([], why) otherwise."""
    from bookvec import settings
    from bookvec.errors import BookvecError
    from bookvec.indexer import open_store

    try:
        store = open_store(
            settings.QdrantSettings.from_env(), path=settings.store_dir(), read_only=True
        )
    except BookvecError as exc:
        return [], str(exc)
    try:
        info = store.info()
        if info is None:
            return [], None
        titles = [book.title for book in store.upserted()]
        if not titles:  # nothing to leave out: no note
            return [], None
        if info.model_version != bundle.model_id:
            return [], f"the store holds vectors of model {info.model_version}"
        found = store.get(titles, with_vectors=True)
        return [found[t] for t in titles if t in found], None
    except BookvecError as exc:
        return [], str(exc)
    finally:
        store.close()


def with_upserted(table, bundle):
    """A book VectorTable of the bundle plus the store's upserted books, a `source` column
    marking each row "trained" or "upserted". Returns (table, how many were added, note)."""
    import numpy as np
    import polars as pl

    from bookvec.model.analysis.vectors_io import VectorTable

    records, note = store_upserted_vectors(bundle)
    known = set(table.names)
    records = [r for r in records if r.title not in known]
    metadata = table.metadata if table.metadata is not None else pl.DataFrame()
    metadata = metadata.with_columns(pl.lit("trained").alias("source"))
    if not records:
        return VectorTable(table.names, table.vectors, metadata, table.name_column), 0, note
    rows = []
    for record in records:
        row = {name: record.payload.get(name) for name in metadata.columns if name != "source"}
        row["source"] = "upserted"
        rows.append(row)
    added = pl.DataFrame(rows, schema=metadata.schema, strict=False)
    vectors = np.vstack([table.vectors, np.asarray([r.vector for r in records], np.float32)])
    names = [*table.names, *(r.title for r in records)]
    return (
        VectorTable(names, vectors, pl.concat([metadata, added]), table.name_column),
        len(records),
        note,
    )
