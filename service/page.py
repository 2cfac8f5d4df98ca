"""The web page at `/` and every asset it needs, served by bookvec itself: its own HTML, JS
and CSS (package data in service/static), plotly.min.js from the plotly package, and Swagger
UI's files for /docs. Nothing is fetched from the internet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


def plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str):
        if name == "plotly.min.js":
            path = plotly_js()
            if path is None:
                return PlainTextResponse("// plotly is not installed: no map", 200)
            return FileResponse(path, media_type="text/javascript", headers=_CACHE)
        if name not in ASSETS:
            return PlainTextResponse("not found", 404)
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    @app.get("/docs/{name}", include_in_schema=False)
    async def swagger_asset(name: str):
        directory = swagger_dir()
        if directory is None or name not in ("swagger-ui-bundle.js", "swagger-ui.css"):
            return PlainTextResponse("not found", 404)
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(directory / name, media_type=kind, headers=_CACHE)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="bookvec API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="data:,",
        )


_CACHE = {"Cache-Control": "public, max-age=86400"}
