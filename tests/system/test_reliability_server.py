"""Server faults through the CLI, against a tiny fake Qdrant on 127.0.0.1 (no network, no
Docker): a closed port, 401/403, 500/503 (retried with backoff, a bounded number of times), a
server that never answers (BOOKVEC_QDRANT_TIMEOUT), and an `index` that fails halfway (no
orphan collection). Each failure is one `Error:` line on stderr, exit 1, never a traceback, and
the API key is never in any output. TLS certificates are verified by default."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.conftest import one_error_line as conftest_one_error_line

KEY = "bv-test-KEY-7f3a9c2e51d84b06"  # distinctive: grepped for in every output
ATTEMPTS = 4  # ServerOptions.retries (3) + 1


class FakeQdrant(ThreadingHTTPServer):
    """Answers like Qdrant's REST API would. mode "status": every request gets `status`;
    "hang": no request is ever answered; "qdrant": enough of Qdrant for `bookvec index`, with
    every write of points failing with `status`."""

    daemon_threads = True

    def __init__(self, mode: str, status: int = 500) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode, self.status = mode, status
        self.requests: list[tuple[str, str, str | None, float]] = []  # method, path, key, time
        self.collections: set[str] = set()
        self.aliases: dict[str, str] = {}
        self.release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, result=None, error: str | None = None) -> None:
        body = {"time": 0.0, "status": "ok" if error is None else {"error": error}}
        body["result"] = result
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        srv: FakeQdrant = self.server  # type: ignore[assignment]
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0]
        srv.requests.append((self.command, path, self.headers.get("api-key"), time.monotonic()))
        if srv.mode == "hang":
            srv.release.wait(30)  # bounded: the test ends long before
            return
        if srv.mode == "status":
            return self._reply(srv.status, error=f"fake failure {srv.status}")
        parts, method = path.strip("/").split("/"), self.command
        if method == "GET" and parts == ["aliases"]:
            aliases = [{"alias_name": a, "collection_name": c} for a, c in srv.aliases.items()]
            return self._reply(200, {"aliases": aliases})
        if method == "GET" and len(parts) == 3 and parts[2] == "exists":
            return self._reply(200, {"exists": parts[1] in srv.collections})
        if method == "PUT" and len(parts) == 2 and parts[0] == "collections":
            srv.collections.add(parts[1])
            return self._reply(200, True)
        if method == "DELETE" and len(parts) == 2 and parts[0] == "collections":
            srv.collections.discard(parts[1])
            return self._reply(200, True)
        if method == "PUT" and len(parts) == 3 and parts[2] == "index":
            return self._reply(200, {"operation_id": 1, "status": "completed"})
        if len(parts) >= 3 and parts[2] == "points":
            return self._reply(srv.status, error="fake failure while writing points")
        if method == "POST" and parts == ["collections", "aliases"]:
            for action in body["actions"]:
                if "create_alias" in action:
                    create = action["create_alias"]
                    srv.aliases[create["alias_name"]] = create["collection_name"]
            return self._reply(200, True)
        return self._reply(404, error=f"fake: no route for {method} {path}")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


@pytest.fixture
def fake() -> Iterator[list[FakeQdrant]]:
    servers: list[FakeQdrant] = []
    yield servers
    for server in servers:
        server.close()


def _start(fake: list[FakeQdrant], mode: str, status: int = 500) -> FakeQdrant:
    server = FakeQdrant(mode, status)
    fake.append(server)
    return server


def one_error_line(result, *needles: str) -> str:
    line = conftest_one_error_line(result, *needles)
    assert KEY not in result.output
    return line


def _first_title(home: Path) -> str:
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=home / "models").book_titles[0]


# --- unreachable, 401/403, 5xx, hanging ----------------------------------------------------------


def test_unreachable_server_says_how_to_fix(trained_home):
    with socket.socket() as sock:  # bound, not listening: the port refuses connections
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        started = time.monotonic()
        result = invoke(["search", _first_title(trained_home), "--url", url], trained_home)
        elapsed = time.monotonic() - started
    line = one_error_line(result, "cannot reach Qdrant at " + url, f"after {ATTEMPTS} attempts")
    for fix in ("check the URL", "docker compose up -d", "unset BOOKVEC_QDRANT_URL"):
        assert fix in line
    assert elapsed < 10  # 3 retries with 0.25 s, 0.5 s, 1 s backoff


@pytest.mark.parametrize(
    "status, key, words",
    [
        (401, None, "it needs an API key"),
        (401, KEY, "the API key is wrong"),
        (403, KEY, "a read-only key cannot write"),
    ],
)
def test_auth_failures_name_the_api_key_and_are_not_retried(trained_home, fake, status, key, words):
    server = _start(fake, "status", status)
    args = ["search", _first_title(trained_home), "--url", server.url]
    result = invoke(args + (["--api-key", key] if key else []), trained_home)
    one_error_line(result, f"({status})", words, "BOOKVEC_QDRANT_API_KEY")
    assert len(server.requests) == 1  # a 4xx is never retried
    assert server.requests[0][2] == key  # the key was sent: the test is real


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_with_backoff_then_reported(trained_home, fake, status):
    server = _start(fake, "status", status)
    result = invoke(["search", _first_title(trained_home), "--url", server.url], trained_home)
    one_error_line(result, f"failed to list aliases ({status}) after {ATTEMPTS} attempts")
    times = [t for *_, t in server.requests]
    assert len(times) == ATTEMPTS  # bounded
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # exponential backoff, 0.25 s doubling, with up to 20% jitter
    for gap, base in zip(gaps, [0.25, 0.5, 1.0], strict=True):
        assert 0.8 * base - 0.05 <= gap <= base + 1.0, gaps


def test_a_hanging_server_times_out_within_a_bound(trained_home, fake):
    server = _start(fake, "hang")
    started = time.monotonic()
    result = invoke(
        ["search", _first_title(trained_home), "--url", server.url],
        trained_home,
        BOOKVEC_QDRANT_TIMEOUT="1",
    )
    elapsed = time.monotonic() - started
    one_error_line(result, "timed out", "within 1 s", "BOOKVEC_QDRANT_TIMEOUT")
    assert len(server.requests) == ATTEMPTS
    assert elapsed < ATTEMPTS * 1 + 1.75 + 5  # timeouts + backoff + slack


def test_a_bad_timeout_setting_is_one_line(trained_home):
    result = invoke(
        ["search", "x", "--url", "http://127.0.0.1:9"], trained_home, BOOKVEC_QDRANT_TIMEOUT="soon"
    )
    one_error_line(result, "BOOKVEC_QDRANT_TIMEOUT='soon'")


def test_a_failed_index_leaves_no_orphan_collection(trained_home, fake):
    server = _start(fake, "qdrant", 503)
    result = invoke(["index", "--url", server.url], trained_home)
    one_error_line(result, "failed to upload points (503)")
    created = [p for m, p, *_ in server.requests if m == "PUT" and p.count("/") == 2]
    assert len(created) == 1  # one new physical collection ...
    assert ("DELETE", created[0]) in [(m, p) for m, p, *_ in server.requests]  # ... dropped
    assert server.collections == set() and server.aliases == {}  # nothing half-written
    uploads = [p for m, p, *_ in server.requests if p.endswith("/points")]
    n_books = json.loads(invoke(["info", "--json"], trained_home).stdout)["model"]["books"]
    requests = -(-n_books // 256)  # ServerOptions.batch_size
    assert 0 < len(uploads) <= ATTEMPTS * requests  # every upload retried a bounded number


# --- the API key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500])
def test_the_api_key_is_never_printed(trained_home, fake, status, monkeypatch):
    from bookvec.indexer.server import ServerOptions

    fast = classmethod(lambda cls: cls(backoff=0.001))  # retried as usual, without the waits
    monkeypatch.setattr(ServerOptions, "from_env", fast)
    server = _start(fake, "status", status)
    title = _first_title(trained_home)
    commands = [
        ["search", title],
        ["index"],
        ["info"],
        ["info", "--json"],
        ["config"],
        ["config", "--json"],
        ["delete", title],
    ]
    for args in commands:
        for how in ("flag", "env"):
            if how == "flag":
                result = invoke([*args, "--url", server.url, "--api-key", KEY], trained_home)
            else:
                env = {"BOOKVEC_QDRANT_URL": server.url, "BOOKVEC_QDRANT_API_KEY": KEY}
                result = invoke(args, trained_home, **env)
            assert KEY not in result.output, (args, how)
            assert "Traceback" not in result.output, (args, how)
            if args[0] in ("search", "index", "delete"):
                one_error_line(result)
    assert server.requests and all(key == KEY for _, _, key, _ in server.requests)
    for path in trained_home.rglob("*"):  # nor written anywhere under BOOKVEC_HOME
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert KEY.encode() not in path.read_bytes(), path


# --- TLS -----------------------------------------------------------------------------------------


def test_an_https_url_builds_a_client_that_verifies_certificates():
    from bookvec.indexer import open_store
    from bookvec.settings import QdrantSettings

    store = open_store(QdrantSettings(url="https://qdrant.example:6333", api_key=KEY))
    try:
        remote = store.client._client
        assert remote._https is True
        assert remote._rest_args.get("verify", True) is True
        http = remote.openapi_client.client._client
        context = http._transport._pool._ssl_context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        store.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_self_signed_certificate_is_refused(tmp_path):
    """A real TLS handshake on 127.0.0.1 with a certificate nobody vouches for: refused before
    any request (and so before the API key) is sent."""
    from bookvec.errors import StoreError
    from bookvec.indexer import open_store
    from bookvec.indexer.server import ServerOptions
    from bookvec.settings import QdrantSettings

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    server = FakeQdrant("status", 200)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        options = ServerOptions(retries=0, timeout=5)
        store = open_store(QdrantSettings(url=url, api_key=KEY), options=options)
        with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            store.info()
        store.close()
        assert KEY not in str(caught.value)
        assert server.requests == []
    finally:
        server.close()
