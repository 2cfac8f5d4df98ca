"""/metrics in Prometheus format (prometheus-client): requests, latencies and errors per route
template (never the raw path: its cardinality is the client's), and the points in the store.

With several uvicorn workers `bookvec serve` sets PROMETHEUS_MULTIPROC_DIR before they start,
and a scrape sums the workers' files (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "bookvec_http_requests_total", "HTTP requests answered.", ("method", "route", "status")
)
LATENCY = Histogram(
    "bookvec_http_request_duration_seconds",
    "Time from request to the end of the response.",
    ("method", "route"),
    buckets=BUCKETS,
)
ERRORS = Counter(
    "bookvec_http_errors_total", "Responses with status 400 or above.", ("route", "status")
)
POINTS = Gauge(
    "bookvec_store_points",
    "Points (books) in the store's collection, as last seen by a worker.",
    multiprocess_mode="mostrecent",
)


def registry() -> CollectorRegistry | None:
    """The registry a scrape reads: the workers' merged files in multiprocess mode."""
    if not os.environ.get(MULTIPROC):
        return None
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged


def scrape() -> tuple[bytes, str]:
    from prometheus_client import REGISTRY

    return generate_latest(registry() or REGISTRY), CONTENT_TYPE_LATEST


class Metrics:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            LATENCY.labels(method, template).observe(time.perf_counter() - start)
            REQUESTS.labels(method, template, str(status)).inc()
            if status >= 400:
                ERRORS.labels(template, str(status)).inc()
