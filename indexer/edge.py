"""The embedded backend: Qdrant Edge shards on disk, one generation directory each.

Edge has no collections or aliases, so the store adds them: the collection's model version
lives in `bookvec.json` beside the shard, and every write builds a new generation (a full
reindex from scratch, an upsert or delete on a copy of the live one) and switches CURRENT to it
(generations.py). EdgeStore is put together from its jobs:

- edge.py (here): the store, its writes of points (ensure_collection, replace_all, upsert,
  apply_changes) and the HNSW thresholds;
- edge_live.py: following the live generation, changing it by copy, delete, the catalogue;
- edge_read.py: searches, recommend, get, count, titles;
- edge_shard.py: one shard: create, load, write batches, optimize, census.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import qdrant_edge as edge

from bookvec import disk
from bookvec.errors import Interrupted
from bookvec.indexer import hybrid
from bookvec.indexer import title_index as title_keys
from bookvec.indexer.calibrate import CALIBRATION, calibrate, target_of, with_target
from bookvec.indexer.catalogue import CatalogueLog, is_upserted
from bookvec.indexer.edge_live import UNSEEN, EdgeLive
from bookvec.indexer.edge_read import EdgeReads
from bookvec.indexer.edge_shard import (  # noqa: F401 - _wait_for, _edge_vector: for callers
    SCROLL_PAGE,
    _census,
    _census_meta,
    _edge_vector,
    _load,
    _one_shard,
    _optimized,
    _stored_hashes,
    _wait_for,
    _write,
    create_shard,
    dense_indexed,
)
from bookvec.indexer.generations import (
    SHARD,
    GenerationMeta,
    Layout,
    Opened,
    copy_tree,
    record_verified,
)
from bookvec.indexer.points import (  # noqa: F401 - recommend_both: for callers
    Prepared,
    batched,
    check_model,
    classify,
    dedupe,
    fitting,
    ids_by_title,
    prepare_batch,
    recommend_both,
    sparse_vectors_fit,
)
from bookvec.indexer.types import BookPoint, IndexOptions, Progress, UpsertReport

# Edge's defaults, in KB of vectors: HNSW is built only for segments above INDEXING_THRESHOLD_KB
# (by optimize()), and a filtered search that matches fewer than FULL_SCAN_THRESHOLD_KB worth of
# points scores them exactly through the payload index instead of walking the graph.
INDEXING_THRESHOLD_KB = 10_000
FULL_SCAN_THRESHOLD_KB = 10_000
FRESH_SHARD = 100 << 20  # bytes a new, empty shard preallocates (97 MB apparent for 50-d)


def indexing_threshold(vector_size: int) -> int:
    """How many points of this size a segment needs before optimize() builds HNSW for it
    (without sparse vectors; with them, edge_shard.index_threshold may say fewer)."""
    return INDEXING_THRESHOLD_KB * 1024 // (4 * vector_size)


def _create(path: Path, vector_size: int, options: IndexOptions) -> edge.EdgeShard:
    return create_shard(
        path,
        vector_size,
        options,
        indexing_kb=INDEXING_THRESHOLD_KB,
        full_scan_kb=FULL_SCAN_THRESHOLD_KB,
    )


class EdgeStore(hybrid.HybridSpec, EdgeLive, EdgeReads):
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
        self._filtered_params: edge.SearchParams | None = None
        self._ef_override: int | None = None
        self._writing: Path | None = None  # the shard directory `_changing` is writing to
        self._published = False  # whether the last `_changing` published its copy
        self._scratch: Path | None = None  # a private copy of a read-only shard (edge_shard.py)
        self._scratch_next: Path | None = None
        self._follow()

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
                        fitting(dedupe(prepare_batch(batch, size)), has_sparse, build)
                        for batch in batched(upserts)
                    )
                    noted = title_keys.noting_titles(items, delta.added)
                    _write(copy, noted, progress, room=build / SHARD)
                    for batch in batched(ids, SCROLL_PAGE):
                        copy.update(edge.UpdateOperation.delete_points(batch))
                    copy, index = self._optimize(copy, build / SHARD, size, live.meta.index)
                    copy.flush()
                    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    changed = replace(
                        live.meta, model_version=model_version, created=created, index=index
                    )
                    meta = _census_meta(changed, copy)  # counts and id checksum of the result
                    title_keys.update_for(build, copy, before, delta)
                finally:
                    copy.close()
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            record_verified(build, meta)  # censused above, after the last write
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
                        noted(fitting(dedupe(prepare_batch(b, size)), options.has_sparse, build))
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
                    index = with_target(options.to_dict(), options.recall_target)
                    shard, index = self._optimize(shard, build / SHARD, vector_size, index)
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
            model_version, vector_size, created, index=index, points=count, ids=ids
        )
        record_verified(build, meta)  # the census above is the shard's: readers skip theirs
        self._publish(build, meta)
        if compact:  # the catalogue is now what the new generation holds
            self._catalogue.rewrite(upserted.items())

    def _optimize(
        self,
        shard: edge.EdgeShard,
        path: Path,
        vector_size: int,
        index: dict[str, Any],
    ) -> tuple[edge.EdgeShard, dict[str, Any]]:
        """The shard at `path` after Edge's optimizers (HNSW past the indexing threshold), and
        its index metadata `index`: with a recall target (calibrate.target_of) and a graph this
        write built or grew, hnsw_ef measured again."""
        target = target_of(index)
        before = dense_indexed(shard) if target is not None else 0
        shard = _optimized(shard, path, vector_size, INDEXING_THRESHOLD_KB * 1024)
        if target is None or dense_indexed(shard) <= before:
            return shard, index
        found = calibrate(shard, IndexOptions.from_dict(index), target)
        if not found.reached:
            warnings.warn(
                f"hnsw_ef {found.ef} reaches recall@10 {found.recall_at_10} (filtered: "
                f"{found.filtered_recall_at_10}), short of the target {target}; searches use it",
                stacklevel=2,
            )
        return shard, {**index, "hnsw_ef": found.ef, CALIBRATION: found.to_dict()}
