"""Errors are data: every failure is ``{"error": {"type", "message", "hint"}}`` with the status
that fits, the message and hint the CLI prints for the same error. The one place where
bookvec.errors types become statuses; nothing a client sends yields a traceback or a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from bookvec import errors

log = logging.getLogger("bookvec.service")

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.TitleNotFoundError, 404),
    (errors.AmbiguousTitleError, 409),  # several books match: the client picks one
    (errors.ModelMismatchError, 409),  # the store holds another model's vectors
    (errors.StoreLockedError, 409),  # another process (a CLI write) is writing
    (errors.DiskFullError, 507),
    (errors.DataNotFoundError, 503),  # no model or no collection yet
    (errors.BundleError, 503),
    (errors.StoreError, 503),
    (errors.InputError, 400),
    (errors.ConfigError, 400),
    (errors.BookvecError, 400),
)


class ServiceError(Exception):
    """An error of the HTTP layer itself (auth, limits, bodies) with its status."""

    def __init__(self, status: int, type_: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.hint = status, type_, message, hint


def body(type_: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "hint": hint, **extra}}


def status_of(exc: BaseException) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def from_bookvec(exc: errors.BookvecError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.TitleNotFoundError):
        extra["suggestions"] = exc.suggestions
    elif isinstance(exc, errors.AmbiguousTitleError):
        extra["candidates"] = exc.candidates
    status = status_of(exc)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(
        body(type(exc).__name__, exc.message, exc.hint, **extra), status, headers=headers
    )


def _field(loc: tuple | list) -> str:
    """('query', 'limit') -> 'query parameter limit'; ('body', 3, 'link') -> 'body[3].link'."""
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in ("query", "body", "path", "header") else ""
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    if where == "body":
        return f"body{'.' if name and not name.startswith('[') else ''}{name}"
    return f"{where} parameter {name}".strip() if where else name


def validation(exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    message = f"{_field(first.get('loc', ()))}: {first.get('msg', 'invalid')}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return JSONResponse(
        body("ValidationError", message, "see /docs for each parameter's type and range"),
        422,
    )


_HTTP_TYPES = {404: "NotFound", 405: "MethodNotAllowed", 413: "BodyTooLarge"}


def install(app: FastAPI) -> None:
    """Register the handlers: typed library errors, the HTTP layer's, validation, the rest."""

    @app.exception_handler(errors.BookvecError)
    async def _bookvec(request: Request, exc: errors.BookvecError) -> JSONResponse:
        return from_bookvec(exc)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body(exc.type, exc.message, exc.hint), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_TYPES.get(exc.status_code, "HTTPError")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path}"
            hint = "the endpoints are listed at /docs"
        else:
            hint = None
        return JSONResponse(body(kind, message, hint), exc.status_code, headers=exc.headers)

    @app.exception_handler(OSError)
    async def _os(request: Request, exc: OSError) -> JSONResponse:
        # The server's file system said no (a full disk, a read-only home): not the client's
        # doing, and not a bug either. The CLI says the same, with the same hint.
        from bookvec import disk, settings

        if disk.is_full(exc):
            return from_bookvec(disk.full(exc.filename or settings.home()))
        log.warning("file system error on %s %s: %s", request.method, request.url.path, exc)
        what = exc.strerror or type(exc).__name__
        return JSONResponse(
            body(
                "StoreError",
                f"the server's file system refused it: {what}",
                "check that BOOKVEC_HOME is writable and on a disk with space",
            ),
            503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # A bug, never the client's input: logged with its traceback on the server only.
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            body("InternalError", "internal error", "the server log has the details"), 500
        )
