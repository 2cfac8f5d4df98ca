"""The server backend's own behaviour: aliases, metadata, shards/replicas, retries and how
client failures become bookvec errors. Runs on `QdrantClient(":memory:")` and fakes."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from bookvec.errors import ConfigError, ModelMismatchError, StoreError
from bookvec.indexer import BookPoint, open_store
from bookvec.indexer.retry import Retry, is_transient
from bookvec.indexer.server import ServerOptions, ServerStore
from bookvec.settings import QdrantSettings

DIM = 8


def points(n: int, prefix: str = "Book") -> list[BookPoint]:
    rng = np.random.default_rng(0)
    return [BookPoint(f"{prefix} {i}", rng.standard_normal(DIM), {}) for i in range(n)]


def http_error(status: int) -> UnexpectedResponse:
    body = b'{"status": {"error": "something"}}'
    return UnexpectedResponse(status, "reason", body, httpx.Headers())


class RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name


@pytest.fixture
def client() -> QdrantClient:
    return QdrantClient(":memory:")


@pytest.fixture
def store(client) -> ServerStore:
    return ServerStore(client, collection="books")


def physical_collections(client: QdrantClient) -> list[str]:
    return sorted(c.name for c in client.get_collections().collections)


def alias_target(client: QdrantClient) -> str | None:
    return next((a.collection_name for a in client.get_aliases().aliases), None)


# --- collections ---------------------------------------------------------------------------------


def test_reindex_moves_the_alias_and_drops_the_old_collection(store, client):
    store.replace_all(points(5), vector_size=DIM, model_version="a")
    first = alias_target(client)
    assert physical_collections(client) == [first] and first.startswith("books_")
    store.replace_all(points(7, "New"), vector_size=DIM, model_version="b")
    second = alias_target(client)
    assert second != first and physical_collections(client) == [second]
    assert store.info().name == second and store.count() == 7


def test_model_version_is_collection_metadata(store, client):
    store.ensure_collection(vector_size=DIM, model_version="a")
    meta = client.get_collection("books").config.metadata["bookvec"]
    assert (meta["model_version"], meta["vector_size"]) == ("a", DIM)


def test_shards_and_replicas_are_accepted(store):
    store.ensure_collection(vector_size=DIM, model_version="a", shards=3, replicas=2)
    count = store.replace_all(points(4), vector_size=DIM, model_version="a", shards=6, replicas=2)
    assert count == 4


def test_a_plain_collection_in_the_way(store, client):
    """A collection made by hand under the alias's name: refused, then replaced by a reindex."""
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    client.create_collection("books", vectors_config=params)
    with pytest.raises(ModelMismatchError, match="no recorded bookvec model"):
        store.ensure_collection(vector_size=DIM, model_version="a")
    store.replace_all(points(3), vector_size=DIM, model_version="a")
    assert alias_target(client).startswith("books_")
    assert "books" not in physical_collections(client)
    assert store.info().model_version == "a"


def test_a_failed_upload_leaves_no_orphan(store, client):
    store.replace_all(points(3), vector_size=DIM, model_version="a")
    before = physical_collections(client)
    with pytest.raises(ModelMismatchError):
        store.replace_all(
            [*points(2), BookPoint("Short", [1.0], {})], vector_size=DIM, model_version="b"
        )
    assert physical_collections(client) == before and store.count() == 3


# --- connecting, retries, errors -----------------------------------------------------------------


def test_open_store_with_a_url(monkeypatch):
    monkeypatch.setenv("BOOKVEC_QDRANT_GRPC", "1")
    monkeypatch.setenv("BOOKVEC_QDRANT_TIMEOUT", "3")
    settings = QdrantSettings(url="https://qdrant.example:6333", api_key="k", collection="c")
    store = open_store(settings, read_only=True)
    assert isinstance(store, ServerStore) and store.alias == "c" and store.read_only
    assert store.options == ServerOptions(prefer_grpc=True, timeout=3)
    assert store.client.init_options["prefer_grpc"] is True
    store.close()
    monkeypatch.setenv("BOOKVEC_QDRANT_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="BOOKVEC_QDRANT_TIMEOUT"):
        ServerOptions.from_env()


def test_an_unreachable_server_is_retried_then_reported():
    settings = QdrantSettings(url="http://127.0.0.1:9")  # discard port: connection refused
    store = open_store(settings, options=ServerOptions(retries=2, backoff=0.01))
    with pytest.raises(StoreError, match="did not answer .* after 3 attempts") as caught:
        store.info()
    assert "docker compose up -d" in str(caught.value)
    store.close()


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ResponseHandlingException(httpx.ConnectError("refused")), True),
        (ResponseHandlingException(httpx.ReadTimeout("slow")), True),
        (ResponseHandlingException(ValueError("bad json")), False),
        (http_error(500), True),
        (http_error(503), True),
        (http_error(400), False),
        (http_error(404), False),
        (http_error(429), False),
        (RpcError(grpc.StatusCode.UNAVAILABLE), True),
        (RpcError(grpc.StatusCode.DEADLINE_EXCEEDED), True),
        (RpcError(grpc.StatusCode.INVALID_ARGUMENT), False),
        (ConnectionResetError(), True),
        (ValueError("Collection books not found"), False),
    ],
)
def test_which_failures_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_retry_backs_off_exponentially_and_is_bounded():
    waits: list[float] = []
    retry = Retry(retries=5, backoff=0.5, max_backoff=2.0, sleep=waits.append)
    assert retry.delays() == [0.5, 1.0, 2.0, 2.0, 2.0]
    failures = iter([http_error(503), RpcError(grpc.StatusCode.UNAVAILABLE)])

    def flaky() -> str:
        for exc in failures:
            raise exc
        return "ok"

    assert retry.call(flaky) == "ok"
    assert len(waits) == 2 and 0.4 <= waits[0] <= 0.5 and 0.8 <= waits[1] <= 1.0


def test_client_errors_are_never_retried(store, client, monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise http_error(403)

    monkeypatch.setattr(client, "get_aliases", refuse)
    with pytest.raises(StoreError, match="BOOKVEC_QDRANT_API_KEY"):
        store.info()
    assert calls == [1]


def test_server_errors_are_retried_then_reported(client, monkeypatch):
    store = ServerStore(client, retry=Retry(retries=2, sleep=lambda s: None))
    calls = []

    def fail(*args, **kwargs):
        calls.append(1)
        raise http_error(502)

    monkeypatch.setattr(client, "get_aliases", fail)
    with pytest.raises(StoreError, match="after 3 attempts"):
        store.info()
    assert len(calls) == 3


# --- scale settings and parallel uploads ---------------------------------------------------------


def test_index_options_and_layout_are_collection_metadata(store, client):
    from bookvec.indexer import IndexOptions

    options = IndexOptions(hnsw_m=8, hnsw_ef=32, quantization="int8")
    store.ensure_collection(
        vector_size=DIM, model_version="a", shards=6, replicas=2, options=options
    )
    info = store.info()
    assert info.index == options and (info.shards, info.replicas) == (6, 2)
    meta = client.get_collection("books").config.metadata["bookvec"]
    assert meta["index"]["hnsw_ef"] == 32
    with pytest.raises(ConfigError, match="--shards"):
        store.replace_all(points(1), vector_size=DIM, model_version="a", shards=0)


def test_a_server_gets_the_search_params_local_mode_does_not(store, client, monkeypatch):
    import warnings

    from bookvec.indexer import IndexOptions

    store.replace_all(
        points(20), vector_size=DIM, model_version="a", options=IndexOptions(hnsw_ef=77)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # local mode warns when given search params
        assert len(store.search(points(1)[0].vector, limit=3)) == 3
    sent = {}
    real = client.query_points

    def capture(*args, **kwargs):
        sent.update(kwargs)
        return real(*args, **{**kwargs, "search_params": None})

    monkeypatch.setattr(client, "query_points", capture)
    remote = ServerStore(client)
    remote.local = False  # as if talking to a server
    remote.search(points(1)[0].vector, limit=3)
    assert sent["search_params"].hnsw_ef == 77


def test_parallel_uploads_keep_the_last_version_of_a_title(client, monkeypatch):
    import random
    import threading
    import time

    lock = threading.Lock()
    active, peak = [0], [0]
    real = client.upsert

    def slow_upsert(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(random.uniform(0, 0.003))
        try:
            with lock:  # local mode itself is not thread-safe
                return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(client, "upsert", slow_upsert)
    from bookvec.indexer.points import BATCH

    store = ServerStore(client, options=ServerOptions(batch_size=32, parallel=4))
    store.local = False
    first = points(BATCH)  # one batch; the second batch sends 30 of its titles again
    later = [BookPoint(p.title, p.vector, {"publisher": "second"}) for p in first[-30:]]
    seen = []
    count = store.replace_all(
        [*first, *later], vector_size=DIM, model_version="a", progress=seen.append
    )
    assert count == BATCH and sum(seen) == BATCH + 30
    assert peak[0] > 1  # requests really overlapped
    records = store.get([p.title for p in first[-30:]])
    assert all(r.payload.get("publisher") == "second" for r in records.values())


def test_parallel_uploads_from_the_environment(monkeypatch):
    monkeypatch.setenv("BOOKVEC_QDRANT_PARALLEL", "8")
    assert ServerOptions.from_env().parallel == 8
    monkeypatch.setenv("BOOKVEC_QDRANT_PARALLEL", "0")
    with pytest.raises(ConfigError, match="at least 1"):
        ServerOptions.from_env()
