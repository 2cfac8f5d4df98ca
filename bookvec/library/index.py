"""`bookvec.open_index()`: the vector store and its model behind one object, as llm's Collection
puts a store and a model together: search with filters, recommend, one book's record, upsert,
delete, title completion, genre counts, info. What `bookvec search`, `upsert`, `delete` and
`info` do.

Queries run on a read-only view of the store (opened on first use: other processes may write
meanwhile, as with the CLI); each write opens the store for writing for that call only, so an
open Index never holds the embedded store's writer lock. A search by title imports neither
numpy nor polars (bookvec.indexer does the vectors), and nothing here imports torch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bookvec.errors import ConfigError, ModelMismatchError
from bookvec.library.results import (
    BookRecord,
    DeleteReport,
    Hit,
    Info,
    SearchResult,
    UpsertReport,
)
from bookvec.library.store import (
    default_mode,
    genre_filter_values,
    home_of,
    open_model_bundle,
    open_store,
    read_manifest_quietly,
)

MODES = ("dense", "sparse", "hybrid")


def open_index(
    *,
    home: str | Path | None = None,
    url: str | None = None,
    api_key: str | None = None,
    collection: str = "books",
    model: str | Path | None = None,
    client: Any = None,
) -> Index:
    """The store (embedded under ``home``, or the Qdrant server at ``url``; ``client``: a
    ready qdrant-client, as tests pass QdrantClient(":memory:")) and the model ``model`` names
    (default: the current one) for what needs the model (link queries, links, explain, score,
    upsert)."""
    return Index(
        home=home, url=url, api_key=api_key, collection=collection, model=model, client=client
    )


class Index:
    def __init__(
        self,
        *,
        home: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "books",
        model: str | Path | None = None,
        client: Any = None,
    ) -> None:
        from bookvec.settings import check_collection

        self.home = home_of(home)
        self.url, self.api_key = url or None, api_key or None
        self.collection = check_collection(collection)
        self._model_ref = model
        self._client = client
        self._reader = None
        self._model = None
        self._synthetic: dict[str | None, bool] = {}  # model id -> its corpus was synthetic

    def __repr__(self) -> str:
        where = self.url or (":memory:" if self._client is not None else str(self.home.store))
        return f"<bookvec.Index {self.collection!r} at {where}>"

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def abandon(self) -> bool:
        """close(), for a process that ends next with os._exit: the embedded store's reader
        is left to the kernel (bookvec.indexer.edge_live.EdgeLive.abandon). True when it was
        (the process must then end with os._exit, or the reader closes at exit after all)."""
        reader, self._reader = self._reader, None
        if reader is None:
            return False
        abandon = getattr(reader, "abandon", None)
        if abandon is None:
            reader.close()
            return False
        return bool(abandon())

    # --- the store and the model ------------------------------------------------------------
    def _open(self, *, read_only: bool):
        extra = {"client": self._client} if self._client is not None else {}
        return open_store(
            self.url, self.api_key, self.collection, home=self.home, read_only=read_only, **extra
        )

    @property
    def store(self):
        """The read-only store queries go to (opened on first use)."""
        if self._reader is None:
            self._reader = self._open(read_only=True)
        return self._reader

    @property
    def model(self):
        """The bookvec.Model (bundle + runtime); it finds upserted books in this store."""
        if self._model is None:
            from bookvec.library.model import Model

            bundle = open_model_bundle(self._model_ref, home=self.home)
            self._model = Model(bundle, home=self.home, store=self.store)
        return self._model

    # --- queries ----------------------------------------------------------------------------
    def search(
        self,
        title: str | None = None,
        *,
        like: Sequence[str] = (),
        unlike: Sequence[str] = (),
        link: str | None = None,
        genres: Sequence[str] = (),
        genres_all: Sequence[str] = (),
        author: str | None = None,
        country: str | None = None,
        years: Any = None,
        limit: int = 10,
        mode: str | None = None,
        diverse: bool = False,
        exact: bool = False,
    ) -> SearchResult:
        """Books like ``title`` (and ``like``, away from ``unlike``), or the books most likely to
        link to the page ``link``; best first, the query books left out, with payload filters:
        ``genres`` (any of), ``genres_all`` (every one), ``author``, ``country``, ``years``
        ((from, to), either end None, or one year). ``mode``: dense, sparse or hybrid
        (default: hybrid where the store has sparse vectors). `bookvec search`."""
        from bookvec.library.actions import resolve_store_titles

        like, unlike = _titles(like, "like"), _titles(unlike, "unlike")
        if link is not None and (title is not None or like or unlike):
            raise ConfigError("link is a query of its own: give it without a title, like or unlike")
        if link is None and title is None and not like:
            raise ConfigError("give a book title, like=[titles] or link=page")
        if mode is not None and mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}", hint="use dense, sparse or hybrid")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ConfigError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        book_filter, filters = _filter(genres, genres_all, author, country, years)
        store = self.store
        info = store.info(count=False)  # a count is an exact scan of the store: not needed
        store_model = info.model_version if info else None
        mode = mode or default_mode(info)
        how = {"mode": mode, "diverse": diverse}
        positive: list[str] = []
        negative: list[str] = []
        if link is not None:
            vector, sparse, link = self._link_vector(link, exact, store_model)
            hits = store.search(vector, limit=limit, filter=book_filter, sparse=sparse, **how)
        else:
            examples = ([title] if title is not None else []) + like
            resolved = resolve_store_titles(store, [*examples, *unlike], exact=exact)
            positive, negative = resolved[: len(examples)], resolved[len(examples) :]
            if len(positive) == 1 and not negative:
                hits = store.search_like(positive[0], limit=limit, filter=book_filter, **how)
            else:
                hits = store.recommend(positive, negative, limit=limit, filter=book_filter, **how)
        synthetic = self._synthetic.get(store_model)
        if synthetic is None:  # a bundle never changes under its id: read its manifest once
            manifest = read_manifest_quietly(store_model, home=self.home)
            synthetic = self._synthetic[store_model] = bool(manifest and manifest.corpus.synthetic)
        return SearchResult(
            hits=tuple(
                Hit.from_payload(h.title, h.score, h.payload, synthetic=synthetic) for h in hits
            ),
            positive=tuple(positive),
            negative=tuple(negative),
            link=link,
            mode=mode,
            diverse=diverse,
            filters=filters,
            synthetic=synthetic,
        )

    def recommend(self, like: Sequence[str], unlike: Sequence[str] = (), **filters: Any):
        """Books like every one of ``like`` and away from ``unlike`` (Qdrant's recommend:
        the `average_vector` rule); the same filters and options as search."""
        return self.search(like=_titles(like, "like"), unlike=unlike, **filters)

    def _link_vector(self, link: str, exact: bool, store_model: str | None):
        """The page's unit vector from the model (the one the store was indexed with)."""
        import numpy as np

        from bookvec.library.actions import resolve_bundle_link

        bundle = self.model.bundle
        from bookvec.model import bundle as files

        bundle.verify((files.LINK_VECTORS, files.LINKS))
        if store_model is not None and store_model != bundle.model_id:
            raise ModelMismatchError(
                f"the store holds vectors of model {store_model}, the model here is "
                f"{bundle.model_id}: a link vector from one cannot query the other",
                hint="run `bookvec index` to index the current model, or pass --model "
                + store_model,
            )
        index = resolve_bundle_link(bundle, link, exact=exact)
        vector = np.asarray(bundle.link_vectors[index], dtype=np.float32)
        return vector, ([int(index)], [1.0]), bundle.link_names[index]

    def book(self, title: str, *, exact: bool = False) -> BookRecord:
        """One book's stored record (title resolved loosely)."""
        from bookvec.indexer.catalogue import book_from_payload, is_upserted
        from bookvec.library.actions import resolve_store_title

        resolved = resolve_store_title(self.store, title, exact=exact)
        payload = self.store.get([resolved])[resolved].payload
        links = book_from_payload(resolved, payload).links if is_upserted(payload) else []
        return BookRecord(
            title=resolved,
            genres=tuple(payload.get("genres") or ()),
            author=payload.get("author"),
            authors=tuple(payload.get("authors") or ()),
            country=payload.get("country"),
            language=payload.get("language"),
            publisher=payload.get("publisher"),
            year=payload.get("year"),
            source=payload.get("source"),
            links=tuple(links),
        )

    def links(self, title: str, missing: bool = False, topn: int = 10, *, exact: bool = False):
        """Model.links, knowing the upserted books of this store."""
        return self.model.links(title, missing, topn, exact=exact)

    def explain(self, a: str, b: str, topn: int = 10, *, exact: bool = False):
        """Model.explain, knowing the upserted books of this store."""
        return self.model.explain(a, b, topn, exact=exact)

    def score(self, pairs: Any, *, exact: bool = False, skip_invalid: bool = False):
        """Model.score, knowing the upserted books of this store."""
        return self.model.score(pairs, exact=exact, skip_invalid=skip_invalid)

    def complete(self, text: str, limit: int = 10) -> list[str]:
        """Titles for a partly typed one: those whose loose key starts with the text's, then
        the closest by fuzzy match (rapidfuzz), at most ``limit``."""
        from bookvec.titles import base_key, loose_key

        if not text or not loose_key(text) or limit < 1:
            return []
        keys = getattr(self.store, "title_keys", lambda: None)()
        titles: list[str] = []
        bases: list[str] = []
        try:
            if keys is not None:
                found = keys.complete(text, limit)
                if len(found) < limit:
                    titles, bases = keys.keyed()  # the keys stored with the generation
            else:
                titles = self.store.titles()
                key = loose_key(text)
                found = sorted((t for t in titles if loose_key(t).startswith(key)), key=loose_key)
                found = found[:limit]
                bases = [base_key(t) for t in titles] if len(found) < limit else []
        finally:
            if keys is not None:
                keys.close()
        if len(found) < limit and titles:
            from rapidfuzz import fuzz, process

            best = process.extract(
                base_key(text), bases, scorer=fuzz.WRatio, limit=2 * limit, score_cutoff=60
            )
            taken = set(found)
            for _, _, i in best:
                if len(found) == limit:
                    break
                if titles[i] not in taken:
                    found.append(titles[i])
                    taken.add(titles[i])
        return found

    def facets(self) -> dict[str, int]:
        """Genre -> how many books of the store have it, most first."""
        from collections import Counter

        from bookvec.indexer.points import batched

        counts: Counter[str] = Counter()
        for chunk in batched(self.store.titles(), 1024):
            for record in self.store.get(chunk).values():
                counts.update(set(record.payload.get("genres") or ()))
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def info(self) -> Info:
        """`bookvec info`: the model and the store."""
        from bookvec.library.info import info

        return info(self._model_ref, home=self.home, store=self.store)

    # --- writes -----------------------------------------------------------------------------
    def upsert(
        self,
        books: Any,
        *,
        dry_run: bool = False,
        rejects: str | None = None,
        format: str | None = None,
        skip_invalid: bool = False,
    ) -> UpsertReport:
        """Add new books or replace changed ones, placed by their links (fold-in): an iterable
        of dicts in the corpus record shape ({"title", "links", "genres", ...}) or a path in
        any format `bookvec upsert` reads. ``rejects``: a file for every rejected record.
        An input whose every record is rejected raises InputError. `bookvec upsert`."""
        from bookvec.library import upserting

        report = upserting.upsert(
            books,
            self.model.bundle,
            self._open,
            format=format,
            skip_invalid=skip_invalid,
            dry_run=dry_run,
            rejects_file=rejects,
        )
        upserting.check_stored(report, rejects)
        return report

    def delete(self, titles: Iterable[str] | str, *, dry_run: bool = False, exact: bool = False):
        """Remove books (titles resolved loosely; an unknown or ambiguous one stops before
        anything is removed). The model is unchanged. `bookvec delete`."""
        from bookvec.library.actions import resolve_store_title

        titles = _titles(titles, "titles")
        store = self._open(read_only=dry_run)
        try:
            found = (resolve_store_title(store, t, exact=exact) for t in titles)
            resolved = list(dict.fromkeys(found))
            deleted = len(resolved) if dry_run else store.delete(resolved)
            remaining = store.count()
        finally:
            store.close()
        return DeleteReport(
            deleted=deleted,
            titles=tuple(resolved),
            remaining=remaining - (deleted if dry_run else 0),
            dry_run=dry_run,
        )

    def reindex(self, **options: Any):
        """Index the model into the store (`bookvec index`; see indexing.index_model)."""
        from bookvec.library.indexing import index_model

        self.close()  # the reader's view is replaced; it reopens on the next query
        bundle = self.model.bundle
        self._model = None
        return index_model(
            bundle,
            self.url,
            self.api_key,
            self.collection,
            home=self.home,
            client=self._client,
            **options,
        )


def _titles(values: Any, what: str) -> list[str]:
    if isinstance(values, str):
        return [values]
    values = list(values or ())
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{what}: give titles as strings")
    return values


def _filter(genres, genres_all, author, country, years):
    """(BookFilter, the filters as a dict) from the search arguments."""
    from bookvec.indexer import BookFilter

    if isinstance(years, int) and not isinstance(years, bool):
        years = (years, years)
    year_from, year_to = (None, None) if years is None else _years(years)
    book_filter = BookFilter(
        genres_any=genre_filter_values(genres) if genres else (),
        genres_all=genre_filter_values(genres_all) if genres_all else (),
        author=author,
        country=country,
        year_from=year_from,
        year_to=year_to,
    )
    filters = {
        "genres_any": list(book_filter.genres_any),
        "genres_all": list(book_filter.genres_all),
        "author": author,
        "country": country,
        "year_from": year_from,
        "year_to": year_to,
    }
    return book_filter, filters


def _years(years: Any) -> tuple[int | None, int | None]:
    try:
        start, stop = years
    except (TypeError, ValueError):
        raise ConfigError(
            f"years: give (from, to), either end None, or one year; not {years!r}"
        ) from None
    return start, stop
