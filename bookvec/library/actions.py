"""What the commands do, without the Typer layer: index a bundle, fold in and upsert new books,
resolve titles against the store. Composes the runtime and the indexer; never imports torch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bookvec import titles as title_lookup

if TYPE_CHECKING:  # numpy is imported where it is used: `bookvec search` by title needs none
    import numpy as np

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


def bundle_points(bundle, weights=None) -> Iterator[Any]:
    """Every book of a bundle as a store point: its normalised vector and its payload, and
    with ``weights`` (``bundle_link_weights``) the sparse vector of its links."""
    import numpy as np

    from bookvec.indexer import BookPoint

    vectors = np.asarray(bundle.book_vectors, dtype=np.float32)
    sparse = iter(())
    if weights is not None:
        sparse = weights.book_vectors(bundle_pairs(bundle), bundle.n_books)
    for row, vector in zip(bundle.books.iter_rows(named=True), vectors, strict=True):
        payload = payload_from_row(row, source="bundle")
        payload["content_hash"] = content_hash({**payload, "model": bundle.model_id})
        links = next(sparse, None)
        yield BookPoint(
            title=row["title"], vector=vector, payload=payload, sparse=links if links else None
        )


def sparse_options(weighting: str | None, **index: Any):
    """IndexOptions (hnsw etc. from ``index``) for sparse vectors of ``weighting`` (None:
    dense only). Without an ``hnsw_ef`` (or with None), the embedded store chooses it by
    measured recall once its graph exists (DEFAULT_RECALL_TARGET)."""
    from bookvec.indexer import IndexOptions
    from bookvec.indexer.types import DEFAULT_RECALL_TARGET
    from bookvec.sparse import STORE_IDF, check_weighting

    if index.get("hnsw_ef") is None:
        index = {k: v for k, v in index.items() if k != "hnsw_ef"}
        index.setdefault("recall_target", DEFAULT_RECALL_TARGET)

    if weighting is None:
        return IndexOptions(**index)
    scoring = "idf" if check_weighting(weighting) in STORE_IDF else "dot"
    return IndexOptions(sparse=scoring, sparse_weighting=weighting, **index)


def bundle_link_weights(bundle, weighting: str | None):
    """How the bundle's corpus weighs links (IDF, lengths: from its pairs; coherence: from its
    book vectors too), or None."""
    if weighting is None:
        return None
    from bookvec.sparse import NEEDS_VECTORS, check_weighting, link_weights

    vectors = bundle.book_vectors if check_weighting(weighting) in NEEDS_VECTORS else None
    return link_weights(bundle_pairs(bundle), bundle.n_books, bundle.n_links, weighting, vectors)


def index_bundle(bundle, store, *, progress: Callable[[int], None] | None = None) -> int:
    """Replace the collection's contents with the bundle's books plus the upserted books of
    its catalogue, folded in again (atomic on both backends; see catalogue.reindex), each with
    its dense vector and the default sparse vector of its links."""
    from bookvec.library.catalogue import reindex
    from bookvec.sparse import DEFAULT_WEIGHTING

    return reindex(
        bundle, store, progress=progress, options=sparse_options(DEFAULT_WEIGHTING)
    ).points


def resolve_store_title(store, query: str, *, exact: bool = False) -> str:
    """A title as typed -> a title in the store (exact id lookup first, then the loose rules)."""
    return resolve_store_titles(store, [query], exact=exact)[0]


def resolve_store_titles(store, queries: Iterable[str], *, exact: bool = False) -> list[str]:
    """Several titles as typed -> titles in the store. Loose ones go through the store's stored
    title-key index where it has one (bookvec/titlekeys.py), else through its titles, listed
    once."""
    queries = list(queries)
    found = store.get(queries)
    index = None
    resolved = []
    try:
        for query in queries:
            if query in found:
                resolved.append(query)
                continue
            if index is None:
                index = _store_title_keys(store) or title_lookup.TitleIndex(store.titles())
            resolved.append(index.resolve(query, exact=exact))
    finally:
        if index is not None and hasattr(index, "close"):
            index.close()
    return resolved


def _store_title_keys(store):
    """The store's stored title-key index, if its backend keeps one (Edge) and it is current."""
    opener = getattr(store, "title_keys", None)
    return opener() if opener is not None else None


# --- new books: fold-in through ONNX Runtime, then upsert ------------------------------------


@dataclass
class FoldInResult:
    points: list[Any] = field(default_factory=list)
    rejected: list[tuple[int | None, str | None, str]] = field(default_factory=list)


def fold_in_books(books: Iterable[Any], bundle, runtime, weights=None) -> FoldInResult:
    """New books -> store points, their vectors folded in from the links the model knows
    (and with ``weights``, their sparse vectors from the same links: link index = dimension)."""
    from bookvec.indexer import BookPoint
    from bookvec.library.catalogue import upsert_payload
    from bookvec.model.corpus.read import book_payload

    lookup = _link_lookup(bundle)
    result = FoldInResult()
    pending: list[tuple[Any, dict[str, Any], list[int], list[str]]] = []
    get = lookup.get
    for book in books:
        # each raw link once per run through the cleaning and the model's links (bounded)
        hits = list(map(get, book.links))
        if None in hits:
            hits = [hit or lookup.add(link) for hit, link in zip(hits, book.links, strict=True)]
        indices = [index for _, index in hits if index >= 0]
        if not indices:
            result.rejected.append(
                (book.line, book.title, "none of its links is known to the model")
            )
            continue
        names = [name for name, _ in hits if name is not None]
        known = [name for name, index in hits if index >= 0]
        # the cleaned links go into the payload: the catalogue a reindex folds in again from
        payload = upsert_payload(book_payload(book), names, known, bundle.model_id)
        pending.append((book, payload, indices, known))
    if pending:
        vectors = runtime.fold_in([indices for _, _, indices, _ in pending])
        sparse: list[Any] = [None] * len(pending)
        if weights is not None:
            sparse = weights.vectors([indices for _, _, indices, _ in pending])
        for (book, payload, _, _), vector, pair in zip(pending, vectors, sparse, strict=True):
            result.points.append(
                BookPoint(title=book.title, vector=vector, payload=payload, sparse=pair)
            )
    return result


class _LinkLookup(dict):
    """Raw link -> (cleaned name or None, index in the bundle's links or -1), filled as links
    are met: a corpus repeats its links, so each costs a dict lookup after the first.
    Emptied past LIMIT entries, so memory stays bounded on any input."""

    LIMIT = 1 << 20

    def __init__(self, cleaning, link_index) -> None:
        super().__init__()
        self.cleaning, self.link_index = cleaning, link_index

    def add(self, link: str) -> tuple[str | None, int]:
        from bookvec.model.corpus.prepare import clean_link

        if len(self) >= self.LIMIT:
            self.clear()
        name = clean_link(link, self.cleaning)
        found = (name, self.link_index.get(name, -1) if name is not None else -1)
        self[link] = found
        return found


_LINK_LOOKUPS: dict[tuple[str, str], _LinkLookup] = {}


def _link_lookup(bundle) -> _LinkLookup:
    key = (str(bundle.path), bundle.model_id)
    if key not in _LINK_LOOKUPS:
        _LINK_LOOKUPS.clear()  # one bundle at a time
        _LINK_LOOKUPS[key] = _LinkLookup(bundle_cleaning(bundle), bundle.link_index)
    return _LINK_LOOKUPS[key]


def bundle_cleaning(bundle):
    """The link cleaning the bundle was trained with (new books must be cleaned the same way)."""

    return bundle.manifest.cleaning_config()


def resolve_bundle_book(bundle, query: str, *, exact: bool = False) -> int:
    if query in bundle.book_index:
        return bundle.book_index[query]
    return bundle.book_index[bundle_title_index(bundle, "book").resolve(query, exact=exact)]


def resolve_bundle_link(bundle, query: str, *, exact: bool = False) -> int:
    from bookvec.model.corpus.prepare import clean_link

    if query in bundle.link_index:
        return bundle.link_index[query]
    cleaning = bundle_cleaning(bundle)
    cleaned = clean_link(query, cleaning)
    if cleaned is not None and cleaned in bundle.link_index:
        return bundle.link_index[cleaned]
    name = bundle_title_index(bundle, "link").resolve(query, exact=exact)
    return bundle.link_index[name]


_TITLE_INDEXES: dict[tuple[str, str], title_lookup.TitleIndex] = {}


def bundle_title_index(bundle, what: str) -> title_lookup.TitleIndex:
    """The bundle's book titles (``what="book"``) or link names (``"link"``), indexed once."""
    key = (str(bundle.path), what)
    if key not in _TITLE_INDEXES:
        names = bundle.book_titles if what == "book" else bundle.link_names
        _TITLE_INDEXES[key] = _bundle_title_keys(bundle, what, len(names)) or (
            title_lookup.TitleIndex(names, what=what)
        )
    return _TITLE_INDEXES[key]


def _bundle_title_keys(bundle, what: str, count: int):
    """The key index the bundle was written with (bundles since titlekeys), if it matches."""
    from bookvec.model.bundle import TITLE_KEYS
    from bookvec.titlekeys import open_keys

    keys = open_keys(bundle.path / TITLE_KEYS[what])
    if keys is None or keys.count != count:
        return None
    keys.what = what
    return keys


# --- links of a book, links near a link, why two books are close -----------------------------


def bundle_pairs(bundle, *, log: Callable[[str], None] | None = None) -> np.ndarray:
    """The (book, link) pairs the bundle was trained on (its pairs.parquet)."""
    return bundle.pairs


def observed_links(bundle, book: int, *, log: Callable[[str], None] | None = None) -> np.ndarray:
    """The distinct link indices a book's article has (those the model kept), sorted."""
    import numpy as np

    pairs = bundle_pairs(bundle, log=log)
    return np.unique(pairs[pairs[:, 0] == book, 1])


def predicted_links(
    bundle, runtime, book: int, *, limit: int, missing_only: bool = False, log=None
) -> list[dict[str, Any]]:
    """The pages the model thinks the book links to: every link scored in one batch through the
    score graph, best first; ``observed`` marks the ones the article really has."""
    import numpy as np

    n_links = bundle.n_links
    probability = runtime.score(np.full(n_links, book, dtype=np.int64), np.arange(n_links))
    return ranked_links(
        bundle, probability, observed_links(bundle, book, log=log), limit, missing_only
    )


def ranked_links(bundle, probability, linked, limit: int, missing_only: bool) -> list[dict]:
    """Every link's probability for one book -> the rows of `links`, best first; ``linked``:
    the link indices its article has (``observed``)."""
    import numpy as np

    observed = np.zeros(bundle.n_links, dtype=bool)
    observed[linked] = True
    order = np.argsort(-probability, kind="stable")
    if missing_only:
        order = order[~observed[order]]
    counts = bundle.links.get_column("count").to_list()
    return [
        {
            "title": bundle.link_names[k],
            "score": round(float(probability[k]), 6),
            "observed": bool(observed[k]),
            "books": int(counts[k]),
        }
        for k in order[:limit]
    ]


def nearest_links(bundle, link: int, *, limit: int) -> list[dict[str, Any]]:
    """Pages nearest a page: cosine over the bundle's (normalised) link vectors."""
    import numpy as np

    from bookvec.model.linalg import top_k

    vectors = np.asarray(bundle.link_vectors, dtype=np.float32)
    cosine = vectors @ vectors[link]
    cosine[link] = -np.inf
    order = top_k(cosine, min(limit, len(cosine) - 1))
    counts = bundle.links.get_column("count").to_list()
    return [
        {"title": bundle.link_names[k], "score": round(float(cosine[k]), 6), "books": counts[k]}
        for k in order
    ]


def explain_pair(bundle, a: int, b: int, *, limit: int = 10, log=None) -> dict[str, Any]:
    """Why two books are close.

    similarity = a·b, the cosine of the two (unit) book vectors. A link l with unit vector l
    contributes (a·l)(b·l): large when both books lean towards that page, negative when one
    leans towards it and the other away. If the link vectors were orthonormal these terms would
    add up to a·b exactly (a·b = sum over a basis of the products of coordinates); they are not
    (there are more pages than dimensions), so the contributions rank the shared directions
    rather than split the cosine exactly. Links considered: the union of both articles' links.

    shared_links: the links both articles have; pulling_links: the union's links with the
    largest contributions (whether one or both articles have them). Best first, ``limit`` each.
    """
    import numpy as np

    books = np.asarray(bundle.book_vectors, dtype=np.float32)
    side_a = (bundle.book_titles[a], books[a], observed_links(bundle, a, log=log))
    side_b = (bundle.book_titles[b], books[b], observed_links(bundle, b, log=log))
    return explain_sides(bundle, side_a, side_b, limit=limit)


def explain_sides(bundle, side_a: tuple, side_b: tuple, *, limit: int = 10) -> dict[str, Any]:
    """explain_pair for two (title, unit vector, link indices) sides: trained or upserted."""
    import numpy as np

    links = np.asarray(bundle.link_vectors, dtype=np.float32)
    (title_a, va, links_a), (title_b, vb, links_b) = side_a, side_b
    va = np.asarray(va, dtype=np.float32)
    vb = np.asarray(vb, dtype=np.float32)
    links_a, links_b = np.asarray(links_a, dtype=np.int64), np.asarray(links_b, dtype=np.int64)
    union = np.union1d(links_a, links_b)
    shared = np.intersect1d(links_a, links_b)
    cos_a, cos_b = links[union] @ va, links[union] @ vb
    contribution = cos_a * cos_b
    position = {int(k): i for i, k in enumerate(union)}

    def rows(indices) -> list[dict[str, Any]]:
        ordered = sorted(indices, key=lambda k: (-contribution[position[int(k)]], int(k)))
        return [
            {
                "link": bundle.link_names[k],
                "contribution": round(float(contribution[position[k]]), 6),
            }
            for k in (int(k) for k in ordered[:limit])
        ]

    return {
        "a": title_a,
        "b": title_b,
        "similarity": round(float(va @ vb), 6),
        "shared_links": rows(shared),
        "pulling_links": rows(union),
    }
