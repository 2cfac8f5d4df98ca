"""open_store: the one entry point. A URL means a Qdrant server, none the embedded Edge store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookvec.settings import QdrantSettings, store_dir

if TYPE_CHECKING:
    from bookvec.indexer.server import ServerOptions
    from bookvec.indexer.types import BookStore


def open_store(
    settings: QdrantSettings,
    *,
    path: str | Path | None = None,
    client: Any = None,
    read_only: bool = False,
    options: ServerOptions | None = None,
    recover: bool = False,
) -> BookStore:
    """Open the store the settings name.

    - `client`: a ready qdrant-client (tests pass `QdrantClient(":memory:")`); not closed by us.
    - `settings.url`: a Qdrant server; `options` (default: from the environment) tune gRPC,
      timeouts and retries. qdrant_client is imported only on these two paths (~0.6 s).
    - neither: the embedded Edge store in `<path>/<collection>/`, `path` defaulting to
      `BOOKVEC_HOME/store`. `recover`: a damaged embedded store opens as empty, for a full
      reindex to rebuild (`bookvec index`); a server has nothing to recover.
    """
    if client is not None or settings.url:
        from bookvec.indexer.server import ServerOptions, ServerStore, connect

        options = options or ServerOptions.from_env()
        if client is None:
            client = connect(settings.url or "", settings.api_key, options)
            return ServerStore(
                client,
                collection=settings.collection,
                read_only=read_only,
                options=options,
                owns_client=True,
            )
        return ServerStore(
            client, collection=settings.collection, read_only=read_only, options=options
        )
    from bookvec.indexer.edge import EdgeStore

    root = Path(path) if path is not None else store_dir()
    return EdgeStore(
        root / settings.collection,
        collection=settings.collection,
        read_only=read_only,
        recover=recover,
    )
