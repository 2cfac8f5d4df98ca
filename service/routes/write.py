"""Writes: upsert many books (every format `bookvec upsert` reads) and delete. Each needs the
write key, runs in the thread pool under the server's write lock (writes queue, none is lost),
and answers 200 only once the store has published its new generation (flushed: a kill -9 after
the answer loses nothing). The body is read whole before anything is written, so a request cut
off mid-way writes nothing."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse

from bookvec.errors import BookvecError
from bookvec.service import auth
from bookvec.service.errors import ServiceError
from bookvec.service.respond import plain
from bookvec.service.schemas import WRITE_ERRORS, Open

router = APIRouter(
    prefix="/api", dependencies=[Depends(auth.require_write)], responses=WRITE_ERRORS
)

# Content-Type -> the file suffix whose reader `bookvec upsert` uses for it.
SUFFIXES = {
    "application/x-ndjson": ".ndjson",
    "application/ndjson": ".ndjson",
    "application/jsonl": ".jsonl",
    "application/x-jsonlines": ".jsonl",
    "text/csv": ".csv",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
}
BODY_NAME = "request body"

_BOOKS_DOC = {
    "description": "Books in the corpus record shape: a JSON array (or one object), NDJSON or "
    "JSONL lines, CSV or Parquet, by Content-Type; `Content-Encoding: gzip` for .gz.",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "links": {"type": "array", "items": {"type": "string"}},
                        "genres": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["title"],
                },
            }
        },
        **{kind: {"schema": {"type": "string"}} for kind in SUFFIXES},
    },
}


@router.post(
    "/books",
    response_model=Open,
    openapi_extra={"requestBody": _BOOKS_DOC},
    summary="Upsert books",
)
async def upsert(
    request: Request,
    dry_run: Annotated[bool, Query(description="Report what would change; store nothing")] = False,
) -> JSONResponse:
    """`bookvec upsert FILE`: the report added / updated / unchanged / rejected (with reasons)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    service = request.app.state.service
    if kind in ("application/json", "") and not gzipped:
        books = _json_books(raw)
        report = await service.write(_upsert, books, dry_run)
        return JSONResponse(plain(report))
    suffix = SUFFIXES.get(kind)
    if suffix is None:
        raise ServiceError(
            415,
            "InputError",
            f"Content-Type {kind!r} is not a format of books",
            "use application/json, application/x-ndjson, text/csv or "
            "application/vnd.apache.parquet",
        )
    result = await service.write(_from_file, raw, suffix, gzipped, dry_run)
    return JSONResponse(plain(result))


def _upsert(index, books: list[dict], dry_run: bool) -> Any:
    return index.upsert(books, dry_run=dry_run)


def _delete(index, titles: list[str], dry_run: bool) -> Any:
    return index.delete(titles, dry_run=dry_run)


def _from_file(index, raw: bytes, suffix: str, gzipped: bool, dry_run: bool) -> Any:
    """Non-JSON bodies go through the same reader as `bookvec upsert FILE`, from a private
    temporary file; its path in a message reads as "request body"."""
    directory = Path(tempfile.mkdtemp(prefix="bookvec-upsert-"))
    path = directory / f"books{suffix}{'.gz' if gzipped else ''}"
    try:
        path.write_bytes(raw)
        try:
            return index.upsert(str(path), dry_run=dry_run)
        except BookvecError as exc:
            exc.message = exc.message.replace(str(path), BODY_NAME)
            raise
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _json_books(raw: bytes) -> list[dict]:
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" ({exc.msg}, line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ServiceError(
            400,
            "InputError",
            f"the body is not JSON{where}",
            "send a JSON array of books, or NDJSON with Content-Type application/x-ndjson",
        ) from None
    if isinstance(data, dict):
        data = data["books"] if isinstance(data.get("books"), list) else [data]
    if not isinstance(data, list) or not data:
        raise ServiceError(
            400,
            "InputError",
            "the body must be a JSON array of books (or one book object)",
            'e.g. [{"title": "My Book", "links": ["Fantasy"], "genres": ["fantasy"]}]',
        )
    for number, item in enumerate(data):
        if not isinstance(item, dict):
            raise ServiceError(
                400, "InputError", f"item {number}: a book must be a JSON object", None
            )
    return data


@router.delete("/books", response_model=Open, summary="Delete books")
async def delete(
    request: Request,
    title: Annotated[list[str], Query(min_length=1, max_length=10_000)],
    dry_run: bool = False,
) -> JSONResponse:
    """`bookvec delete TITLE...`: the titles deleted and how many books remain."""
    service = request.app.state.service
    report = await service.write(_delete, title, dry_run)
    return JSONResponse(plain(report))
