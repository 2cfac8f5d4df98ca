"""Options shared by several commands (the library opens the model and the store)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from bookvec import settings

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar=settings.ENV_MODEL,
        help="Model bundle: a directory or a model id (default: the current one).",
        show_default=False,
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=settings.ENV_QDRANT_URL,
        help="Qdrant server URL; without it the embedded store under BOOKVEC_HOME is used.",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=settings.ENV_QDRANT_API_KEY,
        help="API key for the Qdrant server.",
        show_default=False,
        show_envvar=True,
    ),
]
CollectionOption = Annotated[
    str,
    typer.Option("--collection", envvar=settings.ENV_COLLECTION, help="Collection name."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def open_model(model: str | None):
    """The bundle --model names (the library opens it)."""
    from bookvec.library.store import open_model_bundle

    return open_model_bundle(model)


def refuse_if_served(url: str | None, collection: str | None) -> None:
    """A write to the embedded store of a home that a running `bookvec serve` owns stops here
    with one line saying to go through the server (its writes are serialised; ours would
    race them)."""
    from bookvec import served, settings

    if url or os.environ.get(settings.ENV_QDRANT_URL):
        return  # a Qdrant server: it serialises writes itself
    served.check_not_served(settings.home(), collection or settings.DEFAULT_COLLECTION)
