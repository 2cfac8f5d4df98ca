"""The server backend: a Qdrant server through qdrant-client (tests: `QdrantClient(":memory:")`).

Users name the collection `books`; on the server it is an alias of a physical collection
`books_<time>_<rand>`. A full reindex creates a new physical collection, uploads into it
(`wait=True`), moves the alias in one alias-actions call, then drops the old collection.
The model version and vector size are collection metadata (`metadata=` on create_collection:
Qdrant server >= 1.16, qdrant-client >= 1.16).

Every client call goes through `_call`: retried when transient (retry.py), and its failure
turned into a bookvec error that says how to fix it. Uploads run `ServerOptions.parallel`
requests at a time from a thread pool (each `wait=True`, so a returned upsert is readable);
local mode (`QdrantClient(":memory:")` / `path=`) gets one, as it is not thread-safe.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException

from bookvec.errors import (
    BookvecError,
    ConfigError,
    DataNotFoundError,
    Interrupted,
    ModelMismatchError,
    StoreError,
)
from bookvec.indexer import filters, hybrid
from bookvec.indexer.catalogue import (
    SOURCE_FIELD,
    UPSERTED,
    UpsertedBook,
    book_from_payload,
    sorted_books,
)
from bookvec.indexer.ids import point_id
from bookvec.indexer.points import (
    Prepared,
    batched,
    check_examples,
    check_limit,
    check_model,
    check_sparse,
    check_vector,
    classify,
    dedupe,
    first_missing,
    hits,
    ids_by_title,
    prepare_batch,
    sparse_vectors_fit,
)
from bookvec.indexer.retry import Retry, is_transient, message_of, status_of
from bookvec.indexer.types import (
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    BookFilter,
    BookPoint,
    CollectionInfo,
    Hit,
    IndexOptions,
    Progress,
    Record,
    UpsertReport,
)

ENV_GRPC = "BOOKVEC_QDRANT_GRPC"
ENV_TIMEOUT = "BOOKVEC_QDRANT_TIMEOUT"
ENV_PARALLEL = "BOOKVEC_QDRANT_PARALLEL"
PAGE = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class ServerOptions:
    """How to talk to a server."""

    prefer_grpc: bool = False
    https: bool | None = None  # None: follow the URL's scheme
    timeout: int = 10  # seconds per request
    retries: int = 3  # extra attempts, for transient failures only
    backoff: float = 0.25  # first wait in seconds; doubles each retry
    max_backoff: float = 4.0
    batch_size: int = 256  # points per upload request
    parallel: int = 4  # upload requests in flight at once

    @classmethod
    def from_env(cls) -> ServerOptions:
        grpc = os.environ.get(ENV_GRPC, "").strip().lower() in ("1", "true", "yes", "on")
        timeout = _env_int(ENV_TIMEOUT, cls.timeout, "a whole number of seconds", MAX_TIMEOUT)
        parallel = _env_int(ENV_PARALLEL, cls.parallel, "a number of requests", MAX_PARALLEL)
        return cls(prefer_grpc=grpc, timeout=timeout, parallel=parallel)


MAX_TIMEOUT = 3600  # seconds: past an hour a request is not coming back
MAX_PARALLEL = 64


def _env_int(name: str, default: int, what: str, most: int) -> int:
    raw = os.environ.get(name, "").strip()
    hint = f"set it to a whole number from 1 to {most}, e.g. {default}"
    try:
        value = int(raw[:20]) if raw else default  # (a 5,000-digit value is not a number)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not {what}", hint=hint) from None
    if value < 1:
        raise ConfigError(f"{name}={raw[:40]} is out of range: it must be at least 1", hint=hint)
    if value > most or len(raw) > 20:
        raise ConfigError(f"{name}={raw[:40]} is out of range: at most {most}", hint=hint)
    return value


def connect(url: str, api_key: str | None, options: ServerOptions) -> QdrantClient:
    from bookvec.settings import ENV_QDRANT_URL, check_url

    url = check_url(url)
    # No compatibility check: it costs a request at every start and warns on stderr.
    extra = {} if options.https is None else {"https": options.https}
    try:
        return QdrantClient(
            url=url,
            api_key=api_key,
            prefer_grpc=options.prefer_grpc,
            timeout=options.timeout,
            check_compatibility=False,
            **extra,
        )
    except ValueError as exc:  # urllib3's LocationParseError is one, as is "Unknown scheme"
        raise ConfigError(
            f"the Qdrant URL is malformed: {str(exc).splitlines()[0]}",
            hint=f"give e.g. http://localhost:6333 (--url or {ENV_QDRANT_URL})",
        ) from None


class ServerStore:
    backend = "server"

    def __init__(
        self,
        client: QdrantClient,
        *,
        collection: str = "books",
        read_only: bool = False,
        options: ServerOptions | None = None,
        owns_client: bool = False,
        retry: Retry | None = None,
    ) -> None:
        self.client = client
        self.alias = collection
        self.read_only = read_only
        self.options = options or ServerOptions()
        o = self.options
        self._retry = retry or Retry(o.retries, o.backoff, o.max_backoff)
        self._owns_client = owns_client
        init = client.init_options
        self.location = _shown(
            str(init.get("url") or init.get("location") or init.get("path") or "")
        )
        # Local mode searches exactly, ignores search params (and warns about them) and is not
        # thread-safe.
        self.local = bool(init.get("path")) or init.get("location") == ":memory:"
        self._size: int | None = None  # the collection's vector size, for checking queries
        self._params: Any = None  # search params of the collection (hnsw_ef, quantization)
        self._sparse: bool | None = None  # whether the collection has sparse vectors
        self.hybrid = hybrid.DEFAULT_HYBRID  # how hybrid and diverse queries are built

    # --- reading -------------------------------------------------------------------------------
    def info(self) -> CollectionInfo | None:
        physical = self._physical()
        if physical is None:
            return None
        described = self._call("read the collection", self.client.get_collection, physical)
        meta = (described.config.metadata or {}).get("bookvec") or {}
        params = described.config.params
        size = params.vectors.size if isinstance(params.vectors, models.VectorParams) else 0
        options = IndexOptions.from_dict(meta.get("index"))
        self._size = size
        self._sparse = options.has_sparse
        self._params = None if self.local else _search_params(options)
        return CollectionInfo(
            name=physical,
            backend=self.backend,
            model_version=meta.get("model_version"),
            vector_size=size,
            points=self.count(),
            location=self.location,
            index=options,
            indexed_vectors=described.indexed_vectors_count,
            shards=int(meta.get("shards") or params.shard_number or 1),
            replicas=int(meta.get("replicas") or params.replication_factor or 1),
        )

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
    ) -> list[Hit]:
        try:
            query = check_vector(vector, self._vector_size(), what="the query vector")
        except ModelMismatchError:
            self._size = None  # reindexed with another model since we looked? look again
            query = check_vector(vector, self._vector_size(), what="the query vector")
        excluded = [point_id(t) for t in exclude_titles]
        if mode == "dense" and not diverse:
            return self._query(query, limit, filter, excluded)
        pair = None if sparse is None else check_sparse(sparse, what="the sparse query")
        return self._by_mode(mode, query, pair, limit, filter, excluded, diverse)

    def search_like(
        self,
        title: str,
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        if mode != "dense" or diverse:  # both vectors of the example, then the mode's query
            [(dense, sparse)] = self._both_vectors([title])
            return self._by_mode(mode, dense, sparse, limit, filter, [point_id(title)], diverse)
        try:  # query by id: the server uses the stored vector and leaves the example out
            return self._query(point_id(title), limit, filter, ())
        except BookvecError as exc:
            self._raise_missing([title], exc)

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        check_examples(positive, negative)
        if mode != "dense" or diverse:
            from bookvec.indexer.edge import recommend_both

            vectors = self._both_vectors([*positive, *negative])
            dense, sparse = recommend_both(vectors, positive)
            excluded = list(ids_by_title([*positive, *negative]).values())
            return self._by_mode(mode, dense, sparse, limit, filter, excluded, diverse)
        query = models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[point_id(t) for t in positive],
                negative=[point_id(t) for t in negative] or None,
                strategy=models.RecommendStrategy.AVERAGE_VECTOR,  # what EdgeStore computes
            )
        )
        try:
            return self._query(query, limit, filter, ())
        except BookvecError as exc:
            self._raise_missing([*positive, *negative], exc)

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]:
        ids = ids_by_title(titles)
        found: dict[str, Any] = {}
        for batch in batched(list(ids.values()), PAGE):
            records = self._call(
                "read points",
                self.client.retrieve,
                self.alias,
                ids=batch,
                with_payload=True,
                with_vectors=with_vectors,
            )
            found.update((str(rec.id), rec) for rec in records)
        return {
            title: Record(
                title=title,
                id=pid,
                payload=dict(found[pid].payload or {}),
                vector=hybrid.split_vector(found[pid].vector)[0] if with_vectors else None,
                sparse=hybrid.split_vector(found[pid].vector)[1] if with_vectors else None,
            )
            for title, pid in ids.items()
            if pid in found
        }

    def count(self, filter: BookFilter | None = None) -> int:
        flt = filters.to_server(filter)
        result = self._call(
            "count points", self.client.count, self.alias, count_filter=flt, exact=True
        )
        return result.count

    def titles(self) -> list[str]:
        titles: list[str] = []
        offset = None
        while True:
            records, offset = self._call(
                "list titles",
                self.client.scroll,
                self.alias,
                limit=PAGE,
                offset=offset,
                with_payload=["title"],
                with_vectors=False,
            )
            titles.extend(rec.payload["title"] for rec in records)
            if offset is None:
                return sorted(titles)

    # --- writing -------------------------------------------------------------------------------
    def ensure_collection(
        self,
        *,
        vector_size: int,
        model_version: str,
        shards: int | None = None,
        replicas: int | None = None,
        options: IndexOptions | None = None,
    ) -> None:
        info = self.info()
        if info is not None:
            where = f"collection {info.name!r}"
            check_model(info.model_version, info.vector_size, model_version, vector_size, where)
            return
        self._check_writable()
        options = options or IndexOptions()
        physical = self._create(vector_size, model_version, shards, replicas, options)
        self._switch_alias(physical, old=None)
        self._size = vector_size
        self._params = None if self.local else _search_params(options)

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
    ) -> int:
        """Upload into a new collection, then move the alias to it in one call."""
        self._check_writable()
        _check_layout(shards, replicas)
        options = options or IndexOptions()
        old = self._physical()
        new = self._create(vector_size, model_version, shards, replicas, options)
        try:
            items = (
                _fits(dedupe(prepare_batch(batch, vector_size)), options.has_sparse, new)
                for batch in batched(points)
            )
            self._upload(new, items, progress)
            self._switch_alias(new, old)
        except BaseException:
            self._drop(new)
            raise
        if old is not None and old not in (new, self.alias):
            self._drop(old)
        self._size = vector_size
        self._sparse = options.has_sparse
        self._params = None if self.local else _search_params(options)
        return self._call("count points", self.client.count, new, exact=True).count

    def upsert(
        self,
        points: Iterable[BookPoint],
        *,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> UpsertReport:
        """Streamed in batches: each batch is checked, compared with the stored content hashes,
        and its new or changed points uploaded before the next batch is read."""
        if not dry_run:
            self._check_writable()
        size = self._vector_size()
        total = UpsertReport(0, 0, 0)
        stored = 0

        def count(n: int) -> None:
            nonlocal stored
            stored += n
            if progress is not None:
                progress(n)

        try:
            return self._upsert(points, size, total, count, dry_run)
        except KeyboardInterrupt:  # each upload that returned is stored (wait=True)
            message = f"{stored} points stored before the interruption"
            raise Interrupted(message, done=stored) from None

    def _upsert(
        self,
        points: Iterable[BookPoint],
        size: int,
        total: UpsertReport,
        progress: Progress,
        dry_run: bool,
    ) -> UpsertReport:
        for batch in batched(points):
            items = dedupe(prepare_batch(batch, size))
            sparse_vectors_fit(items, self._has_sparse(), f"collection {self.alias!r}")
            stored: dict[str, str | None] = {}
            for ids in batched([item.id for item in items], PAGE):
                records = self._call(
                    "read content hashes",
                    self.client.retrieve,
                    self.alias,
                    ids=ids,
                    with_payload=["content_hash"],
                    with_vectors=False,
                )
                stored.update(
                    (str(rec.id), (rec.payload or {}).get("content_hash")) for rec in records
                )
            to_write, report = classify(items, stored)
            if to_write and not dry_run:
                self._upload(self.alias, [to_write], progress)
            total = total + report
        return total

    def delete(self, titles: Iterable[str]) -> int:
        self._check_writable()
        existing = [record.id for record in self.get(titles).values()]
        if existing:
            selector = models.PointIdsList(points=existing)
            self._call(
                "delete points", self.client.delete, self.alias, points_selector=selector, wait=True
            )
        return len(existing)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """No lock: a server has none to offer. A book another client upserts while a
        reindex runs can miss the new collection (see the README)."""
        return contextlib.nullcontext()

    def upserted(self) -> list[UpsertedBook]:
        """The catalogue: every point with source "upsert" (its cleaned links in its payload),
        by title. It lives in the collection, so every client sees the books the others added."""
        if self._physical() is None:
            return []
        condition = models.FieldCondition(key=SOURCE_FIELD, match=models.MatchValue(value=UPSERTED))
        books: list[UpsertedBook] = []
        offset = None
        while True:
            records, offset = self._call(
                "list upserted books",
                self.client.scroll,
                self.alias,
                scroll_filter=models.Filter(must=[condition]),
                limit=PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
            for rec in records:
                payload = dict(rec.payload or {})
                books.append(book_from_payload(payload["title"], payload))
            if offset is None:
                return sorted_books(books)

    def apply_changes(
        self,
        upserts: Iterable[BookPoint],
        deletes: Iterable[str],
        *,
        model_version: str,
        progress: Progress | None = None,
    ) -> None:
        """Write ``upserts``, delete ``deletes``, then record ``model_version``, in place in
        the live collection (``bookvec.indexer.incremental`` says why not on a copy)."""
        self._check_writable()
        physical = self._physical()
        if physical is None:
            raise self._no_collection()
        size = self._vector_size()
        items = (dedupe(prepare_batch(batch, size)) for batch in batched(upserts))
        self._upload(self.alias, items, progress)
        ids = list(ids_by_title(deletes).values())
        for batch in batched(ids, PAGE):
            selector = models.PointIdsList(points=batch)
            self._call(
                "delete points", self.client.delete, self.alias, points_selector=selector, wait=True
            )
        described = self._call("read the collection", self.client.get_collection, physical)
        meta = dict((described.config.metadata or {}).get("bookvec") or {})
        meta["model_version"] = model_version
        self._call(
            "record the model version",
            self.client.update_collection,
            physical,
            metadata={"bookvec": meta},
        )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> ServerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- collections and aliases ---------------------------------------------------------------
    def _physical(self) -> str | None:
        """The collection behind the alias (or a plain collection that has the alias's name)."""
        aliases = self._call("list aliases", self.client.get_aliases).aliases
        for alias in aliases:
            if alias.alias_name == self.alias:
                return alias.collection_name
        if self._call("look for the collection", self.client.collection_exists, self.alias):
            return self.alias
        return None

    def _create(
        self,
        vector_size: int,
        model_version: str,
        shards: int | None,
        replicas: int | None,
        options: IndexOptions,
    ) -> str:
        """A new physical collection with its payload indexes, before any point goes in."""
        _check_layout(shards, replicas)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{self.alias}_{stamp}_{secrets.token_hex(2)}"
        metadata = {
            "bookvec": {
                "format": 1,
                "model_version": model_version,
                "vector_size": vector_size,
                "created": stamp,
                "index": options.to_dict(),
                "shards": shards or 1,
                "replicas": replicas or 1,
            }
        }
        quantization = None
        if options.quantization == "int8":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        try:
            self._call(
                "create a collection",
                self.client.create_collection,
                collection_name=name,
                vectors_config=models.VectorParams(
                    size=vector_size, distance=models.Distance.COSINE
                ),
                sparse_vectors_config=_sparse_config(options),
                shard_number=shards,
                replication_factor=replicas,
                hnsw_config=models.HnswConfigDiff(
                    m=options.hnsw_m, ef_construct=options.hnsw_ef_construct
                ),
                quantization_config=quantization,
                metadata=metadata,
            )
        except StoreError:  # a retried create whose first attempt went through
            if not self._call("look for the collection", self.client.collection_exists, name):
                raise
        schemas = [(field, models.PayloadSchemaType.KEYWORD) for field in KEYWORD_FIELDS]
        schemas += [(field, models.PayloadSchemaType.INTEGER) for field in INTEGER_FIELDS]
        with warnings.catch_warnings():  # local mode: "Payload indexes have no effect"
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field, schema in schemas:
                self._call(
                    "create a payload index",
                    self.client.create_payload_index,
                    name,
                    field_name=field,
                    field_schema=schema,
                    wait=True,
                )
        return name

    def _switch_alias(self, new: str, old: str | None) -> None:
        actions: list[Any] = []
        if old == self.alias:
            # A plain collection holds the alias's name (made by hand or by an older bookvec):
            # it must go before the alias can exist. Not atomic, and needed only once.
            self._drop(old)
        elif old is not None:
            actions.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        create = models.CreateAlias(collection_name=new, alias_name=self.alias)
        actions.append(models.CreateAliasOperation(create_alias=create))
        try:
            self._call(
                "switch the alias",
                self.client.update_collection_aliases,
                change_aliases_operations=actions,
            )
        except StoreError:  # a retried switch whose first attempt went through
            if self._physical() != new:
                raise

    def _drop(self, name: str) -> None:
        try:
            self._call("drop a collection", self.client.delete_collection, name)
        except BookvecError:
            pass  # best effort: an orphan collection costs space, not correctness

    def _upload(
        self,
        collection: str,
        batches: Iterable[list[Prepared]],
        progress: Progress | None,
    ) -> None:
        """Upload in requests of `batch_size` points, `parallel` requests in flight, each with
        `wait=True`. A point id already in flight waits for those requests to finish first, so
        of a title sent twice the later version is the one stored."""
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        workers = 1 if self.local else max(1, self.options.parallel)
        in_flight: dict[Future[None], tuple[int, frozenset[str]]] = {}
        busy: set[str] = set()

        def settle(block_until_empty: bool = False) -> None:
            while in_flight:
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    count, ids = in_flight.pop(future)
                    busy.difference_update(ids)
                    future.result()
                    if progress is not None:
                        progress(count)
                if not block_until_empty and len(in_flight) < 2 * workers:
                    return

        def send(items: list[Prepared]) -> None:
            points = [
                models.PointStruct(id=item.id, vector=_point_vector(item), payload=item.payload)
                for item in items
            ]
            self._call(
                "upload points",
                self.client.upsert,
                collection_name=collection,
                points=points,
                wait=True,
            )

        from bookvec.signals import block_in_this_thread

        with ThreadPoolExecutor(
            workers, thread_name_prefix="bookvec-upload", initializer=block_in_this_thread
        ) as pool:
            try:
                for prepared in batches:
                    for request in batched(prepared, self.options.batch_size):
                        ids = frozenset(item.id for item in request)
                        if ids & busy:
                            settle(block_until_empty=True)
                        in_flight[pool.submit(send, request)] = (len(request), ids)
                        busy |= ids
                        if len(in_flight) >= 2 * workers:
                            settle()
                settle(block_until_empty=True)
            finally:
                for future in in_flight:
                    future.cancel()

    # --- helpers -------------------------------------------------------------------------------
    def _query(
        self, query: Any, limit: int, flt: BookFilter | None, exclude_ids: Sequence[str]
    ) -> list[Hit]:
        response = self._call(
            "search",
            self.client.query_points,
            collection_name=self.alias,
            query=query,
            query_filter=filters.to_server(flt, exclude_ids),
            search_params=self._search_params(),
            limit=check_limit(limit),
            with_payload=True,
            with_vectors=False,
        )
        return hits(response.points)

    def _has_sparse(self) -> bool:
        if self._sparse is None:
            self.info()
        return bool(self._sparse)

    def _both_vectors(self, titles: Sequence[str]) -> list[Any]:
        """(dense, sparse) of each title, in order; sparse None where the book has none."""
        records = self.get(titles, with_vectors=True)
        missing = first_missing(titles, records.keys())
        if missing is not None:
            raise missing
        return [(records[t].vector, records[t].sparse) for t in titles]

    def _by_mode(
        self,
        mode: str,
        dense: Sequence[float],
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
        flt: BookFilter | None,
        exclude_ids: Sequence[str],
        diverse: bool,
    ) -> list[Hit]:
        """A search in `mode` (hybrid.py builds the query), optionally diversified by MMR."""
        hybrid.check_mode(mode)
        if mode != "dense" and not self._has_sparse():
            raise StoreError(
                f"collection {self.alias!r} holds no sparse vectors (it was indexed before "
                "they existed, or without)",
                hint="run `bookvec index` to rebuild it, or search with --mode dense",
            )
        if hybrid.nothing_to_search(mode, sparse):
            return []
        kwargs = hybrid.server_query(
            mode,
            list(dense),
            sparse,
            limit=check_limit(limit),
            flt=filters.to_server(flt, exclude_ids),
            params=self._search_params(),
            diverse=diverse,
            spec=self.hybrid,
        )
        response = self._call(
            "search",
            self.client.query_points,
            collection_name=self.alias,
            with_payload=True,
            with_vectors=False,
            **kwargs,
        )
        return hits(response.points)

    def _search_params(self) -> Any:
        if self.local:
            return None
        if self._params is None:
            self.info()  # reads the collection's settings once per handle
        return self._params

    def _vector_size(self) -> int:
        if self._size is None:
            info = self.info()
            if info is None:
                raise self._no_collection()
            self._size = info.vector_size
        return self._size

    def _raise_missing(self, titles: Sequence[str], exc: BookvecError) -> NoReturn:
        missing = first_missing(titles, self.get(titles).keys())
        if missing is not None:
            raise missing from exc
        raise exc

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"collection {self.alias!r} was opened read-only",
                hint="open it without read_only to change it",
            )

    def _no_collection(self) -> DataNotFoundError:
        return DataNotFoundError(
            f"no collection {self.alias!r} at {self.location or 'the Qdrant server'}",
            hint="run `bookvec index` first",
        )

    def _call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """One client call, retried when transient, its failure turned into a bookvec error."""
        try:
            return self._retry.call(fn, *args, **kwargs)
        except BookvecError:
            raise
        except Exception as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: Exception) -> BookvecError:
        where = self.location or "the Qdrant server"
        text = message_of(exc)
        status = status_of(exc)
        attempts = f"{self._retry.retries + 1} attempts"
        if is_transient(exc) and status is not None and status >= 500:
            return StoreError(
                f"Qdrant at {where} failed to {what} ({status}) after {attempts}: {text}",
                hint="the server is unwell: check its logs, then run the command again",
            )
        if is_transient(exc) and _timed_out(exc):
            return StoreError(
                f"Qdrant at {where} timed out ({what}): no answer within "
                f"{self.options.timeout} s, after {attempts}",
                hint=f"check that the server is up and not overloaded, or raise {ENV_TIMEOUT} "
                f"(seconds, now {self.options.timeout})",
            )
        if is_transient(exc):
            return StoreError(
                f"cannot reach Qdrant at {where}: it did not answer ({what}) after "
                f"{attempts}: {text}",
                hint="check the URL (--url / BOOKVEC_QDRANT_URL), start the server "
                "(`docker compose up -d`), or unset BOOKVEC_QDRANT_URL to use the embedded store",
            )
        if status == 401:
            given = bool(self.client.init_options.get("api_key"))
            return StoreError(
                f"Qdrant at {where} refused to {what} (401): "
                + ("the API key is wrong" if given else "it needs an API key"),
                hint="set BOOKVEC_QDRANT_API_KEY (or --api-key) to the server's API key",
            )
        if status == 403:
            return StoreError(
                f"Qdrant at {where} refused to {what} (403): the API key may not do that",
                hint="set BOOKVEC_QDRANT_API_KEY to a key that may (a read-only key cannot write)",
            )
        if "Collection `" in text or text.startswith("Collection "):
            return self._no_collection()
        shape = _wrong_shape(exc)
        if shape:
            return StoreError(
                f"Qdrant at {where} answered ({what}) with a reply of the wrong shape: {shape}",
                hint="check that the URL is a Qdrant server's REST port (6333 by default), "
                "version 1.16 or newer",
            )
        return StoreError(f"Qdrant at {where} could not {what}: {' '.join(text.split())[:300]}")


def _wrong_shape(exc: Exception) -> str | None:
    """A reply that is not JSON, or JSON not of the shape qdrant-client expects: one line."""
    import json

    from pydantic import ValidationError

    source = getattr(exc, "source", None) if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, ValidationError):
        first = source.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the reply"
        return f"{source.error_count()} problem(s), first {where}: {first.get('msg', '')}"
    if isinstance(source, json.JSONDecodeError):
        return f"not JSON ({source.msg} at character {source.pos})"
    if isinstance(source, (AttributeError, KeyError, TypeError, IndexError)):
        return f"{type(source).__name__}: {' '.join(str(source).split())[:200]}"
    return None


def _timed_out(exc: Exception) -> bool:
    """A transient failure that is a timeout (not a refused or dropped connection)."""
    import httpx

    source = getattr(exc, "source", exc)  # ResponseHandlingException wraps the httpx error
    if isinstance(source, (httpx.TimeoutException, TimeoutError)):
        return True
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"


def _search_params(options: IndexOptions) -> models.SearchParams:
    quantization = None
    if options.quantization == "int8":
        quantization = models.QuantizationSearchParams(rescore=True, oversampling=2.0)
    return models.SearchParams(hnsw_ef=options.hnsw_ef, quantization=quantization)


def _sparse_config(options: IndexOptions) -> dict[str, Any] | None:
    if not options.has_sparse:
        return None
    modifier = models.Modifier.IDF if options.sparse == "idf" else None
    return {hybrid.SPARSE: models.SparseVectorParams(modifier=modifier)}


def _point_vector(item: Prepared) -> Any:
    if item.sparse is None:
        return item.vector
    indices, values = item.sparse
    return {"": item.vector, hybrid.SPARSE: models.SparseVector(indices=indices, values=values)}


def _fits(items: list[Prepared], has_sparse: bool, where: object) -> list[Prepared]:
    sparse_vectors_fit(items, has_sparse, where)
    return items


def _check_layout(shards: int | None, replicas: int | None) -> None:
    for name, value in (("--shards", shards), ("--replicas", replicas)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")


def _shown(location: str) -> str:
    """The server's URL as every message and `info` show it: credentials masked."""
    from bookvec.safetext import mask_url

    return mask_url(location) or ""
