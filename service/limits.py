"""Bounded request bodies (pure ASGI, before any parsing): a declared Content-Length over the
limit is refused at once, a chunked body as soon as it passes it. Either way 413."""

from __future__ import annotations

import json

from bookvec.service.errors import ServiceError, body

_TOO_LARGE = 413


def _too_large(max_bytes: int) -> dict:
    return body(
        "BodyTooLarge",
        f"the request body is over the server's limit of {max_bytes:,} bytes",
        "send fewer books or pairs per request",
    )


class BodyTooLarge(ServiceError):
    def __init__(self, max_bytes: int) -> None:
        error = _too_large(max_bytes)["error"]
        super().__init__(_TOO_LARGE, error["type"], error["message"], error["hint"])


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    return await self._refuse(send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        payload = json.dumps(_too_large(self.max_bytes)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": _TOO_LARGE,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
