"""The response models: declared once, for the OpenAPI spec (and so for schemathesis and
/docs). Routes return the library's ``to_dict()`` as it is, so the field names are the CLI's
--json; the models here document those shapes and are not re-validated per request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(Open):
    type: str
    message: str
    hint: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class BookHit(Open):
    title: str
    score: float
    genres: list[str]
    author: str | None = None
    country: str | None = None
    year: int | None = None


class PairScoreOut(Open):
    book: str
    link: str
    probability: float


class Health(BaseModel):
    status: str


class Ready(Open):
    ready: bool


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: "Bad input (the message names the field or line)",
        401: "An API key is needed",
        403: "The API key is not valid here",
        404: "Unknown title (with suggestions)",
        409: "Conflict: an ambiguous title, another writer, or another model's store",
        413: "Request body too large",
        415: "A body format the server does not read",
        422: "A parameter or body of the wrong type or out of range",
        503: "The store or model is not ready",
        507: "No space left for the write",
    }
    return {s: {"model": ErrorOut, "description": texts[s]} for s in statuses}


READ_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503, 507)
