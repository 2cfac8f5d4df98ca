"""The embedded backend: Qdrant Edge shards on disk, one generation directory each.

Edge has no collections, aliases, query-by-id or server-side recommend by id, so this module
adds them: the collection's model version lives in `bookvec.json` beside the shard, a full
reindex builds a new generation and switches CURRENT (see generations.py), search-like and
recommend retrieve the stored vectors first and exclude the examples with a `must_not` HasId.

Shards are created with the WAL off: with it on, Edge locks the directory for one process
and a `bookvec search` could not run while another process has the store open. Every write
ends with flush(); the locks in generations.py keep writers apart and readers safe.

Writing fast: what a bulk load costs per point is mostly turning the payload into Edge's
(qdrant-edge-py tries bool, u64, i64 and f64 before str, raising and discarding a Python
TypeError each time: ~2.7 us per string value, ~6 us per one-element list on this machine,
~30 us for a book's payload) and Edge's own insert (~20 us with five payload indexes). The
insert releases the GIL, so `_write` converts batch k+1 while Edge writes batch k.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import qdrant_edge as edge

from bookvec import disk
from bookvec.errors import (
    ConfigError,
    DataNotFoundError,
    DiskFullError,
    Interrupted,
    StoreError,
    StoreLockedError,
)
from bookvec.indexer import filters, hybrid
from bookvec.indexer import title_index as title_keys
from bookvec.indexer.catalogue import (
    SOURCE_FIELD,
    UPSERTED,
    CatalogueLog,
    UpsertedBook,
    book_from_payload,
    is_upserted,
    sorted_books,
)
from bookvec.indexer.generations import (
    SHARD,
    GenerationMeta,
    Layout,
    Opened,
    copy_tree,
    id_checksum,
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
    recommend_vector,
    sparse_vectors_fit,
)
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

SCROLL_PAGE = 1000
# Edge's defaults, in KB of vectors: HNSW is built only for segments above INDEXING_THRESHOLD_KB
# (by optimize()), and a filtered search that matches fewer than FULL_SCAN_THRESHOLD_KB worth of
# points scores them exactly through the payload index instead of walking the graph.
INDEXING_THRESHOLD_KB = 10_000
FULL_SCAN_THRESHOLD_KB = 10_000
# Opening a generation checks its point count (one exact count); the id checksum too up to this
# many points (a scroll of ids: ~N us per point).
VERIFY_IDS_UP_TO = 200_000
FRESH_SHARD = 100 << 20  # bytes a new, empty shard preallocates (97 MB apparent for 50-d)


UNSEEN = (-1, -1)  # a pointer stamp no file has: the next call opens the store


# A filtered sparse search whose filter matches fewer points than this scores them one by one;
# above it, it walks the inverted index checking the filter. At 37k books with a genre filter
# (~3.7k books) the first takes 2.5 ms (Edge's default threshold, 5,000), the second 0.48 ms
# (thresholds 1,000 and 100 alike): the posting lists of a book's links are short.
SPARSE_FULL_SCAN_THRESHOLD = 100


def indexing_threshold(vector_size: int) -> int:
    """How many points of this size a segment needs before optimize() builds HNSW for it."""
    return INDEXING_THRESHOLD_KB * 1024 // (4 * vector_size)


class EdgeStore:
    backend = "edge"

    def __init__(
        self,
        root: Path,
        *,
        collection: str,
        read_only: bool = False,
        open_wait: float = 30.0,
        recover: bool = False,
    ) -> None:
        self.root = Path(root)
        self.collection = collection
        self.read_only = read_only
        self.recover = recover  # a damaged store opens as empty (for a full reindex)
        self.damaged: str | None = None  # why, when it did
        self._layout = Layout(self.root)
        self._catalogue = CatalogueLog(self.root)
        self._open_wait = open_wait
        self._live: Opened | None = None
        self._shard: edge.EdgeShard | None = None
        self._stamp: tuple[int, int] | None = UNSEEN
        self._params: edge.SearchParams | None = None
        self._ef_override: int | None = None
        self._writing: Path | None = None  # the shard directory `_changing` is writing to
        self._published = False  # whether the last `_changing` published its copy
        self._scratch: Path | None = None  # a private copy of a read-only shard (see below)
        self._scratch_next: Path | None = None
        self.hybrid = hybrid.DEFAULT_HYBRID  # how hybrid and diverse queries are built
        self._follow()

    # --- reading -------------------------------------------------------------------------------
    def info(self) -> CollectionInfo | None:
        self._follow()
        if self._live is None or self._shard is None:
            return None
        shard_info = self._shard.info()
        return CollectionInfo(
            name=self.collection,
            backend=self.backend,
            model_version=self._live.meta.model_version,
            vector_size=self._live.meta.vector_size,
            points=self.count(),
            location=str(self._live.path),
            index=IndexOptions.from_dict(self._live.meta.index),
            indexed_vectors=shard_info.indexed_vectors_count,
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
        live, shard = self._require()
        query = check_vector(vector, live.meta.vector_size, what="the query vector")
        excluded = [point_id(t) for t in exclude_titles]
        if mode == "dense" and not diverse:
            return self._nearest(shard, query, limit, filter, excluded)
        pair = None if sparse is None else check_sparse(sparse, what="the sparse query")
        return self._by_mode(shard, mode, query, pair, limit, filter, excluded, diverse)

    def search_like(
        self,
        title: str,
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        _, shard = self._require()
        if mode == "dense" and not diverse:
            vectors = self._vectors(shard, [title])
            return self._nearest(shard, vectors[0], limit, filter, [point_id(title)])
        [(dense, sparse)] = self._both_vectors(shard, [title])
        return self._by_mode(shard, mode, dense, sparse, limit, filter, [point_id(title)], diverse)

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
        _, shard = self._require()
        excluded = list(ids_by_title([*positive, *negative]).values())
        if mode == "dense" and not diverse:
            vectors = self._vectors(shard, [*positive, *negative])
            query = recommend_vector(vectors[: len(positive)], vectors[len(positive) :])
            return self._nearest(shard, query, limit, filter, excluded)
        dense, sparse = recommend_both(self._both_vectors(shard, [*positive, *negative]), positive)
        return self._by_mode(shard, mode, dense, sparse, limit, filter, excluded, diverse)

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]:
        _, shard = self._require()
        ids = ids_by_title(titles)
        found: dict[str, Any] = {}
        for batch in batched(list(ids.values()), SCROLL_PAGE):
            for rec in shard.retrieve(batch, with_payload=True, with_vector=with_vectors):
                found[str(rec.id)] = rec
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
        _, shard = self._require()
        return shard.count(edge.CountRequest(exact=True, filter=filters.to_edge(filter)))

    def title_keys(self):
        """The live generation's title-key index (bookvec.titlekeys.TitleKeys; the caller
        closes it), or None when it has none that matches the shard."""
        live, shard = self._require()
        return title_keys.open_for(live.path, shard)

    def titles(self) -> list[str]:
        _, shard = self._require()
        titles: list[str] = []
        offset = None
        while True:
            request = edge.ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, with_payload=["title"], with_vector=False
            )
            records, offset = shard.scroll(request)
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
        _one_shard(shards, replicas)
        self._follow()
        if self._live is None:
            self._check_writable()
            with self._layout.writing():
                self._follow()  # another process may have created it meanwhile
                if self._live is None:
                    self._build((), vector_size, model_version, None, options)
        meta = self._live.meta if self._live else None
        if meta is not None:
            check_model(meta.model_version, meta.vector_size, model_version, vector_size, self.root)

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
        """Build a new generation beside the live one, then switch CURRENT to it."""
        _one_shard(shards, replicas)
        self._check_writable()
        with self._layout.writing():
            self._build(points, vector_size, model_version, progress, options, compact=True)
        return self.count()

    def upsert(
        self,
        points: Iterable[BookPoint],
        *,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> UpsertReport:
        """Streamed in batches: each batch is checked, compared with the stored content hashes,
        and its new or changed points written. Nothing is locked or copied until a batch has
        something to write; then one lock, at most one copy and one flush for the whole call."""
        if not dry_run:
            self._check_writable()
        live, shard = self._require()
        size = live.meta.vector_size
        has_sparse = IndexOptions.from_dict(live.meta.index).has_sparse
        report = UpsertReport(0, 0, 0)
        batches = iter(batched(points))
        first: list[Prepared] = []
        first_stored: dict[str, str | None] = {}
        for batch in batches:
            items = dedupe(prepare_batch(batch, size))
            sparse_vectors_fit(items, has_sparse, self.root)
            first_stored = _stored_hashes(shard, items)
            first, counts = classify(items, first_stored)
            report = report + counts
            if first and not dry_run:
                break
        if not first or dry_run:
            return report

        first_new = [item.id for item in first if item.id not in first_stored]
        stored = 0
        delta = title_keys.TitleDelta()

        def count(n: int) -> None:
            nonlocal stored
            stored += n
            if progress is not None:
                progress(n)

        try:
            with self._changing(delta=delta) as (target, toggled):

                def logged(items: list[Prepared], new_ids: list[str]) -> list[Prepared]:
                    self._catalogue.append_puts((item.title, item.payload) for item in items)
                    toggled.extend(new_ids)  # the catalogue first: a crash after it loses nothing
                    return items

                def to_write() -> Iterator[list[Prepared]]:
                    nonlocal report
                    yield logged(first, first_new)
                    for batch in batches:
                        items = dedupe(prepare_batch(batch, size))
                        sparse_vectors_fit(items, has_sparse, self.root)
                        stored_hashes = _stored_hashes(target, items)
                        changed, counts = classify(items, stored_hashes)
                        report = report + counts
                        if changed:
                            yield logged(
                                changed, [i.id for i in changed if i.id not in stored_hashes]
                            )

                noted = title_keys.noting_titles(to_write(), delta.added)
                _write(target, noted, count, room=self._writing)
        except KeyboardInterrupt:
            # the whole batches written before it are published (see _changing), or nothing
            kept = stored if self._published else 0
            raise Interrupted(f"{kept} points stored before the interruption", done=kept) from None
        return report

    def delete(self, titles: Iterable[str]) -> int:
        self._check_writable()
        _, shard = self._require()
        by_title = ids_by_title(titles)
        ids = list(by_title.values())
        existing = [
            str(rec.id) for rec in shard.retrieve(ids, with_payload=False, with_vector=False)
        ]
        if existing:
            titles_of = {pid: title for title, pid in by_title.items()}
            delta = title_keys.TitleDelta(removed=[titles_of[pid] for pid in existing])
            with self._changing(deleting=len(existing), delta=delta) as (target, toggled):
                self._catalogue.append_deletes(titles_of[pid] for pid in existing)
                toggled.extend(existing)
                target.update(edge.UpdateOperation.delete_points(existing))
        return len(existing)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer lock across several calls: a reindex reads the catalogue and
        writes the new generation under one lock, so no upsert of another process can land
        in between and be left out (it fails fast with StoreLockedError instead)."""
        self._check_writable()
        with self._layout.writing():
            yield

    def upserted(self) -> list[UpsertedBook]:
        """The catalogue: every book upserted (source "upsert"), with its cleaned links and
        payload, by title. From the log beside the generations (readable when the shard is
        damaged); a store written before the log existed: from its points."""
        if self._catalogue.exists():
            books = self._catalogue.replay()
            return sorted_books(book_from_payload(t, p) for t, p in books.items())
        self._follow()
        if self._shard is None:
            return []
        return sorted_books(book_from_payload(t, p) for t, p in _scan_upserted(self._shard))

    def apply_changes(
        self,
        upserts: Iterable[BookPoint],
        deletes: Iterable[str],
        *,
        model_version: str,
        progress: Progress | None = None,
    ) -> None:
        """Write ``upserts``, delete ``deletes`` and record ``model_version``, on a copy of
        the live generation published when complete (``bookvec.indexer.incremental``). Always
        a copy, even when alone: the model version changes, so readers must switch from the
        old generation to the new one in one step."""
        self._check_writable()
        with self._layout.writing():
            live, _ = self._require()
            size = live.meta.vector_size
            deletes = list(deletes)
            ids = list(ids_by_title(deletes).values())
            build = self._layout.new_build()
            try:
                _, _, apparent = disk.sparse_sizes(live.path / SHARD)
                disk.require(self.root, apparent, what="copying the store to change it")
                copy_tree(live.path / SHARD, build / SHARD)
                title_keys.copy_for(live.path, build)
                copy = _load(build / SHARD)
                try:
                    before = title_keys.exact_count(copy)
                    delta = title_keys.TitleDelta(removed=list(deletes))
                    has_sparse = IndexOptions.from_dict(live.meta.index).has_sparse
                    items = (
                        _fits(dedupe(prepare_batch(batch, size)), has_sparse, build)
                        for batch in batched(upserts)
                    )
                    noted = title_keys.noting_titles(items, delta.added)
                    _write(copy, noted, progress, room=build / SHARD)
                    for batch in batched(ids, SCROLL_PAGE):
                        copy.update(edge.UpdateOperation.delete_points(batch))
                    copy = _optimized(copy, build / SHARD, size)
                    copy.flush()
                    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    changed = replace(live.meta, model_version=model_version, created=created)
                    meta = _census_meta(changed, copy)  # counts and id checksum of the result
                    title_keys.update_for(build, copy, before, delta)
                finally:
                    copy.close()
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            # the removals are intended (books that left the corpus): the old generation goes
            self._publish(build, meta)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- generations ---------------------------------------------------------------------------
    def _follow(self) -> None:
        """Move to the live generation if CURRENT was replaced since the last call (one stat)."""
        stamp = self._layout.pointer_stamp()
        if stamp == self._stamp:
            return
        if self._live is not None and self._layout.live_name() == self._live.name:
            self._stamp = stamp
            return
        try:
            opened = self._layout.open_live(wait=self._open_wait)
        except StoreLockedError:
            raise
        except StoreError as exc:
            if not self.recover:
                raise
            self._drop()
            self.damaged, self._stamp = str(exc), stamp
            return
        shard = None
        if opened is not None:
            try:
                copy = False
                if os.access(opened.path / SHARD, os.W_OK):  # a read-only one is copied first
                    try:
                        _room(opened.path / SHARD, 0, what="opening the store", grows=False)
                    except DiskFullError:
                        if not self.read_only:
                            raise
                        copy = True  # to read, a copy elsewhere touches no hole of this disk
                shard, self._scratch_next = _load_for_reading(
                    opened.path / SHARD, self.read_only, copy=copy
                )
                _verify(opened, shard)
            except StoreLockedError:
                opened.lock.close()
                raise
            except StoreError as exc:
                if shard is not None:
                    shard.close()
                opened.lock.close()
                if not self.recover:
                    raise
                self.damaged, opened, shard = str(exc), None, None
            except BaseException:
                if shard is not None:
                    shard.close()
                opened.lock.close()
                raise
        scratch, self._scratch_next = self._scratch_next, None
        self._drop()
        self._live, self._shard, self._stamp, self._scratch = opened, shard, stamp, scratch
        self._set_params()

    def _set_params(self) -> None:
        if self._live is None:
            self._params = None
            return
        options = IndexOptions.from_dict(self._live.meta.index)
        if self._ef_override is not None:
            options = replace(options, hnsw_ef=self._ef_override)
        self._params = _search_params(options)

    def set_hnsw_ef(self, ef: int | None) -> None:
        """Search through this handle with another hnsw_ef (None: the collection's own).
        For measuring recall curves; the stored setting is unchanged."""
        self._ef_override = ef
        self._set_params()

    def _require(self) -> tuple[Opened, edge.EdgeShard]:
        self._follow()
        if self._live is None or self._shard is None:
            raise DataNotFoundError(
                f"no books indexed yet in {self.root}", hint="run `bookvec index` first"
            )
        return self._live, self._shard

    def _drop(self) -> None:
        if self._shard is not None:
            self._shard.close()
        if self._live is not None:
            self._live.lock.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._live, self._shard, self._stamp, self._scratch = None, None, UNSEEN, None

    def _build(
        self,
        points: Iterable[BookPoint],
        vector_size: int,
        model_version: str,
        progress: Progress | None,
        options: IndexOptions | None,
        *,
        compact: bool = False,
    ) -> None:
        """A complete new generation from scratch, published at the end. Under `writing`.
        `compact`: a full reindex, after which the catalogue log holds what it wrote."""
        options = options or IndexOptions()
        build = self._layout.new_build()
        try:
            upserted: dict[str, dict[str, Any]] = {}
            titles: list[str] = []

            def noted(batch: list[Prepared]) -> list[Prepared]:
                for item in batch:
                    if is_upserted(item.payload):
                        upserted[item.title] = item.payload
                    else:
                        upserted.pop(item.title, None)
                return batch

            with disk.guard(self.root, what="building the store"):
                # Edge touches the files it preallocates as it creates them: room for a shard
                # the size of the live one first (SIGBUS otherwise)
                live = self._live.path / SHARD if self._live is not None else None
                apparent = disk.sparse_sizes(live)[2] if live is not None else 0
                disk.require(self.root, max(apparent, FRESH_SHARD), what="building the store")
                shard = _create(build / SHARD, vector_size, options)
                try:
                    size = vector_size
                    items = (
                        noted(_fits(dedupe(prepare_batch(b, size)), options.has_sparse, build))
                        for b in batched(points)
                    )
                    _write(
                        shard,
                        title_keys.noting_titles(items, titles),
                        progress,
                        room=build / SHARD,
                    )
                    # Edge builds HNSW only here, and only for segments above the indexing
                    # threshold (~51k 50-d points); below it every search is exact.
                    shard = _optimized(shard, build / SHARD, vector_size)
                    shard.flush()
                    count, ids = _census(shard)
                    title_keys.write_for(build, shard, titles)
                finally:
                    shard.close()  # a second close is harmless
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        meta = GenerationMeta(
            model_version, vector_size, created, index=options.to_dict(), points=count, ids=ids
        )
        self._publish(build, meta)
        if compact:  # the catalogue is now what the new generation holds
            self._catalogue.rewrite(upserted.items())

    @contextmanager
    def _changing(
        self, *, deleting: int = 0, delta: title_keys.TitleDelta | None = None
    ) -> Iterator[tuple[edge.EdgeShard, list[str]]]:
        """A copy of the live shard to write to, published when the block ends; the live
        generation is never written in place (with the WAL off, a crash mid-write would leave
        the only copy half-changed). Yields the copy and a list the block extends with the ids
        it adds or removes (for the generation's id checksum). If the block fails after
        writing whole batches, those are published before the error goes on (a streamed
        upsert keeps the batches before a bad one; running it again completes it). `delta`: the
        titles the block adds and removes, for the title-key index (indexer/title_index.py)."""
        delta = delta or title_keys.TitleDelta()
        with self._layout.writing():
            live, _ = self._require()
            if not self._catalogue.exists():  # a store from before the log: seed it once
                self._catalogue.rewrite(_scan_upserted(self._shard))
            size = live.meta.vector_size
            self._published = False
            build = self._layout.new_build()
            toggled: list[str] = []
            failure: BaseException | None = None
            copy = None
            try:
                with disk.guard(self.root, what="copying the store to change it"):
                    _, _, apparent = disk.sparse_sizes(live.path / SHARD)
                    disk.require(self.root, apparent, what="copying the store to change it")
                    copy_tree(live.path / SHARD, build / SHARD)
                    title_keys.copy_for(live.path, build)
                    copy = _load(build / SHARD)
                    before = title_keys.exact_count(copy)
                    self._writing = build / SHARD
                    try:
                        try:
                            yield copy, toggled
                        except BaseException as exc:  # noqa: BLE001 - re-raised below
                            failure = exc
                            if disk.is_full(exc):
                                failure = disk.full(self.root, what="writing to the store")
                        if failure is None:  # HNSW once the shard outgrows the threshold
                            copy = _optimized(copy, build / SHARD, size)
                        if failure is None or toggled:
                            copy.flush()
                            if failure is None:
                                title_keys.update_for(build, copy, before, delta)
                            else:  # which titles made it is unknown: readers list them
                                title_keys.drop_for(build)
                            meta = (
                                _changed_meta(live.meta, copy, toggled, deleting)
                                if failure is None
                                else _census_meta(live.meta, copy)
                            )
                    finally:
                        copy.close()  # a second close is harmless
            except BaseException:
                if copy is not None:
                    copy.close()  # a second close is harmless
                shutil.rmtree(build, ignore_errors=True)
                if failure is not None:
                    raise failure from None
                raise
            if failure is not None and not toggled:
                shutil.rmtree(build, ignore_errors=True)
                raise failure
            floor = meta.points + deleting if meta.points is not None else None
            self._publish(build, meta, floor=floor, superseded=live.name)
            self._published = True
            if failure is not None:
                raise failure

    def _publish(
        self,
        build: Path,
        meta: GenerationMeta,
        *,
        floor: int | None = None,
        superseded: str | None = None,
    ) -> None:
        try:
            with disk.guard(self.root, disk.MB, what="publishing the new generation"):
                name = self._layout.publish(build, meta)
        except BaseException:
            if build.exists():  # not renamed: the old generation stays live
                shutil.rmtree(build, ignore_errors=True)
            raise
        self.damaged = None
        self._follow()
        self._layout.collect_garbage(keep=name, floor=floor, superseded=superseded)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"the store at {self.root} was opened read-only",
                hint="open it without read_only to change it",
            )

    # --- queries -------------------------------------------------------------------------------
    def _vectors(self, shard: edge.EdgeShard, titles: Sequence[str]) -> list[list[float]]:
        ids = ids_by_title(titles)
        records = shard.retrieve(list(ids.values()), with_payload=False, with_vector=True)
        by_id = {str(rec.id): hybrid.split_vector(rec.vector)[0] for rec in records}
        missing = first_missing(titles, [t for t, pid in ids.items() if pid in by_id])
        if missing is not None:
            raise missing
        return [by_id[point_id(title)] for title in titles]

    def _both_vectors(self, shard: edge.EdgeShard, titles: Sequence[str]) -> list[Any]:
        """(dense, sparse) of each title, in order; sparse None where the book has none."""
        ids = ids_by_title(titles)
        records = shard.retrieve(list(ids.values()), with_payload=False, with_vector=True)
        by_id = {str(rec.id): hybrid.split_vector(rec.vector) for rec in records}
        missing = first_missing(titles, [t for t, pid in ids.items() if pid in by_id])
        if missing is not None:
            raise missing
        return [by_id[point_id(title)] for title in titles]

    def _by_mode(
        self,
        shard: edge.EdgeShard,
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
        if mode != "dense" and not IndexOptions.from_dict(self._live.meta.index).has_sparse:
            raise _no_sparse(self.root)
        if hybrid.nothing_to_search(mode, sparse):
            return []
        request = hybrid.edge_request(
            mode,
            list(dense),
            sparse,
            limit=check_limit(limit),
            flt=filters.to_edge(flt, exclude_ids),
            params=self._params,
            diverse=diverse,
            spec=self.hybrid,
        )
        return hits(shard.query(request))

    def _nearest(
        self,
        shard: edge.EdgeShard,
        vector: Sequence[float],
        limit: int,
        flt: BookFilter | None,
        exclude_ids: Sequence[str],
    ) -> list[Hit]:
        request = edge.QueryRequest(
            limit=check_limit(limit),
            query=edge.Query.Nearest(list(vector)),
            filter=filters.to_edge(flt, exclude_ids),
            params=self._params,
            with_payload=True,
            with_vector=False,
        )
        return hits(shard.query(request))


def _no_sparse(where: object) -> StoreError:
    return StoreError(
        f"{where} holds no sparse vectors (it was indexed before they existed, or without)",
        hint="run `bookvec index` to rebuild it, or search with --mode dense",
    )


def _fits(items: list[Prepared], has_sparse: bool, where: object) -> list[Prepared]:
    sparse_vectors_fit(items, has_sparse, where)
    return items


def recommend_both(
    vectors: Sequence[Any], positive: Sequence[str]
) -> tuple[list[float], tuple[list[int], list[float]] | None]:
    """The average_vector rule on both sides: dense as Qdrant's, sparse by model.sparse's."""
    from bookvec.sparse import combine

    dense = [d for d, _ in vectors]
    sparse = [s for _, s in vectors]
    n = len(positive)
    query = recommend_vector(dense[:n], dense[n:])
    pos = [s for s in sparse[:n] if s is not None]
    neg = [s for s in sparse[n:] if s is not None]
    return query, (combine(pos, neg) if pos else None)


def _create(path: Path, vector_size: int, options: IndexOptions) -> edge.EdgeShard:
    vectors = edge.EdgeVectorParams(size=vector_size, distance=edge.Distance.Cosine)
    hnsw = edge.HnswIndexConfig(
        m=options.hnsw_m,
        ef_construct=options.hnsw_ef_construct,
        full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
    )
    quantization = None
    if options.quantization == "int8":
        quantization = edge.ScalarQuantizationConfig(
            type=edge.ScalarType.Int8, quantile=0.99, always_ram=True
        )
    sparse_vectors = None
    if options.has_sparse:
        modifier = edge.Modifier.Idf if options.sparse == "idf" else None
        params = edge.EdgeSparseVectorParams(
            modifier=modifier, full_scan_threshold=SPARSE_FULL_SCAN_THRESHOLD
        )
        sparse_vectors = {hybrid.SPARSE: params}
    config = edge.EdgeConfig(
        vectors=vectors,
        sparse_vectors=sparse_vectors,
        hnsw_config=hnsw,
        quantization_config=quantization,
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
        wal_enabled=False,
    )
    shard = edge.EdgeShard.create(str(path), config)
    for field in KEYWORD_FIELDS:  # payload indexes before the bulk load
        shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword))
    for field in INTEGER_FIELDS:
        shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Integer))
    return shard


def _search_params(options: IndexOptions) -> edge.SearchParams:
    """hnsw_ef for graph searches; with int8, candidates are rescored on the original vectors."""
    quantization = None
    if options.quantization == "int8":
        quantization = edge.QuantizationSearchParams(rescore=True, oversampling=2.0)
    return edge.SearchParams(hnsw_ef=options.hnsw_ef, quantization=quantization)


def _stored_hashes(shard: edge.EdgeShard, items: list[Prepared]) -> dict[str, str | None]:
    stored: dict[str, str | None] = {}
    for ids in batched([item.id for item in items], SCROLL_PAGE):
        for rec in shard.retrieve(ids, with_payload=["content_hash"], with_vector=False):
            stored[str(rec.id)] = (rec.payload or {}).get("content_hash")
    return stored


def _load_for_reading(
    path: Path, read_only: bool, *, copy: bool = False
) -> tuple[edge.EdgeShard, Path | None]:
    """Open a shard to read. Edge maps its files read-write even to read, so a shard on a
    read-only file system (or without write permission, or, with `copy`, on a disk too full
    for its preallocated holes) is copied to a private temporary directory first (sparse;
    removed on close): `bookvec search` works on a read-only home and a full disk."""
    import os
    import tempfile

    if not read_only or (os.access(path, os.W_OK) and not copy):
        return _load(path), None
    scratch = Path(tempfile.mkdtemp(prefix="bookvec-ro-"))
    try:
        copy_tree(path, scratch / SHARD)
        _room(scratch / SHARD, 0, what="reading a copy of the store", grows=False)
        return _load(scratch / SHARD), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _load(path: Path) -> edge.EdgeShard:
    try:
        return edge.EdgeShard.load(str(path))
    except Exception as exc:  # qdrant_edge raises plain Exception with a message
        if "WouldBlock" in str(exc):
            raise StoreLockedError(
                f"the embedded store at {path} is in use by another process",
                hint="close the other process that has it open, then run the command again",
            ) from exc
        why = {"(os error 30)": "Read-only file system", "(os error 13)": "Permission denied"}
        said = [text for code, text in why.items() if code in str(exc)]
        if said:  # read-only or no permission: not damage (no "rebuild" hint, no rebuild by index)
            raise ConfigError(
                f"the embedded store at {path.parent.parent} is read-only ({said[0]})",
                hint="make BOOKVEC_HOME writable to change the store; search, info, links, "
                "score and upsert --dry-run work read-only",
            ) from exc
        raise StoreError(
            f"cannot open the embedded store at {path}: {exc}",
            hint="rebuild it with `bookvec index`",
        ) from exc


def _write(
    shard: edge.EdgeShard,
    batches: Iterable[list[Prepared]],
    progress: Progress | None,
    *,
    room: Path | None = None,
) -> None:
    """Upsert batches, converting batch k+1 to Edge points (Python, holds the GIL) while Edge
    inserts batch k in a worker thread (Rust, releases the GIL). `progress` runs here, in the
    calling thread, once a batch is stored. `room`: the shard directory (or the store root,
    for the shard open here) whose disk must hold each batch before it is sent."""
    from concurrent.futures import Future, ThreadPoolExecutor

    pending: tuple[Future[None], int] | None = None

    def finish() -> None:
        nonlocal pending
        if pending is not None:
            future, count = pending
            future.result()
            pending = None
            if progress is not None:
                progress(count)

    from bookvec.signals import block_in_this_thread

    with ThreadPoolExecutor(
        1, thread_name_prefix="bookvec-edge-write", initializer=block_in_this_thread
    ) as pool:
        try:
            for items in batches:
                points = [edge.Point(item.id, _edge_vector(item), item.payload) for item in items]
                operation = edge.UpdateOperation.upsert_points(points)
                finish()
                if room is not None:
                    _room(room, len(items) * _point_bytes(items[0]), what="writing points")
                pending = (pool.submit(shard.update, operation), len(items))
            finish()
        finally:
            if pending is not None:  # failed or interrupted: let the running write end, and
                # count it if it was stored (an interrupted upsert says how many were)
                if pending[0].exception() is None and progress is not None:
                    progress(pending[1])


def _point_bytes(item: Prepared) -> int:
    """What one point may take on disk: its vector, its payload and their indexes (generous)."""
    return 8 * len(item.vector) + 4 * len(str(item.payload)) + 512


def _room(shard_dir: Path, need: int, *, what: str, grows: bool = True) -> None:
    """Enough free space for `need` more bytes in a shard: its preallocated holes (Edge may
    touch any of them, SIGBUS if the disk cannot give the page) and, when it `grows`, the
    biggest file it may add next, on top."""
    holes, biggest, _ = disk.sparse_sizes(shard_dir)
    disk.require(shard_dir, holes + (biggest if grows else 0) + need, what=what)


# A child process optimizes a shard big enough to get an HNSW graph: optimize() holds the GIL
# for its whole run (37 s at 80k points here), so in-process no Ctrl-C or SIGTERM could be
# handled until it ends. The child is in its own session: the terminal's Ctrl-C reaches only
# this process, which stops the child or lets it finish.
_OPTIMIZE = (
    "import sys, qdrant_edge as e\n"
    "s = e.EdgeShard.load(sys.argv[1]); s.optimize(); s.flush(); s.close()\n"
)


def _needs_index(shard: edge.EdgeShard, vector_size: int) -> bool:
    """Enough points outside any HNSW graph for optimize() to build one (a long job)."""
    info = shard.info()
    return info.points_count - info.indexed_vectors_count >= indexing_threshold(vector_size)


def _optimized(shard: edge.EdgeShard, path: Path, vector_size: int) -> edge.EdgeShard:
    """A build's shard (at `path`) after Edge's optimizers; Ctrl-C stops them at once."""
    if not _needs_index(shard, vector_size):
        shard.optimize()
        return shard
    shard.close()
    _optimize_in_child(path, in_place=False)
    return _load(path)


def _optimize_in_child(path: Path, *, in_place: bool) -> None:
    """optimize() the closed shard at `path` in a child process. Ctrl-C (or SIGTERM) kills
    it at once for a build that will be thrown away; for the live shard changed in place it
    lets it finish, saying so."""
    _, _, apparent = disk.sparse_sizes(path)
    disk.require(path, apparent, what="building the HNSW index")  # new segments: a copy
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [sys.executable, "-c", _OPTIMIZE, str(path)], start_new_session=True, stderr=log
        )
        try:
            _wait_for(child, in_place)
        except BaseException:
            if child.poll() is None:
                child.kill()
                child.wait()
            raise
        log.seek(0)
        error = log.read()[-4000:].decode(errors="replace")
    if child.returncode != 0:
        if disk.is_full(Exception(error)):
            raise disk.full(path, apparent, what="building the HNSW index")
        last = (error.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        raise StoreError(f"building the HNSW index of {path} failed: {last}")


def _wait_for(child: subprocess.Popen, in_place: bool) -> None:
    try:
        child.wait()
    except KeyboardInterrupt:
        if not in_place:
            raise
        warnings.warn(
            "finishing the HNSW index of the live store: it cannot be cut short safely "
            "(the books are stored; this takes under a minute per 100,000 books)",
            stacklevel=2,
        )
        while child.poll() is None:  # a second Ctrl-C waits too
            try:
                child.wait()
            except KeyboardInterrupt:
                continue


def _edge_vector(item: Prepared) -> Any:
    if item.sparse is None:
        return item.vector
    return {"": item.vector, hybrid.SPARSE: edge.SparseVector(*item.sparse)}


def _one_shard(shards: int | None, replicas: int | None) -> None:
    if (shards or 1) > 1 or (replicas or 1) > 1:
        raise ConfigError(
            "the embedded store has one shard and no replicas",
            hint="set BOOKVEC_QDRANT_URL to a Qdrant server (`docker compose --profile cluster "
            "up -d` starts three nodes) to shard or replicate",
        )


# --- the generation's census and the catalogue's points (issue 12) -----------------------------


def _census(shard: edge.EdgeShard) -> tuple[int, str]:
    """The point count and id checksum of a shard (one scroll of ids, no payloads)."""
    count, ids = 0, []
    offset = None
    while True:
        request = edge.ScrollRequest(
            offset=offset, limit=SCROLL_PAGE * 10, with_payload=False, with_vector=False
        )
        records, offset = shard.scroll(request)
        ids.extend(str(rec.id) for rec in records)
        count += len(records)
        if offset is None:
            return count, id_checksum(ids)


def _census_meta(meta: GenerationMeta, shard: edge.EdgeShard) -> GenerationMeta:
    count, ids = _census(shard)
    return replace(meta, points=count, ids=ids)


def _changed_meta(
    meta: GenerationMeta, shard: edge.EdgeShard, toggled: list[str], deleting: int
) -> GenerationMeta:
    """The copy's metadata: the live one's counts moved by what the write did, checked
    against the shard before anything is published."""
    if meta.points is None or meta.ids is None:  # written before counts were recorded
        return _census_meta(meta, shard)
    expected = meta.points - deleting if deleting else meta.points + len(toggled)
    count = shard.count(edge.CountRequest(exact=True))
    if count != expected:
        raise StoreError(
            f"the write left {count} points where {expected} were expected; nothing was published",
            hint="run the command again",
        )
    return replace(meta, points=count, ids=id_checksum(toggled, meta.ids))


def _verify(opened: Opened, shard: edge.EdgeShard) -> None:
    """A generation whose shard disagrees with its recorded count or ids is damaged."""
    meta = opened.meta
    if meta.points is None:
        return
    count = shard.count(edge.CountRequest(exact=True))
    found = None
    if count == meta.points and meta.ids is not None and count <= VERIFY_IDS_UP_TO:
        count, found = _census(shard)
    if count != meta.points or (found is not None and found != meta.ids):
        what = (
            f"{count:,} points of the {meta.points:,} recorded"
            if count != meta.points
            else ("point ids that do not match the recorded checksum")
        )
        raise StoreError(
            f"store damaged: the embedded store at {opened.path} holds {what}",
            hint="rebuild it with `bookvec index` (upserted books are kept in its catalogue)",
        )


def _scan_upserted(shard: edge.EdgeShard | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(title, payload) of the points whose source is "upsert"."""
    if shard is None:
        return
    condition = edge.FieldCondition(key=SOURCE_FIELD, match=edge.MatchValue(UPSERTED))
    offset = None
    while True:
        request = edge.ScrollRequest(
            offset=offset,
            limit=SCROLL_PAGE,
            filter=edge.Filter(must=[condition]),
            with_payload=True,
            with_vector=False,
        )
        records, offset = shard.scroll(request)
        for rec in records:
            payload = dict(rec.payload or {})
            yield payload["title"], payload
        if offset is None:
            return
