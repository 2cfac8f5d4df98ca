"""Options shared by several commands, and how a command opens the model and the store."""

from __future__ import annotations

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


def qdrant_settings(url: str | None, api_key: str | None, collection: str | None):
    return settings.QdrantSettings(
        url=url or None,
        api_key=api_key or None,
        collection=collection or settings.DEFAULT_COLLECTION,
    )


def open_store(url: str | None, api_key: str | None, collection: str | None, **kwargs):
    import warnings

    from bookvec.indexer import open_store as _open

    with warnings.catch_warnings():
        # qdrant-client's own warning is two lines with a source line; say it in one instead,
        # and only where it matters (a key in clear text to another machine).
        warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
        qdrant = qdrant_settings(url, api_key, collection)
        store = _open(qdrant, path=settings.store_dir(), **kwargs)
    if url and api_key and _clear_text_to_another_host(url):
        from bookvec.cli import output

        output.warn(f"the API key goes unencrypted to {url}: use an https:// URL")
    return store


def _clear_text_to_another_host(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return parts.scheme == "http" and not loopback


def open_model(model: str | None):
    from bookvec.model.bundle import open_bundle

    return open_bundle(model)


def read_manifest_quietly(model_id: str | None):
    """The manifest of a model id if it is on this machine (for labels), else None."""
    from bookvec.model.manifest import manifest_of

    return manifest_of(model_id)
