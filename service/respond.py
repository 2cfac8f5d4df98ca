"""Turning library results into responses, without re-validation (the lean path)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse


def plain(result: Any) -> Any:
    """A library result (or a list of them) as JSON data: its ``to_dict()``."""
    if hasattr(result, "to_dict"):
        return result.to_dict()
    if isinstance(result, (list, tuple)):
        return [plain(item) for item in result]
    return result


def answer(result: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(result), status)


def index(request: Request) -> Any:
    """The worker's read index (503 while there is none; see Service.reader)."""
    return request.app.state.service.reader()
