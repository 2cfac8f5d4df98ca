"""What both backends do the same way before talking to Qdrant: check vectors, complete
payloads, batch, classify an upsert, and build the recommend query vector."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from bookvec.errors import ConfigError, ModelMismatchError, StoreError, TitleNotFoundError
from bookvec.indexer.ids import content_hash, point_id
from bookvec.indexer.keys import add_filter_keys
from bookvec.indexer.types import BookPoint, Hit, UpsertReport

BATCH = 2048  # points per write: large enough that per-call costs vanish, small for progress
T = TypeVar("T")
# Keyword-list fields the embedded store keeps as a plain string when they hold one string:
# qdrant-edge-py converts a list for about four strings' price (each value tries bool, ints and
# float before str; a list all five before its items), and a keyword index matches a string
# exactly as it matches a list of that one string, so every filter is unchanged. Readers turn
# them back into lists (`stored_payload`), and stores written with lists read as before.
SCALAR_LISTS = ("genres", "authors", "author_keys")
# Fields no filter, index or title listing reads: the embedded store writes them as one JSON
# string under PACKED (each string value costs qdrant-edge-py three failed number conversions,
# Python exceptions, before it is taken as a string: ~6 us a value; a bulk load's point
# construction 84 -> 53 us with these five in one). `stored_payload` unpacks them.
PACKED_FIELDS = ("author", "language", "publisher", "content_hash", "links")
PACKED = "_packed"


class Prepared(NamedTuple):
    """A point ready for either backend: id, unit-agnostic float vector, complete payload.
    (A tuple: bulk loads make one per point, and a frozen dataclass costs 1-2 us to build.)"""

    id: str
    title: str
    vector: list[float]
    payload: dict[str, Any]
    sparse: tuple[list[int], list[float]] | None = None


@contextmanager
def few_collections() -> Iterator[None]:
    """For a bulk write: Python's cyclic collector ran every 700 new containers and its older
    generations walked every object alive (the model's link tables, the lookups), about an
    eighth of an upsert's time in a profile. What exists now is frozen out of its walks and
    the young generation collected every 100,000 containers; both undone at the end."""
    import gc

    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 100_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_vector(vector: Sequence[float], size: int, *, what: str) -> list[float]:
    """A vector as a list of floats of the store's size, finite and not all zero."""
    import numpy as np  # here, not at import: `bookvec search` by title never needs it

    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape[0] != size:
        raise ModelMismatchError(
            f"{what} has {array.shape[0]} dimensions, the store holds {size}-d vectors",
            hint="use the model the store was indexed with, or run `bookvec index` to rebuild it",
        )
    if not np.all(np.isfinite(array)):
        raise StoreError(f"{what} contains NaN or infinite values", hint="check the model output")
    if not np.any(array):
        raise StoreError(
            f"{what} is all zeros and has no direction to compare by cosine",
            hint="a book needs at least one link the model knows",
        )
    return array.tolist()


def prepare(point: BookPoint, vector_size: int) -> Prepared:
    vector = check_vector(point.vector, vector_size, what=f"the vector of {point.title!r}")
    sparse = None
    if point.sparse is not None:
        sparse = check_sparse(point.sparse, what=f"the sparse vector of {point.title!r}")
    return _complete(point, vector, sparse)


def _complete(
    point: BookPoint, vector: list[float], sparse: tuple[list[int], list[float]] | None
) -> Prepared:
    payload = dict(point.payload)
    payload["title"] = point.title
    if not payload.get("authors"):
        payload["authors"] = [payload["author"]] if payload.get("author") else []
    payload.setdefault("genres", [])
    if not payload.get("content_hash"):
        payload["content_hash"] = content_hash(payload, vector)
    add_filter_keys(payload)
    return Prepared(point_id(point.title), point.title, vector, payload, sparse)


def check_sparse(sparse, *, what: str) -> tuple[list[int], list[float]]:
    """(indices, values): as many of each, indices distinct and >= 0, values finite."""
    import math

    indices, values = [int(i) for i in sparse[0]], [float(v) for v in sparse[1]]
    if len(indices) != len(values):
        raise StoreError(f"{what} has {len(indices)} indices and {len(values)} values")
    if len(set(indices)) != len(indices) or any(i < 0 for i in indices):
        raise StoreError(f"{what} has repeated or negative indices")
    if not all(math.isfinite(v) for v in values):
        raise StoreError(f"{what} contains NaN or infinite values")
    return indices, values


def sparse_vectors_fit(items: Sequence[Prepared], has_sparse: bool, where: object) -> None:
    """Points with sparse vectors need a collection made with them (`bookvec index`)."""
    if not has_sparse and any(item.sparse is not None for item in items):
        raise StoreError(
            f"{where} holds no sparse vectors, and these books come with them",
            hint="run `bookvec index` to rebuild it with sparse vectors",
        )


def prepare_batch(points: Sequence[BookPoint], vector_size: int) -> list[Prepared]:
    """`prepare` for many points at once: one numpy check and one `tolist` for the batch
    (per point, the numpy calls cost more than everything else in `prepare`)."""
    if not points:
        return []
    import numpy as np

    try:
        matrix = np.asarray([point.vector for point in points], dtype=np.float32)
    except (ValueError, TypeError):  # ragged: find the culprit and say which
        matrix = None
    if (
        matrix is None
        or matrix.shape != (len(points), vector_size)
        or not np.isfinite(matrix).all()
        or not matrix.any(axis=1).all()
    ):
        return [prepare(point, vector_size) for point in points]  # raises on the first bad one
    sparse = _checked_sparse(points)
    if sparse is None:  # one is off: the point-by-point path names the first bad one
        return [prepare(point, vector_size) for point in points]
    rows = zip(points, matrix.tolist(), sparse, strict=True)
    return [_complete(p, vector, pair) for p, vector, pair in rows]


def _checked_sparse(points: Sequence[BookPoint]) -> list[Any] | None:
    """What `check_sparse` does, for a whole batch in a few numpy calls (point by point it was
    most of the cost of preparing a point): each point's (indices, values) as lists of ints
    and floats, or None for a point without. None for the batch when any pair is not as
    `check_sparse` wants it, or is of a kind numpy reads differently."""
    import numpy as np

    given = [i for i, point in enumerate(points) if point.sparse is not None]
    out: list[Any] = [None] * len(points)
    if not given:
        return out
    pairs = [points[i].sparse for i in given]
    try:
        sizes = [len(pair[0]) for pair in pairs]
        if any(len(pair[1]) != n for pair, n in zip(pairs, sizes, strict=True)):
            return None
        indices = np.asarray([i for pair in pairs for i in pair[0]], dtype=np.int64)
        values = np.asarray([v for pair in pairs for v in pair[1]], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if indices.ndim != 1 or values.ndim != 1 or (indices < 0).any():
        return None
    if not np.isfinite(values).all():
        return None
    # distinct within each point: sorted ascending (as bookvec makes them) is one diff;
    # anything else is sorted by (point, index) first
    ends = np.cumsum(sizes)
    first = np.zeros(len(indices), dtype=bool)
    first[ends[:-1][ends[:-1] < len(indices)]] = True
    if len(indices) > 1 and not ((np.diff(indices) > 0) | first[1:]).all():
        owner = np.repeat(np.arange(len(pairs)), sizes)
        order = np.lexsort((indices, owner))
        ranked, owners = indices[order], owner[order]
        if ((ranked[1:] == ranked[:-1]) & (owners[1:] == owners[:-1])).any():
            return None  # an index repeated within a point
    flat_i, flat_v = indices.tolist(), values.tolist()
    start = 0
    for slot, n in zip(given, sizes, strict=True):
        out[slot] = (flat_i[start : start + n], flat_v[start : start + n])
        start += n
    return out


def dedupe(items: Iterable[Prepared]) -> list[Prepared]:
    """Of a repeated title, the last one wins (and takes the last place)."""
    by_id: dict[str, Prepared] = {}
    for item in items:
        by_id.pop(item.id, None)
        by_id[item.id] = item
    return list(by_id.values())


def prepare_all(points: Iterable[BookPoint], vector_size: int) -> list[Prepared]:
    """All points checked before anything is written; of a repeated title, the last wins."""
    return dedupe(item for batch in batched(points) for item in prepare_batch(batch, vector_size))


def classify(
    items: list[Prepared], stored_hashes: Mapping[str, str | None]
) -> tuple[list[Prepared], UpsertReport]:
    """Which points to write, given the content hashes already stored under their ids."""
    to_write = [
        item for item in items if stored_hashes.get(item.id, "") != item.payload["content_hash"]
    ]
    added = sum(1 for item in to_write if item.id not in stored_hashes)
    report = UpsertReport(
        added=added, updated=len(to_write) - added, unchanged=len(items) - len(to_write)
    )
    return to_write, report


def as_records(
    ids: Mapping[str, str], found: Mapping[str, Any], with_vectors: bool
) -> dict[str, Any]:
    """get()'s answer on either backend: title -> Record for the titles (`ids`: title -> point
    id) whose point was `found` (point id -> the backend's record: id, payload, vector)."""
    from bookvec.indexer.hybrid import split_vector
    from bookvec.indexer.types import Record

    out = {}
    for title, pid in ids.items():
        if pid in found:
            rec = found[pid]
            dense, sparse = split_vector(rec.vector) if with_vectors else (None, None)
            payload = stored_payload(rec.payload)
            out[title] = Record(title=title, id=pid, payload=payload, vector=dense, sparse=sparse)
    return out


def ids_by_title(titles: Iterable[str]) -> dict[str, str]:
    """Distinct titles in order -> their point ids."""
    return {title: point_id(title) for title in dict.fromkeys(titles)}


def recommend_vector(positive: Sequence[Sequence[float]], negative: Sequence[Sequence[float]]):
    """Qdrant's `average_vector` strategy: avg(pos) + (avg(pos) - avg(neg)), or avg(pos)."""
    import numpy as np

    mean_positive = np.mean(np.asarray(positive, dtype=np.float64), axis=0)
    if not negative:
        return mean_positive.tolist()
    mean_negative = np.mean(np.asarray(negative, dtype=np.float64), axis=0)
    return (2.0 * mean_positive - mean_negative).tolist()


def recommend_both(
    vectors: Sequence[Any], positive: Sequence[str]
) -> tuple[list[float], tuple[list[int], list[float]] | None]:
    """The average_vector rule on both sides: dense as Qdrant's, sparse by bookvec.sparse's."""
    from bookvec.sparse import combine

    dense = [d for d, _ in vectors]
    sparse = [s for _, s in vectors]
    n = len(positive)
    query = recommend_vector(dense[:n], dense[n:])
    pos = [s for s in sparse[:n] if s is not None]
    neg = [s for s in sparse[n:] if s is not None]
    return query, (combine(pos, neg) if pos else None)


def fitting(items: list[Prepared], has_sparse: bool, where: object) -> list[Prepared]:
    """`items`, once `sparse_vectors_fit` has checked them (for a generator of batches)."""
    sparse_vectors_fit(items, has_sparse, where)
    return items


def check_examples(positive: Sequence[str], negative: Sequence[str]) -> None:
    if isinstance(positive, str) or isinstance(negative, str):
        raise ConfigError("positive and negative examples must be lists of titles")
    if not positive:
        raise ConfigError(
            "recommend needs at least one positive example", hint="name a book you liked"
        )


def first_missing(titles: Iterable[str], found: Iterable[str]) -> TitleNotFoundError | None:
    present = set(found)
    for title in titles:
        if title not in present:
            return TitleNotFoundError(title)
    return None


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    return int(limit)


def check_model(
    found_version: str | None,
    found_size: int | None,
    model_version: str,
    vector_size: int,
    where: object,
) -> None:
    """The store must hold vectors of this model; anything else needs a full reindex."""
    if found_version == model_version and found_size == vector_size:
        return
    found = (
        f"{found_size}-d vectors of model {found_version!r}"
        if found_version
        else f"{found_size}-d vectors of no recorded bookvec model"
    )
    raise ModelMismatchError(
        f"{where} holds {found}, not {vector_size}-d vectors of model {model_version!r}",
        hint="run `bookvec index` to rebuild it with the current model",
    )


def edge_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the embedded store writes it: a one-string list of SCALAR_LISTS as
    that string, and the PACKED_FIELDS that are strings or None as one JSON string under
    PACKED (the payload itself when neither applies; never changed in place)."""
    out = payload
    for key in SCALAR_LISTS:
        value = payload.get(key)
        if type(value) is list and len(value) == 1 and type(value[0]) is str:
            if out is payload:
                out = dict(payload)
            out[key] = value[0]
    packed = {k: payload[k] for k in PACKED_FIELDS if k in payload and _plain(payload[k])}
    if len(packed) > 1:  # one string for one value would save nothing
        import orjson

        try:
            text = orjson.dumps(packed).decode()
        except orjson.JSONEncodeError:  # a lone surrogate: kept as separate fields
            return out
        if out is payload:
            out = dict(payload)
        for key in packed:
            del out[key]
        out[PACKED] = text
    return out


def _plain(value: Any) -> bool:
    return value is None or type(value) is str


def stored_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """A payload as read from either backend, as bookvec made it (`edge_payload` undone):
    a new dict."""
    out = dict(payload or {})
    packed = out.pop(PACKED, None)
    if type(packed) is str:
        import orjson

        out.update(orjson.loads(packed))
    for key in SCALAR_LISTS:
        if type(out.get(key)) is str:
            out[key] = [out[key]]
    return out


def hits(points: Iterable[Any]) -> list[Hit]:
    """Scored points of either backend (Edge's or qdrant-client's: id, score, payload) as Hits."""
    out = []
    for p in points:
        payload = stored_payload(p.payload)
        out.append(Hit(title=payload["title"], score=float(p.score), payload=payload, id=str(p.id)))
    return out
