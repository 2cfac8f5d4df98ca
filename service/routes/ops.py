"""Operations: liveness, readiness (503 with the reason until the store and model are open),
Prometheus metrics, model and store info, and the map's coordinates for the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from bookvec.service import auth, metrics
from bookvec.service.errors import from_bookvec
from bookvec.service.respond import answer, index, plain
from bookvec.service.schemas import READ_ERRORS, Health, Open, Ready, error_responses

router = APIRouter()


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz", response_model=Ready, responses=error_responses(503), summary="Ready to answer"
)
async def readyz(request: Request) -> JSONResponse:
    problem = request.app.state.service.not_ready()
    if problem is not None:
        return from_bookvec(problem)
    return JSONResponse({"ready": True})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics_route(request: Request) -> Response:
    service = request.app.state.service
    if service.not_ready() is None:
        try:
            metrics.POINTS.set(_points(service.reader()))
        except Exception:  # noqa: BLE001 - a scrape still answers when the store does not
            pass
    data, kind = metrics.scrape()
    return Response(data, media_type=kind)


def _points(reader: Any) -> int:
    info = plain(reader.info())
    store = info.get("store") if isinstance(info, dict) else None
    points = store.get("points") if isinstance(store, dict) else None
    return int(points or 0)


@router.get(
    "/api/info",
    response_model=Open,
    responses=READ_ERRORS,
    dependencies=[Depends(auth.require_read)],
    summary="Model and store info",
)
async def info(request: Request) -> JSONResponse:
    """`bookvec info`: the model (id, counts, metrics) and the store (backend, points)."""
    return answer(index(request).info())


@router.get(
    "/api/map",
    response_model=Open,
    responses=READ_ERRORS,
    dependencies=[Depends(auth.require_read)],
    summary="The books' 2-D map",
)
async def book_map(request: Request) -> JSONResponse:
    """The coordinates `bookvec map` draws (UMAP of the book vectors, cached in the bundle),
    with each book's title and first genre, for the page's plotly map."""
    reader = index(request)
    return JSONResponse(await run_in_threadpool(map_data, request.app.state, reader))


def map_data(state: Any, reader: Any) -> dict[str, Any]:
    cached = getattr(state, "map", None)
    if cached is not None:
        return cached
    from bookvec.model.analysis.reduce import map_coordinates

    model = reader.model
    bundle = getattr(model, "bundle", model)
    coords, _ = map_coordinates(bundle, kind="books", method="umap", seed=0)
    genres = [list(g or [])[:1] for g in bundle.books["genres"].to_list()]
    state.map = {
        "titles": list(bundle.book_titles),
        "x": [round(float(v), 4) for v in coords[:, 0]],
        "y": [round(float(v), 4) for v in coords[:, 1]],
        "genre": [g[0] if g else "" for g in genres],
    }
    return state.map
