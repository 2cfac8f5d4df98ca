"""`bookvec serve`: the HTTP API and the web page (bookvec.service) under uvicorn."""

from __future__ import annotations

import os

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, ModelOption, UrlOption

_LIMITS = "Limits"
_KEYS = "Keys"


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (127.0.0.1: this machine only)."
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, max=64, help="Worker processes sharing the store."
    ),
    api_key_file: str | None = typer.Option(
        None,
        "--api-key-file",
        help="File holding the key that writes (upsert, delete) need; else BOOKVEC_API_KEY. "
        "Without either, the server is read-only.",
        show_default=False,
        rich_help_panel=_KEYS,
    ),
    read_key_file: str | None = typer.Option(
        None,
        "--read-key-file",
        help="File holding a key that reads need too; else BOOKVEC_READ_KEY (none: open reads).",
        show_default=False,
        rich_help_panel=_KEYS,
    ),
    max_body_mb: int = typer.Option(
        32, "--max-body-mb", min=1, help="Largest request body, MB.", rich_help_panel=_LIMITS
    ),
    max_limit: int = typer.Option(
        1000,
        "--max-limit",
        min=1,
        max=1000,
        help="Most results per answer.",
        rich_help_panel=_LIMITS,
    ),
    max_pairs: int = typer.Option(
        100_000, "--max-pairs", min=1, help="Most pairs per score request.", rich_help_panel=_LIMITS
    ),
    cors_origin: list[str] = typer.Option(
        [],
        "--cors-origin",
        help="Allow browser calls from this origin (repeatable; none by default).",
    ),
    model: ModelOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Serve the HTTP API (/docs, /openapi.json) and the web page (/) over the store that the
    other commands use: the embedded one under BOOKVEC_HOME, or a Qdrant server with --url.

    Reads answer the same JSON as the commands' --json; writes need the API key
    (`Authorization: Bearer KEY`). SIGTERM or Ctrl-C lets in-flight requests finish.

    Example: BOOKVEC_API_KEY=$(openssl rand -hex 16) bookvec serve --port 8000
    """
    from bookvec import settings
    from bookvec.service.config import ENV_API_KEY, ENV_CONFIG, ENV_READ_KEY, MB, ServeConfig
    from bookvec.service.config import read_key_file as read_key

    try:
        import uvicorn
    except ImportError:
        from bookvec.errors import ConfigError

        raise ConfigError(
            "bookvec serve needs the serve extra", hint="pip install 'bookvec[serve]'"
        ) from None
    write_key = read_key(api_key_file) if api_key_file else os.environ.get(ENV_API_KEY) or None
    read_only_key = (
        read_key(read_key_file, "--read-key-file")
        if read_key_file
        else os.environ.get(ENV_READ_KEY) or None
    )
    config = ServeConfig(
        home=str(settings.home()),
        model=model,
        url=url,
        qdrant_api_key=api_key,
        collection=collection,
        api_key=write_key,
        read_key=read_only_key,
        max_body_bytes=max_body_mb * MB,
        max_limit=max_limit,
        max_pairs=max_pairs,
        cors_origins=tuple(cors_origin),
    )
    os.environ[ENV_CONFIG] = config.to_env()  # the workers build their app from it
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    owner = _claim(config, where)
    if workers > 1:
        import tempfile

        from bookvec.service.metrics import MULTIPROC

        os.environ.setdefault(MULTIPROC, tempfile.mkdtemp(prefix="bookvec-metrics-"))
    output.log(
        f"bookvec serve on {where} ({workers} worker{'s' if workers > 1 else ''}; "
        f"writes {'need the API key' if write_key else 'disabled: no API key'}); "
        f"page {where}/  docs {where}/docs"
    )
    try:
        uvicorn.run(
            "bookvec.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,  # request lines would carry titles; keys are never logged
            timeout_graceful_shutdown=30,
        )
    finally:
        _release(owner)


def _claim(config, where: str):
    """Mark the home as served (bookvec.served reads it): pid and address, removed at exit."""
    from bookvec import served

    if config.url:
        return None
    return served.claim(config.home, where=where, collection=config.collection)


def _release(owner) -> None:
    if owner is not None:
        from bookvec import served

        served.release(owner)
