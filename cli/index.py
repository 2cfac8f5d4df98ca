"""`bookvec index`: load the current model's book vectors and payloads into Qdrant."""

from __future__ import annotations

import time

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


def run_index(bundle, url, api_key, collection) -> dict:
    from bookvec.cli.actions import index_bundle
    from bookvec.cli.progress import counting_progress

    started = time.perf_counter()
    store = open_store(url, api_key, collection)
    try:
        with counting_progress("indexing", total=bundle.n_books) as advance:
            count = index_bundle(bundle, store, progress=advance)
        info = store.info()
    finally:
        store.close()
    seconds = time.perf_counter() - started
    return {
        "model": bundle.model_id,
        "points": count,
        "backend": info.backend if info else None,
        "collection": info.name if info else collection,
        "location": info.location if info else None,
        "seconds": round(seconds, 3),
    }


@app.command()
def index(
    model: ModelOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Index the current model's books (vectors + genres, author, ...) into the store.

    A full reindex is atomic: searches keep answering from the old index until the new one
    is complete.

    Example: bookvec index
    """
    bundle = open_model(model)
    bundle.verify(("book_vectors.npy", "books.parquet"))
    result = run_index(bundle, url, api_key, collection)
    if json_:
        output.emit_json(result)
    else:
        output.log(
            f"indexed {result['points']:,} books of model {result['model']} into "
            f"{result['backend']} collection {result['collection']!r} in {result['seconds']:.1f} s"
        )
