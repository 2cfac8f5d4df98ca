"""The server backend's writes (ServerStore's mixin): a full reindex into a new physical
collection whose alias is moved in one call, streamed upserts compared with the stored content
hashes, deletes, the catalogue (the upserted books, kept in the collection itself).

Uploads run `ServerOptions.parallel` requests at a time from a thread pool (each `wait=True`,
so a returned upsert is readable); local mode (`QdrantClient(":memory:")` / `path=`) gets one,
as it is not thread-safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from bookvec.errors import Interrupted, StoreError
from bookvec.indexer import hybrid
from bookvec.indexer.catalogue import (
    SOURCE_FIELD,
    UPSERTED,
    UpsertedBook,
    book_from_payload,
    sorted_books,
)
from bookvec.indexer.points import (
    Prepared,
    batched,
    check_model,
    classify,
    dedupe,
    fitting,
    ids_by_title,
    prepare_batch,
    sparse_vectors_fit,
)
from bookvec.indexer.server_client import PAGE, ServerClient, _check_layout, _search_params
from bookvec.indexer.types import (
    BookPoint,
    CollectionInfo,
    IndexOptions,
    Progress,
    Record,
    UpsertReport,
)


class ServerWrites(ServerClient):
    """Writes of ServerStore."""

    if TYPE_CHECKING:  # server.ServerStore's

        def info(self, *, count: bool = True) -> CollectionInfo | None: ...

        def get(
            self, titles: Iterable[str], *, with_vectors: bool = False
        ) -> dict[str, Record]: ...

        def _vector_size(self) -> int: ...

        def _has_sparse(self) -> bool: ...

        def _learn_weighting(self, weighting: str | None) -> None: ...

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
        self._sparse = options.has_sparse
        self._learn_weighting(options.sparse_weighting)
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
                fitting(dedupe(prepare_batch(batch, vector_size)), options.has_sparse, new)
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
        self._learn_weighting(options.sparse_weighting)
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

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"collection {self.alias!r} was opened read-only",
                hint="open it without read_only to change it",
            )


def _point_vector(item: Prepared) -> Any:
    if item.sparse is None:
        return item.vector
    indices, values = item.sparse
    return {"": item.vector, hybrid.SPARSE: models.SparseVector(indices=indices, values=values)}
