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

import os
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from qdrant_client import QdrantClient, models

from bookvec.errors import (
    BookvecError,
    ConfigError,
    DataNotFoundError,
    ModelMismatchError,
    StoreError,
)
from bookvec.indexer import filters
from bookvec.indexer.ids import point_id
from bookvec.indexer.points import (
    Prepared,
    batched,
    check_examples,
    check_limit,
    check_model,
    check_vector,
    classify,
    dedupe,
    first_missing,
    ids_by_title,
    prepare_batch,
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
        timeout = _env_int(ENV_TIMEOUT, cls.timeout, "a whole number of seconds", "10")
        parallel = _env_int(ENV_PARALLEL, cls.parallel, "a number of requests", "4")
        if parallel < 1:
            raise ConfigError(f"{ENV_PARALLEL} must be at least 1, not {parallel}")
        return cls(prefer_grpc=grpc, timeout=timeout, parallel=parallel)


def _env_int(name: str, default: int, what: str, example: str) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        hint = f"set it to e.g. {example}"
        raise ConfigError(f"{name}={raw!r} is not {what}", hint=hint) from None


def connect(url: str, api_key: str | None, options: ServerOptions) -> QdrantClient:
    # No compatibility check: it costs a request at every start and warns on stderr.
    extra = {} if options.https is None else {"https": options.https}
    return QdrantClient(
        url=url,
        api_key=api_key,
        prefer_grpc=options.prefer_grpc,
        timeout=options.timeout,
        check_compatibility=False,
        **extra,
    )


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
        self.location = str(init.get("url") or init.get("location") or init.get("path") or "")
        # Local mode searches exactly, ignores search params (and warns about them) and is not
        # thread-safe.
        self.local = bool(init.get("path")) or init.get("location") == ":memory:"
        self._size: int | None = None  # the collection's vector size, for checking queries
        self._params: Any = None  # search params of the collection (hnsw_ef, quantization)

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
    ) -> list[Hit]:
        try:
            query = check_vector(vector, self._vector_size(), what="the query vector")
        except ModelMismatchError:
            self._size = None  # reindexed with another model since we looked? look again
            query = check_vector(vector, self._vector_size(), what="the query vector")
        return self._query(query, limit, filter, [point_id(t) for t in exclude_titles])

    def search_like(
        self, title: str, *, limit: int = 10, filter: BookFilter | None = None
    ) -> list[Hit]:
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
    ) -> list[Hit]:
        check_examples(positive, negative)
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
                vector=list(found[pid].vector) if with_vectors else None,
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
            items = (dedupe(prepare_batch(batch, vector_size)) for batch in batched(points))
            self._upload(new, items, progress)
            self._switch_alias(new, old)
        except BaseException:
            self._drop(new)
            raise
        if old is not None and old not in (new, self.alias):
            self._drop(old)
        self._size = vector_size
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
        for batch in batched(points):
            items = dedupe(prepare_batch(batch, size))
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
                models.PointStruct(id=item.id, vector=item.vector, payload=item.payload)
                for item in items
            ]
            self._call(
                "upload points",
                self.client.upsert,
                collection_name=collection,
                points=points,
                wait=True,
            )

        with ThreadPoolExecutor(workers, thread_name_prefix="bookvec-upload") as pool:
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
        return [
            Hit(
                title=p.payload["title"],
                score=float(p.score),
                payload=dict(p.payload),
                id=str(p.id),
            )
            for p in response.points
        ]

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
        return StoreError(f"Qdrant at {where} could not {what}: {text}")


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


def _check_layout(shards: int | None, replicas: int | None) -> None:
    for name, value in (("--shards", shards), ("--replicas", replicas)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")
