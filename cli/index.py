"""`bookvec index`: load the current model's book vectors and payloads into Qdrant."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, JsonOption, ModelOption, UrlOption

# The defaults of bookvec.indexer.types.IndexOptions, repeated here so that `--help` does not
# import the indexer (keep them equal; a test checks).
DEFAULT_HNSW_M = 16
DEFAULT_HNSW_EF_CONSTRUCT = 100
DEFAULT_HNSW_EF = 128
DEFAULT_WEIGHTING = "coherent"  # bookvec.sparse.DEFAULT_WEIGHTING (a test checks)


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
    hnsw_ef_construct: int = typer.Option(
        DEFAULT_HNSW_EF_CONSTRUCT,
        "--hnsw-ef-construct",
        min=4,
        max=4096,
        help="HNSW candidates per point while the graph is built: higher builds a better "
        "graph, more slowly.",
    ),
    hnsw_ef: int | None = typer.Option(
        None,
        "--hnsw-ef",
        min=1,
        max=4096,
        help="HNSW candidates per search: higher is more exact and slower (stored with the "
        "collection). Default: embedded, the smallest that reaches recall@10 0.99 against "
        f"exact search on a sample, measured once the graph is built; server, {DEFAULT_HNSW_EF}.",
        show_default=False,
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
        "store's IDF), tfidf, coherent (tfidf x how close the model put each page's books), "
        "or none (dense vectors only; no sparse or hybrid search).",
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
        hnsw_ef_construct=hnsw_ef_construct,
        hnsw_ef=hnsw_ef,
        quantization=quantization,
    )
    from bookvec.cli.common import refuse_if_served
    from bookvec.cli.progress import counting_progress
    from bookvec.library.indexing import index_model

    refuse_if_served(url, collection)
    from bookvec.library.store import open_model_bundle

    result = index_model(
        open_model_bundle(model),
        url,
        api_key,
        collection,
        shards=shards,
        replicas=replicas,
        options=options,
        full=full,
        tolerance=tolerance,
        progress=counting_progress,
        log=output.log,
        warn=output.warn,
    ).to_dict()
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
    found = result.get("hnsw_calibration") or {}
    if not json_ and "recall_at_10" in found:
        filtered = found.get("filtered_recall_at_10")
        output.log(
            f"searches use hnsw_ef {found['ef']}: recall@10 {found['recall_at_10']:.4f}"
            + (f" ({filtered:.4f} genre-filtered)" if filtered is not None else "")
            + f" against exact search on {found['queries']} books"
            + (
                f"; filtered searches: {found['filtered_search']}"
                if "filtered_search" in found
                else ""
            )
        )
