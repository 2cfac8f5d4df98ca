"""Retries for the server backend: bounded exponential backoff with jitter, for transient
failures only (connection errors, timeouts, 5xx, gRPC UNAVAILABLE / DEADLINE_EXCEEDED /
INTERNAL / ABORTED). A 4xx answer is never retried: the same request would fail again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the request may succeed unchanged. Never a 4xx."""
    import httpx

    network = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code is not None and exc.status_code >= 500
    if isinstance(exc, ResponseHandlingException):
        return isinstance(exc.source, (*network, ConnectionError, TimeoutError))
    if isinstance(exc, (*network, ConnectionError, TimeoutError)):
        return True
    import grpc

    transient_codes = {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
    return (
        isinstance(exc, grpc.RpcError) and getattr(exc, "code", lambda: None)() in transient_codes
    )


@dataclass(frozen=True)
class Retry:
    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 4.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        return [min(self.max_backoff, self.backoff * 2**i) for i in range(self.retries)]

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for delay in [*self.delays(), None]:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if delay is None or not is_transient(exc):
                    raise
                self.sleep(delay * random.uniform(0.8, 1.0))  # jitter: clients do not align
        raise AssertionError("unreachable")


def status_of(exc: Exception) -> int | None:
    """The HTTP status of a failure (gRPC codes mapped to the ones we act on), if any."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code
    code = getattr(exc, "code", None)
    if callable(code):  # gRPC
        name = getattr(code(), "name", "")
        return {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}.get(name)
    return None


def message_of(exc: Exception) -> str:
    """The server's own words for a failure, short enough for a one-line error."""
    if isinstance(exc, UnexpectedResponse):
        try:
            return str(exc.structured()["status"]["error"])
        except Exception:
            return f"HTTP {exc.status_code} {exc.reason_phrase}".strip()
    if isinstance(exc, ResponseHandlingException):
        return f"{type(exc.source).__name__}: {exc.source}"
    details = getattr(exc, "details", None)
    if callable(details):  # gRPC
        return str(details())
    return str(exc) or type(exc).__name__
