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

import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import qdrant_edge as edge

from bookvec.errors import ConfigError, DataNotFoundError, StoreError, StoreLockedError
from bookvec.indexer import filters
from bookvec.indexer import keys as title_keys
from bookvec.indexer.generations import SHARD, GenerationMeta, Layout, Opened, copy_tree
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
    recommend_vector,
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


def indexing_threshold(vector_size: int) -> int:
    """How many points of this size a segment needs before optimize() builds HNSW for it."""
    return INDEXING_THRESHOLD_KB * 1024 // (4 * vector_size)


class EdgeStore:
    backend = "edge"

    def __init__(
        self, root: Path, *, collection: str, read_only: bool = False, open_wait: float = 30.0
    ) -> None:
        self.root = Path(root)
        self.collection = collection
        self.read_only = read_only
        self._layout = Layout(self.root)
        self._open_wait = open_wait
        self._live: Opened | None = None
        self._shard: edge.EdgeShard | None = None
        self._stamp: tuple[int, int] | None = None
        self._params: edge.SearchParams | None = None
        self._ef_override: int | None = None
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
    ) -> list[Hit]:
        live, shard = self._require()
        query = check_vector(vector, live.meta.vector_size, what="the query vector")
        return self._nearest(shard, query, limit, filter, [point_id(t) for t in exclude_titles])

    def search_like(
        self, title: str, *, limit: int = 10, filter: BookFilter | None = None
    ) -> list[Hit]:
        _, shard = self._require()
        vectors = self._vectors(shard, [title])
        return self._nearest(shard, vectors[0], limit, filter, [point_id(title)])

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
    ) -> list[Hit]:
        check_examples(positive, negative)
        _, shard = self._require()
        vectors = self._vectors(shard, [*positive, *negative])
        query = recommend_vector(vectors[: len(positive)], vectors[len(positive) :])
        excluded = list(ids_by_title([*positive, *negative]).values())
        return self._nearest(shard, query, limit, filter, excluded)

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
                vector=list(found[pid].vector) if with_vectors else None,
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
            self._build(points, vector_size, model_version, progress, options)
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
        report = UpsertReport(0, 0, 0)
        batches = iter(batched(points))
        first: list[Prepared] = []
        for batch in batches:
            items = dedupe(prepare_batch(batch, size))
            first, counts = classify(items, _stored_hashes(shard, items))
            report = report + counts
            if first and not dry_run:
                break
        if not first or dry_run:
            return report

        delta = title_keys.TitleDelta()
        with self._changing(delta) as target:

            def to_write() -> Iterator[list[Prepared]]:
                nonlocal report
                yield first
                for batch in batches:
                    items = dedupe(prepare_batch(batch, size))
                    changed, counts = classify(items, _stored_hashes(target, items))
                    report = report + counts
                    if changed:
                        yield changed

            _write(target, title_keys.noting_titles(to_write(), delta.added), progress)
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
            found = set(existing)
            delta = title_keys.TitleDelta(removed=[t for t, i in by_title.items() if i in found])
            with self._changing(delta) as target:
                target.update(edge.UpdateOperation.delete_points(existing))
        return len(existing)

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
        opened = self._layout.open_live(wait=self._open_wait)
        shard = None
        if opened is not None:
            try:
                shard = _load(opened.path / SHARD)
            except BaseException:
                opened.lock.close()
                raise
        self._drop()
        self._live, self._shard, self._stamp = opened, shard, stamp
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
        self._live, self._shard, self._stamp = None, None, None

    def _build(
        self,
        points: Iterable[BookPoint],
        vector_size: int,
        model_version: str,
        progress: Progress | None,
        options: IndexOptions | None,
    ) -> None:
        """A complete new generation from scratch, published at the end. Under `writing`."""
        options = options or IndexOptions()
        build = self._layout.new_build()
        try:
            shard = _create(build / SHARD, vector_size, options)
            try:
                titles: list[str] = []
                items = (dedupe(prepare_batch(batch, vector_size)) for batch in batched(points))
                _write(shard, title_keys.noting_titles(items, titles), progress)
                # Edge builds HNSW only here, and only for segments above the indexing
                # threshold (~51k 50-d points); below it every search is exact.
                shard.optimize()
                shard.flush()
                title_keys.write_for(build, shard, titles)
            finally:
                shard.close()
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        meta = GenerationMeta(model_version, vector_size, created, index=options.to_dict())
        self._publish(build, meta)

    @contextmanager
    def _changing(self, delta: title_keys.TitleDelta | None = None) -> Iterator[edge.EdgeShard]:
        """The live shard to write to: in place when no other process has it open, else a
        copy that is published when the block ends (the others keep reading the original).
        `delta`: the titles the block adds and removes, for the title-key index."""
        delta = delta or title_keys.TitleDelta()
        with self._layout.writing():
            live, shard = self._require()
            if live.lock.upgrade():
                try:
                    before = title_keys.exact_count(shard)
                    yield shard
                    shard.optimize()  # HNSW once the shard outgrows the indexing threshold
                    title_keys.update_for(live.path, shard, before, delta)
                finally:
                    shard.flush()
                    live.lock.downgrade()
                self._layout.collect_garbage(keep=live.name)
                return
            build = self._layout.new_build()
            try:
                copy_tree(live.path / SHARD, build / SHARD)
                title_keys.copy_for(live.path, build)
                copy = _load(build / SHARD)
                try:
                    before = title_keys.exact_count(copy)
                    yield copy
                    copy.optimize()
                    copy.flush()
                    title_keys.update_for(build, copy, before, delta)
                finally:
                    copy.close()
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            self._publish(build, live.meta)

    def _publish(self, build: Path, meta: GenerationMeta) -> None:
        name = self._layout.publish(build, meta)
        self._follow()
        self._layout.collect_garbage(keep=name)

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
        by_id = {str(rec.id): list(rec.vector) for rec in records}
        missing = first_missing(titles, [t for t, pid in ids.items() if pid in by_id])
        if missing is not None:
            raise missing
        return [by_id[point_id(title)] for title in titles]

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
        return [
            Hit(
                title=p.payload["title"],
                score=float(p.score),
                payload=dict(p.payload),
                id=str(p.id),
            )
            for p in shard.query(request)
        ]


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
    config = edge.EdgeConfig(
        vectors=vectors,
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


def _load(path: Path) -> edge.EdgeShard:
    try:
        return edge.EdgeShard.load(str(path))
    except Exception as exc:  # qdrant_edge raises plain Exception with a message
        if "WouldBlock" in str(exc):
            raise StoreLockedError(
                f"the embedded store at {path} is in use by another process",
                hint="close the other process that has it open, then run the command again",
            ) from exc
        raise StoreError(
            f"cannot open the embedded store at {path}: {exc}",
            hint="rebuild it with `bookvec index`",
        ) from exc


def _write(
    shard: edge.EdgeShard, batches: Iterable[list[Prepared]], progress: Progress | None
) -> None:
    """Upsert batches, converting batch k+1 to Edge points (Python, holds the GIL) while Edge
    inserts batch k in a worker thread (Rust, releases the GIL). `progress` runs here, in the
    calling thread, once a batch is stored."""
    from concurrent.futures import Future, ThreadPoolExecutor

    pending: tuple[Future[None], int] | None = None

    def finish() -> None:
        nonlocal pending
        if pending is not None:
            future, count = pending
            pending = None
            future.result()
            if progress is not None:
                progress(count)

    with ThreadPoolExecutor(1, thread_name_prefix="bookvec-edge-write") as pool:
        try:
            for items in batches:
                points = [edge.Point(item.id, item.vector, item.payload) for item in items]
                operation = edge.UpdateOperation.upsert_points(points)
                finish()
                pending = (pool.submit(shard.update, operation), len(items))
            finish()
        finally:
            if pending is not None:  # failed while converting: let the running write end
                pending[0].exception()


def _one_shard(shards: int | None, replicas: int | None) -> None:
    if (shards or 1) > 1 or (replicas or 1) > 1:
        raise ConfigError(
            "the embedded store has one shard and no replicas",
            hint="set BOOKVEC_QDRANT_URL to a Qdrant server (`docker compose --profile cluster "
            "up -d` starts three nodes) to shard or replicate",
        )
