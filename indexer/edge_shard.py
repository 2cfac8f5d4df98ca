"""One Qdrant Edge shard on disk, below the store (edge.py): create, load, write, optimize,
census. Functions only; the generations they live in are generations.py's.

Writing fast: what a bulk load costs per point is mostly turning the payload into Edge's
(qdrant-edge-py tries bool, u64, i64 and f64 before str, each failure a Python exception, and
a list fails all five before its items are converted: so a one-string list is written as
that string and the unfiltered fields as one JSON string, `points.edge_payload`) and Edge's
own insert with the payload indexes (about half of its time; `benchmarks/store_write.py
--vary`). The insert releases the GIL, so `_write` converts batch k+1 while Edge writes
batch k. The HNSW build, once a segment passes Edge's indexing threshold, runs in a child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import qdrant_edge as edge

from bookvec import disk
from bookvec.errors import ConfigError, StoreError, StoreLockedError
from bookvec.indexer import hybrid
from bookvec.indexer.catalogue import SOURCE_FIELD, UPSERTED
from bookvec.indexer.generations import (
    SHARD,
    GenerationMeta,
    Opened,
    copy_tree,
    id_checksum,
    record_verified,
    verified,
)
from bookvec.indexer.points import (
    PACKED,
    Prepared,
    batched,
    edge_payload,
    few_collections,
    stored_payload,
)
from bookvec.indexer.types import (
    ACORN_MAX_SELECTIVITY,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    IndexOptions,
    Progress,
)

SCROLL_PAGE = 1000
# Opening a generation checks its point count (one exact count); the id checksum too up to this
# many points (a scroll of ids: ~N us per point).
VERIFY_IDS_UP_TO = 200_000
# A filtered sparse search whose filter matches fewer points than this scores them one by one;
# above it, it walks the inverted index checking the filter. At 37k books with a genre filter
# (~3.7k books) the first takes 2.5 ms (Edge's default threshold, 5,000), the second 0.48 ms
# (thresholds 1,000 and 100 alike): the posting lists of a book's links are short.
SPARSE_FULL_SCAN_THRESHOLD = 100


def create_shard(
    path: Path, vector_size: int, options: IndexOptions, *, indexing_kb: int, full_scan_kb: int
) -> edge.EdgeShard:
    """An empty shard as bookvec makes them (WAL off; payload indexes before any point).
    `indexing_kb` / `full_scan_kb`: Edge's HNSW thresholds (see edge.py)."""
    vectors = edge.EdgeVectorParams(size=vector_size, distance=edge.Distance.Cosine)
    hnsw = edge.HnswIndexConfig(
        m=options.hnsw_m,
        ef_construct=options.hnsw_ef_construct,
        full_scan_threshold=full_scan_kb,
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
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=indexing_kb),
        wal_enabled=False,
    )
    shard = edge.EdgeShard.create(str(path), config)
    # Payload indexes before the bulk load; the keyword ones memory-mapped: held in RAM, Edge
    # rebuilds their maps whenever a shard is opened (at 370k books, 47% of a 1-2 s open; with
    # them on disk the open took a quarter of the time), and every command opens it. The year
    # index stays in RAM: memory-mapped, it made each point's write ~40% dearer.
    # Every index keeps the extra HNSW links Qdrant builds for its large values: with links for
    # genres only a 10x index took 0.58x the time, but country-filtered recall@10 fell to 0.91.
    keyword = edge.KeywordIndexParams(memory=edge.Memory.Cached)
    for field in KEYWORD_FIELDS:
        shard.update(edge.UpdateOperation.create_field_index(field, keyword))
    for field in INTEGER_FIELDS:
        shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Integer))
    return shard


def _search_params(options: IndexOptions, *, filtered: bool = False) -> edge.SearchParams:
    """hnsw_ef for graph searches; a `filtered` one as options.filtered_search says (ACORN or
    exact, types.FILTERED_SEARCHES); with int8, candidates are rescored on the originals."""
    quantization = None
    if options.quantization == "int8":
        quantization = edge.QuantizationSearchParams(rescore=True, oversampling=2.0)
    if filtered and options.filtered_search == "exact":
        return edge.SearchParams(exact=True)
    acorn = None
    if filtered and options.filtered_search == "acorn":
        acorn = edge.AcornSearchParams(enable=True, max_selectivity=ACORN_MAX_SELECTIVITY)
    return edge.SearchParams(hnsw_ef=options.hnsw_ef, quantization=quantization, acorn=acorn)


def _stored_hashes(shard: edge.EdgeShard, items: list[Prepared]) -> dict[str, str | None]:
    stored: dict[str, str | None] = {}
    for ids in batched([item.id for item in items], SCROLL_PAGE):
        wanted = ["content_hash", PACKED]  # packed by edge_payload, or not (older stores)
        for rec in shard.retrieve(ids, with_payload=wanted, with_vector=False):
            stored[str(rec.id)] = stored_payload(rec.payload).get("content_hash")
    return stored


def _load_for_reading(
    path: Path, read_only: bool, *, copy: bool = False
) -> tuple[edge.EdgeShard, Path | None]:
    """Open a shard to read. Edge maps its files read-write even to read, so a shard on a
    read-only file system (or without write permission, or, with `copy`, on a disk too full
    for its preallocated holes) is copied to a private temporary directory first (sparse;
    removed on close): `bookvec search` works on a read-only home and a full disk."""
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

    with (
        few_collections(),
        ThreadPoolExecutor(
            1, thread_name_prefix="bookvec-edge-write", initializer=block_in_this_thread
        ) as pool,
    ):
        try:
            for items in batches:
                points = [
                    edge.Point(item.id, _edge_vector(item), edge_payload(item.payload))
                    for item in items
                ]
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


def dense_indexed(shard: edge.EdgeShard, info: Any = None) -> int:
    """Dense vectors in an HNSW graph. Edge's `indexed_vectors_count` adds every stored
    sparse vector (each sits in its inverted index, graph or not), so those are taken off;
    an empty one (a book whose links were all cleaned away) has a vector but is not counted
    there, so with a graph the figure is high by those books, and without one never below 0."""
    info = info or shard.info()
    has_sparse = edge.Filter(must=[edge.HasVectorCondition(hybrid.SPARSE)])
    sparse = shard.count(edge.CountRequest(filter=has_sparse, exact=True))
    return max(0, info.indexed_vectors_count - sparse)


# Bytes Edge counts per sparse-vector entry against its indexing threshold (index, weight and
# its storage's overhead; measured: a shard of 50-d points with 20 entries each got its graph
# at 41-43k points, not the 51k its dense vectors alone would need).
SPARSE_ENTRY_BYTES = 12
SAMPLED = 256  # points whose sparse vectors give the mean entry count


def index_threshold(shard: edge.EdgeShard, vector_size: int, threshold_bytes: int) -> int:
    """Points a segment holds before optimize() builds its graph: its dense vectors (4 bytes a
    dimension) or its sparse ones reach Edge's indexing threshold, whichever comes first."""
    request = edge.ScrollRequest(limit=SAMPLED, with_payload=False, with_vector=True)
    records, _ = shard.scroll(request)  # (naming the sparse vector fails on a shard without)
    vectors = [r.vector for r in records if isinstance(r.vector, dict)]
    entries = [len(v[hybrid.SPARSE].indices) for v in vectors if hybrid.SPARSE in v]
    mean = sum(entries) / len(records) if records else 0.0
    return int(threshold_bytes // max(4 * vector_size, SPARSE_ENTRY_BYTES * mean, 1))


def _needs_index(shard: edge.EdgeShard, threshold: int) -> bool:
    """Enough points outside any HNSW graph (`threshold`: index_threshold) for optimize() to
    build one (a long job)."""
    info = shard.info()
    return info.points_count - dense_indexed(shard, info) >= threshold


def _optimized(
    shard: edge.EdgeShard, path: Path, vector_size: int, threshold_bytes: int
) -> edge.EdgeShard:
    """A build's shard (at `path`) after Edge's optimizers; Ctrl-C stops them at once. A build
    of the graph runs in a child process (it holds the GIL throughout, and its memory)."""
    if not _needs_index(shard, index_threshold(shard, vector_size, threshold_bytes)):
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
        if verified(opened.path, meta):  # censused before, its files unchanged since
            return
        count, found = _census(shard)
        if (count, found) == (meta.points, meta.ids):
            record_verified(opened.path, meta)
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
            payload = stored_payload(rec.payload)
            yield payload["title"], payload
        if offset is None:
            return
