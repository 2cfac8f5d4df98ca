"""The FastAPI application: middleware (metrics, body limit, optional CORS), the error model,
the routers, the page and the offline docs. ``create_app()`` with no argument reads the config
`bookvec serve` left in the environment (how each uvicorn worker builds its app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from bookvec import __version__
from bookvec.service import errors, page
from bookvec.service.config import ServeConfig
from bookvec.service.limits import BodyLimit
from bookvec.service.metrics import Metrics
from bookvec.service.routes import ops, read, score, write
from bookvec.service.state import Service

DESCRIPTION = (
    "Books embedded by the pages they link to: search, recommend, explain, score and upsert "
    "over HTTP, with the same JSON as `bookvec ... --json`. Errors are "
    '`{"error": {"type", "message", "hint"}}`. Writes need the API key '
    "(`Authorization: Bearer KEY`)."
)


def create_app(config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig.from_env()
    service = Service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:  # after uvicorn has let in-flight requests finish (SIGTERM included)
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="bookvec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by page.install (works offline)
        redoc_url=None,
    )
    app.state.service = service
    errors.install(app)
    for router in (read.router, score.router, write.router, ops.router):
        app.include_router(router)
    page.install(app)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(Metrics)  # outermost: it times and counts everything, 413s included
    return app
