"""Scoring (book, page) pairs: one pair by query, many as a JSON list or NDJSON body. Many are
streamed back (NDJSON for an NDJSON request or `Accept: application/x-ndjson`, else one JSON
array): the whole input is parsed and scored first, so a bad line or an unknown title is a
status, never a stream cut off half-way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring as _string  # what json.dumps uses for str
from math import isfinite
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, StreamingResponse

from bookvec.service import auth
from bookvec.service.errors import ServiceError
from bookvec.service.respond import index, plain
from bookvec.service.schemas import READ_ERRORS, PairScoreOut, error_responses

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require_read)])
NDJSON = "application/x-ndjson"
CHUNK = 2000  # pairs serialised per chunk of the stream
Name = Annotated[str, Query(min_length=1, max_length=500)]


@router.get("/score", response_model=PairScoreOut, responses=READ_ERRORS, summary="Score a pair")
async def score_one(request: Request, book: Name, link: Name) -> JSONResponse:
    """`bookvec score BOOK LINK`: the model's probability that the book links to the page."""
    (result,) = index(request).score([(book, link)])
    return JSONResponse(plain(result))


_PAIRS_DOC = {
    "description": 'A JSON array of {"book", "link"} objects (or [book, link] pairs), or '
    "NDJSON lines of the same (Content-Type: application/x-ndjson).",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"book": {"type": "string"}, "link": {"type": "string"}},
                    "required": ["book", "link"],
                },
            }
        },
        NDJSON: {"schema": {"type": "string"}},
    },
}


@router.post(
    "/score",
    response_model=list[PairScoreOut],
    responses={
        **error_responses(400, 401, 403, 404, 409, 413, 422, 503),
        200: {"content": {NDJSON: {"schema": {"type": "string"}}}},
    },
    openapi_extra={"requestBody": _PAIRS_DOC},
    summary="Score many pairs",
)
async def score_many(request: Request) -> StreamingResponse:
    """`bookvec score --pairs FILE`: every pair's probability, in input order."""
    raw = await request.body()
    ndjson_in = _is_ndjson(request.headers.get("content-type", ""))
    pairs = parse_pairs(raw, ndjson_in)
    most = request.app.state.service.config.max_pairs
    if len(pairs) > most:
        raise ServiceError(
            413,
            "BodyTooLarge",
            f"{len(pairs):,} pairs is over this server's limit of {most:,} per request",
            "split them over several requests",
        )
    reader = index(request)
    results = list(await run_in_threadpool(_score, reader, pairs)) if pairs else []
    ndjson_out = ndjson_in or NDJSON in request.headers.get("accept", "")
    return StreamingResponse(
        _stream(results, ndjson_out), media_type=NDJSON if ndjson_out else "application/json"
    )


def _score(reader: Any, pairs: list[tuple[str, str]]) -> Any:
    return reader.model.score(pairs, source="request body")


def _is_ndjson(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind in (NDJSON, "application/jsonl", "application/x-jsonlines", "application/ndjson")


def _stream(results: list[Any], ndjson: bool) -> Iterator[bytes]:
    if not ndjson:
        yield b"["
    for start in range(0, len(results), CHUNK):
        rows = [_record(r) for r in results[start : start + CHUNK]]
        if ndjson:
            yield "".join(row + "\n" for row in rows).encode()
        else:  # the chunks make one array, as json.dumps(records) would write it
            yield ((", " if start else "") + ", ".join(rows)).encode()
    if not ndjson:
        yield b"]"


def _record(score: Any) -> str:
    """``json.dumps(score.to_dict(), ensure_ascii=False)``, written directly: at 10,000 pairs
    building the dicts and encoding them cost as much as scoring them."""
    p = score.probability
    if not (isinstance(score.book, str) and isinstance(score.link, str)) or not isfinite(p):
        return json.dumps(plain(score), ensure_ascii=False)
    text = f'{{"book": {_string(score.book)}, "link": {_string(score.link)}, "probability": {p!r}'
    return text + (', "upserted": true}' if score.upserted else "}")


def parse_pairs(raw: bytes, ndjson: bool) -> list[tuple[str, str]]:
    """The request's pairs; ServiceError 400 naming the item (or line) that is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"the body is not UTF-8 (byte {exc.start})") from None
    if ndjson:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                items.append((f"line {number}", _json(line, f"line {number}")))
    else:
        data = _json(text, "the body") if text.strip() else None
        if not isinstance(data, list):
            raise _bad("the body must be a JSON array of pairs (or NDJSON lines)")
        pairs = _object_pairs(data)
        if pairs is not None:
            return pairs
        items = [(f"item {i}", item) for i, item in enumerate(data)]
    return [_pair(where, item) for where, item in items]


def _object_pairs(data: list) -> list[tuple[str, str]] | None:
    """A list of {"book", "link"} objects of non-empty strings, checked for the whole list at
    once (10,000 of them cost more one by one than their scoring); None for anything else,
    which `_pair` then takes item by item, naming the first one that is wrong."""
    try:
        pairs = [(item["book"], item["link"]) for item in data]
    except (TypeError, KeyError, IndexError):
        return None
    if all(type(b) is str and type(k) is str and b.strip() and k.strip() for b, k in pairs):
        return pairs
    return None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _bad(f"{where}: not JSON ({exc.msg})") from None


def _pair(where: str, item: Any) -> tuple[str, str]:
    if isinstance(item, dict):
        book, link = item.get("book"), item.get("link")
    elif isinstance(item, list) and len(item) == 2:
        book, link = item
    else:
        book = link = None
    if not (isinstance(book, str) and book.strip() and isinstance(link, str) and link.strip()):
        raise _bad(f'{where}: expected {{"book": "...", "link": "..."}}')
    return book, link


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "InputError", message, 'send [{"book": "...", "link": "..."}, ...]')
