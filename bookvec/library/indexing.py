"""`bookvec index` and ``Index.reindex``: load a model's book vectors and payloads (plus the
upserted books of the catalogue, folded in again) into the store. A full reindex is atomic;
after a warm start, when the store holds the parent model's vectors in the same layout, only
what changed is written (bookvec.indexer.incremental)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bookvec.library.results import IndexReport
from bookvec.library.store import Home, home_of, open_store
from bookvec.library.upserting import ProgressFactory, no_progress
from bookvec.model import bundle as files


def _quiet(message: str) -> None:
    pass


def index_model(
    bundle,
    url: str | None = None,
    api_key: str | None = None,
    collection: str | None = None,
    *,
    home: Home | None = None,
    shards: int | None = None,
    replicas: int | None = None,
    options=None,
    full: bool = False,
    tolerance: float | None = None,
    progress: ProgressFactory = no_progress,
    log: Callable[[str], None] = _quiet,
    warn: Callable[[str], None] = _quiet,
    client=None,
) -> IndexReport:
    """Index ``bundle`` into the collection; the report is `bookvec index --json`'s."""
    from bookvec.library.actions import sparse_options
    from bookvec.library.catalogue import reindex
    from bookvec.sparse import DEFAULT_WEIGHTING

    home = home or home_of()
    bundle.verify((files.BOOK_VECTORS, files.BOOKS))
    options = options or sparse_options(DEFAULT_WEIGHTING)
    started = time.perf_counter()
    extra = {"client": client} if client is not None else {}
    store = open_store(url, api_key, collection, home=home, recover=True, **extra)
    changes = None
    try:
        damaged = getattr(store, "damaged", None)
        if damaged:
            warn(f"{damaged}: rebuilding it from the model and the catalogue")
        if (
            not damaged
            and not full
            and incremental_parent(store, bundle, shards, replicas, options)
        ):
            from bookvec.indexer.incremental import DEFAULT_TOLERANCE, reindex_incremental
            from bookvec.library.actions import bundle_link_weights
            from bookvec.library.catalogue import Reindexed, finish, gather

            with store.exclusive():  # the catalogue read and the write under one lock
                weighting = store.info().index.sparse_weighting
                points, kept, refolded = gather(
                    bundle, store, weights=bundle_link_weights(bundle, weighting)
                )
                with progress("updating", None) as advance:
                    changes = reindex_incremental(
                        store,
                        points,
                        model_version=bundle.model_id,
                        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                        progress=advance,
                    )
            done = Reindexed(store.count(), kept, len(refolded.points), [])
            done = finish(done, refolded, bundle, home.store)
        elif store.backend == "edge":
            from bookvec.indexer.edge import indexing_threshold

            threshold = indexing_threshold(bundle.dim)
            if bundle.n_books > threshold:
                log(
                    f"{bundle.n_books:,} books is above Edge's indexing threshold ({threshold:,}):"
                    " the HNSW graph is built after loading"
                )
        if changes is None:
            with progress("indexing", bundle.n_books) as advance:
                done = reindex(
                    bundle,
                    store,
                    progress=advance,
                    unplaced_dir=home.store,
                    shards=shards,
                    replicas=replicas,
                    options=options,
                )
        if done.unplaced:
            warn(
                f"{len(done.unplaced):,} upserted book(s) have no link this model knows and are "
                f"not in the index; they are saved in {done.unplaced_file} for `bookvec upsert`"
            )
        info = store.info()
    finally:
        store.close()
    seconds = time.perf_counter() - started
    return IndexReport(
        {
            "model": bundle.model_id,
            "points": done.points,
            "bundle_books": done.bundle_books,
            "upserted_books": done.upserted_books,
            "unplaced_books": len(done.unplaced),
            "unplaced_file": done.unplaced_file,
            "backend": info.backend if info else None,
            "collection": info.name if info else collection,
            "location": info.location if info else None,
            "shards": info.shards if info else None,
            "replicas": info.replicas if info else None,
            "index": info.index.to_dict() if info else None,
            "sparse_weighting": info.index.sparse_weighting if info else None,
            "indexed_vectors": info.indexed_vectors if info else None,
            "hnsw_calibration": info.calibration if info else None,
            "seconds": round(seconds, 3),
            "incremental": None if changes is None else changes.counts(),
        }
    )


def incremental_parent(store, bundle, shards, replicas, options) -> bool:
    """True when the store holds the vectors of the model this bundle was warm-started from,
    in the same layout: then only what changed is written (``bookvec.indexer.incremental``)."""
    parent = (bundle.manifest.warm_start or {}).get("parent")
    info = store.info() if parent else None
    return (
        info is not None
        and info.model_version == parent
        and info.vector_size == bundle.dim
        # a store indexed before hnsw_ef was measured has no recall target: it keeps its hnsw_ef;
        # how its filtered searches go is measured with hnsw_ef, not asked for
        and (options is None or _settings(info.index) == _settings(options))
        and shards in (None, info.shards)
        and replicas in (None, info.replicas)
    )


def _settings(options):
    from dataclasses import replace

    from bookvec.indexer.types import DEFAULT_FILTERED_SEARCH

    return replace(options, recall_target=None, filtered_search=DEFAULT_FILTERED_SEARCH)
