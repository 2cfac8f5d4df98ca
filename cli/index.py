"""`bookvec index`: load the current model's book vectors and payloads into Qdrant."""

from __future__ import annotations

import time

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    JsonOption,
    ModelOption,
    UrlOption,
    open_model,
    open_store,
)

# The defaults of bookvec.indexer.types.IndexOptions, repeated here so that `--help` does not
# import the indexer (keep them equal; a test checks).
DEFAULT_HNSW_M = 16
DEFAULT_HNSW_EF = 128
DEFAULT_WEIGHTING = "bm25"  # bookvec.sparse.DEFAULT_WEIGHTING (a test checks)


def run_index(
    bundle,
    url,
    api_key,
    collection,
    *,
    shards: int | None = None,
    replicas: int | None = None,
    options=None,
    full: bool = False,
    tolerance: float | None = None,
) -> dict:
    from bookvec import settings
    from bookvec.library.actions import sparse_options
    from bookvec.library.catalogue import reindex

    options = options or sparse_options(DEFAULT_WEIGHTING)
    from bookvec.cli.progress import counting_progress

    started = time.perf_counter()
    store = open_store(url, api_key, collection, recover=True)
    changes = None
    try:
        damaged = getattr(store, "damaged", None)
        if damaged:
            output.warn(f"{damaged}: rebuilding it from the model and the catalogue")
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
                with counting_progress("updating", total=None) as advance:
                    changes = reindex_incremental(
                        store,
                        points,
                        model_version=bundle.model_id,
                        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                        progress=advance,
                    )
            done = Reindexed(store.count(), kept, len(refolded.points), [])
            done = finish(done, refolded, bundle, settings.store_dir())
        elif store.backend == "edge":
            from bookvec.indexer.edge import indexing_threshold

            threshold = indexing_threshold(bundle.dim)
            if bundle.n_books > threshold:
                output.log(
                    f"{bundle.n_books:,} books is above Edge's indexing threshold ({threshold:,}):"
                    " the HNSW graph is built after loading"
                )
        if changes is None:
            with counting_progress("indexing", total=bundle.n_books) as advance:
                done = reindex(
                    bundle,
                    store,
                    progress=advance,
                    unplaced_dir=settings.store_dir(),
                    shards=shards,
                    replicas=replicas,
                    options=options,
                )
        if done.unplaced:
            output.warn(
                f"{len(done.unplaced):,} upserted book(s) have no link this model knows and are "
                f"not in the index; they are saved in {done.unplaced_file} for `bookvec upsert`"
            )
        info = store.info()
    finally:
        store.close()
    seconds = time.perf_counter() - started
    return {
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
        "seconds": round(seconds, 3),
        "incremental": None if changes is None else changes.counts(),
    }


def incremental_parent(store, bundle, shards, replicas, options) -> bool:
    """True when the store holds the vectors of the model this bundle was warm-started from,
    in the same layout: then only what changed is written (``bookvec.indexer.incremental``)."""
    parent = (bundle.manifest.warm_start or {}).get("parent")
    info = store.info() if parent else None
    return (
        info is not None
        and info.model_version == parent
        and info.vector_size == bundle.dim
        and (options is None or info.index == options)
        and shards in (None, info.shards)
        and replicas in (None, info.replicas)
    )


@app.command()
def index(
    model: ModelOption = None,
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=1,
        help="Server only: shards of the collection (fixed at creation; a multiple of the "
        "number of nodes). Default 1.",
        show_default=False,
    ),
    replicas: int | None = typer.Option(
        None,
        "--replicas",
        min=1,
        help="Server only: copies of each shard on different nodes. Default 1.",
        show_default=False,
    ),
    hnsw_m: int = typer.Option(
        DEFAULT_HNSW_M, "--hnsw-m", min=4, max=128, help="HNSW graph links per point."
    ),
    hnsw_ef: int = typer.Option(
        DEFAULT_HNSW_EF,
        "--hnsw-ef",
        min=1,
        max=4096,
        help="HNSW candidates per search: higher is more exact and slower (stored with the "
        "collection).",
    ),
    quantization: str = typer.Option(
        "none",
        "--quantization",
        help="int8: scalar-quantized vectors searched first, rescored on the originals; none.",
    ),
    sparse: str = typer.Option(
        DEFAULT_WEIGHTING,
        "--sparse",
        help="Weights of each book's links in its sparse vector: bm25 or binary (with the "
        "store's IDF), tfidf, or none (dense vectors only; no sparse or hybrid search).",
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="Rebuild every point, even after a warm start (default: write only what changed).",
    ),
    tolerance: float | None = typer.Option(
        None,
        "--tolerance",
        min=0.0,
        help="After a warm start: rewrite a book whose unit vector moved more than this (L2; "
        "default 0.05).",
        show_default=False,
    ),
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Index the current model's books (vectors + genres, author, ...) into the store.

    A full reindex is atomic: searches keep answering from the old index until the new one
    is complete. After `bookvec train --warm-start`, when the store holds the parent model's
    vectors, only new, changed and moved books are written and removed ones deleted (--full
    rebuilds). HNSW and quantization settings are stored with the collection; below ~51,000
    books (Edge's indexing threshold) every search is exact whatever they are.

    Examples: bookvec index
    BOOKVEC_QDRANT_URL=http://localhost:6333 bookvec index --shards 6 --replicas 2
    """
    from bookvec.library.actions import sparse_options

    options = sparse_options(
        None if sparse == "none" else sparse,
        hnsw_m=hnsw_m,
        hnsw_ef=hnsw_ef,
        quantization=quantization,
    )
    bundle = open_model(model)
    from bookvec.model import bundle as files

    bundle.verify((files.BOOK_VECTORS, files.BOOKS))
    result = run_index(
        bundle,
        url,
        api_key,
        collection,
        shards=shards,
        replicas=replicas,
        options=options,
        full=full,
        tolerance=tolerance,
    )
    if json_:
        output.emit_json(result)
    elif result["incremental"] is not None:
        c = result["incremental"]
        output.log(
            f"updated {result['backend']} collection {result['collection']!r} to model "
            f"{result['model']}: {c['added']:,} added, {c['moved']:,} moved, {c['changed']:,} "
            f"payload changed, {c['unchanged']:,} unchanged, {c['removed']:,} removed "
            f"({c['written']:,} points written) in {result['seconds']:.1f} s"
        )
    else:
        layout = ""
        if result["backend"] == "server":
            layout = f", {result['shards']} shard(s) x {result['replicas']} replica(s)"
        upserted = (
            f" ({result['bundle_books']:,} trained, {result['upserted_books']:,} upserted)"
            if result["upserted_books"] or result["unplaced_books"]
            else ""
        )
        output.log(
            f"indexed {result['points']:,} books{upserted} of model {result['model']} into "
            f"{result['backend']} collection {result['collection']!r}{layout} "
            f"in {result['seconds']:.1f} s"
        )
