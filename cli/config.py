"""`bookvec config`: the settings a command would use, and where each came from."""

from __future__ import annotations

import os

import typer

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    JsonOption,
    ModelOption,
    UrlOption,
)
from bookvec.safetext import mask_secret, mask_url

_SOURCES = {"COMMANDLINE": "flag", "ENVIRONMENT": "env", "DEFAULT": "default"}


mask = mask_secret  # the name tests and older callers use


def _source(ctx: typer.Context, name: str) -> str:
    found = ctx.get_parameter_source(name)
    return _SOURCES.get(found.name, found.name.lower()) if found is not None else "default"


def resolve_config(
    ctx: typer.Context,
    model: str | None,
    url: str | None,
    api_key: str | None,
    collection: str,
) -> dict[str, dict]:
    """{setting: {"value", "source", "env"}}; source is flag, env or default."""
    from bookvec.model.bundle import current_model_id

    root = ctx.find_root()
    home_source = _source(root, "home") if "home" in root.params else "default"
    if home_source == "default" and os.environ.get(settings.ENV_HOME):
        home_source = "env"
    model_source = _source(ctx, "model")
    if model is None:
        model = current_model_id()
        model_source = "default (models/CURRENT)" if model else "default"
    url_source = _source(ctx, "url")
    store = f"server {mask_url(url)}" if url else f"embedded Qdrant Edge in {settings.store_dir()}"
    return {
        "home": {
            "value": str(settings.home()),
            "source": home_source,
            "env": settings.ENV_HOME,
        },
        "model": {"value": model, "source": model_source, "env": settings.ENV_MODEL},
        "qdrant_url": {
            "value": mask_url(url),
            "source": url_source,
            "env": settings.ENV_QDRANT_URL,
        },
        "qdrant_api_key": {
            "value": mask(api_key),
            "source": _source(ctx, "api_key"),
            "env": settings.ENV_QDRANT_API_KEY,
        },
        "collection": {
            "value": collection,
            "source": _source(ctx, "collection"),
            "env": settings.ENV_COLLECTION,
        },
        "store": {"value": store, "source": "qdrant_url" if url else "default", "env": None},
    }


@app.command()
def config(
    ctx: typer.Context,
    model: ModelOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
    json_: JsonOption = False,
) -> None:
    """Show the settings commands resolve (home, model, Qdrant URL and key, collection) and where
    each came from: a flag, an environment variable, or the default. The API key is masked.

    The same flags as the other commands are accepted, to check what they resolve to.

    Examples: bookvec config
              BOOKVEC_COLLECTION=test bookvec --home /tmp/bv config --json
    """
    resolved = resolve_config(ctx, model, url, api_key, collection)
    if json_:
        output.emit_json(resolved)
        return
    from rich.table import Table

    table = Table(title="bookvec settings", title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("from")
    table.add_column("env var", style="dim")
    for name, item in resolved.items():
        value = item["value"]
        table.add_row(
            name,
            output.cell(value) if value is not None else "[dim](not set)[/dim]",
            output.cell(item["source"]),
            item["env"] or "",
        )
    output.stdout.print(table)
