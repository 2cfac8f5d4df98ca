"""API keys: writes need the write key; reads need the read key when one is set. Keys come in
`Authorization: Bearer KEY` or `X-API-Key: KEY`, are compared in constant time, and are never
logged or echoed (a wrong key's message does not repeat it)."""

from __future__ import annotations

import hmac

from fastapi import Request

from bookvec.service.errors import ServiceError

HINT = "send it as `Authorization: Bearer KEY` or `X-API-Key: KEY`"


def presented(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def check(request: Request, expected: str | None, what: str) -> None:
    if expected is None:
        return
    given = presented(request)
    if given is None:
        raise ServiceError(401, "Unauthorized", f"{what} needs an API key", HINT)
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ServiceError(403, "Forbidden", f"the API key is not valid for {what}", HINT)


async def require_read(request: Request) -> None:
    check(request, request.app.state.service.config.read_key, "reading")


async def require_write(request: Request) -> None:
    config = request.app.state.service.config
    if config.api_key is None:
        raise ServiceError(
            403,
            "Forbidden",
            "writes are disabled on this server: it was started without an API key",
            "start it with BOOKVEC_API_KEY set or --api-key-file FILE",
        )
    check(request, config.api_key, "writing")
