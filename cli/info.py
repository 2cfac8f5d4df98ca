"""`bookvec info`: what model and store this machine has, and where their files live."""

from __future__ import annotations

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    JsonOption,
    ModelOption,
    UrlOption,
    open_store,
)
from bookvec.errors import BookvecError


@app.command()
def info(
    model: ModelOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Show the current model bundle and the collection: counts, versions, locations.

    Example: bookvec info --json
    """
    from bookvec.model.bundle import open_bundle

    result: dict = {"home": str(settings.home())}
    try:
        bundle = open_bundle(model)
        result["model"] = {
            "id": bundle.model_id,
            "path": str(bundle.path),
            "books": bundle.n_books,
            "links": bundle.n_links,
            "dim": bundle.dim,
            "synthetic": bundle.synthetic,
            "metrics": bundle.manifest.get("metrics", {}),
        }
    except BookvecError as exc:
        result["model"] = {"error": str(exc)}
    try:
        store = open_store(url, api_key, collection, read_only=True)
        try:
            details = store.info()
        finally:
            store.close()
        result["store"] = (
            {
                "backend": details.backend,
                "collection": details.name,
                "model": details.model_version,
                "dim": details.vector_size,
                "points": details.points,
                "location": details.location,
            }
            if details
            else {"error": f"no collection {collection!r} yet; run `bookvec index`"}
        )
    except BookvecError as exc:
        result["store"] = {"error": str(exc)}
    if json_:
        output.emit_json(result)
        return
    output.stdout.print_json(data=result)
