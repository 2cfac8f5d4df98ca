"""fetch() against a local HTTP server that can drop, fail, ignore Range and lie."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bookvec.errors import DownloadError
from bookvec.model.corpus import fetch as fetch_mod
from bookvec.model.corpus.fetch import fetch

PAYLOAD = random.Random(0).randbytes(2_000_003)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Behaviour:
    """What the server does; the once-only faults reset themselves after firing."""

    body: bytes = PAYLOAD
    drop_after: int | None = None  # close the connection after this many body bytes, once
    fail_500: int = 0  # answer 500 this many times
    ignore_range: bool = False  # always 200 with the whole body
    not_found: bool = False  # always 404
    ranges: list[str | None] = field(default_factory=list)  # the Range header of each request


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        b = self.server.behaviour
        range_header = self.headers.get("Range")
        b.ranges.append(range_header)
        if b.not_found:
            self._send(404, b"no such file")
            return
        if b.fail_500:
            b.fail_500 -= 1
            self._send(500, b"boom")
            return
        body, n = b.body, len(b.body)
        if range_header and not b.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= n:
                self._send(416, b"", {"Content-Range": f"bytes */{n}"})
                return
            status, chunk = 206, body[start:]
            headers = {"Content-Range": f"bytes {start}-{n - 1}/{n}"}
        else:
            status, chunk, headers = 200, body, {}
        if b.drop_after is not None:
            cut, b.drop_after = b.drop_after, None
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            self.wfile.write(chunk[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(status, chunk, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour

    def handle_error(self, request, client_address) -> None:  # a client that hung up early
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.behaviour = Behaviour()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def srv(server: Server, monkeypatch: pytest.MonkeyPatch) -> Behaviour:
    server.behaviour = Behaviour()
    monkeypatch.setattr(fetch_mod, "RETRY_BACKOFF_S", 0.01)
    return server.behaviour


@pytest.fixture
def url(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/corpus.ndjson"


def _get(url: str, dest: Path, **kw: object) -> Path:
    kw = {"size": len(PAYLOAD), "sha256": SHA, "progress": False, "timeout": 5.0, **kw}
    return fetch(url, dest, **kw)  # type: ignore[arg-type]


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_full_download_verifies(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "corpus.ndjson"
    assert _get(url, dest, progress=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert srv.ranges == [None]


def test_resume_sends_range_from_part_size(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    _part(dest).write_bytes(PAYLOAD[:700_001])
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == ["bytes=700001-"]
    assert not _part(dest).exists()


def test_dropped_connection_is_retried_and_resumed(
    srv: Behaviour, url: str, tmp_path: Path
) -> None:
    srv.drop_after = 512_000
    dest = tmp_path / "corpus.ndjson"
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == [None, "bytes=512000-"]


def test_server_error_is_retried(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.fail_500 = 2
    dest = tmp_path / "corpus.ndjson"
    _get(url, dest, retries=2)
    assert dest.read_bytes() == PAYLOAD
    assert len(srv.ranges) == 3


def test_retries_run_out(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.fail_500 = 5
    dest = tmp_path / "corpus.ndjson"
    with pytest.raises(DownloadError, match="after 1 retries.*500"):
        _get(url, dest, retries=1)
    assert len(srv.ranges) == 2
    assert not dest.exists()


def test_wrong_sha256_leaves_nothing(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.body = bytes(b ^ 1 for b in PAYLOAD[:1000]) + PAYLOAD[1000:]
    dest = tmp_path / "corpus.ndjson"
    with pytest.raises(DownloadError) as info:
        _get(url, dest)
    assert f"expected sha256 {SHA}, got {hashlib.sha256(srv.body).hexdigest()}" in str(info.value)
    assert "--data PATH" in str(info.value)
    assert not dest.exists()
    assert not _part(dest).exists()


@pytest.mark.parametrize("size", [len(PAYLOAD) - 1, len(PAYLOAD) + 1])
def test_wrong_size_leaves_nothing(srv: Behaviour, url: str, tmp_path: Path, size: int) -> None:
    dest = tmp_path / "corpus.ndjson"
    with pytest.raises(DownloadError, match=f"expected {size:,} bytes, got {len(PAYLOAD):,}"):
        _get(url, dest, size=size, sha256=None)
    assert not dest.exists()
    assert not _part(dest).exists()


def test_existing_good_dest_makes_no_request(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    dest.write_bytes(PAYLOAD)
    assert _get(url, dest) == dest
    assert srv.ranges == []


def test_existing_bad_dest_is_replaced(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == [None]


def test_bad_dest_is_kept_when_the_download_fails(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.body = b"something else"
    dest = tmp_path / "corpus.ndjson"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        _get(url, dest)
    assert dest.read_bytes() == b"old"  # not replaced by the bad download
    assert not _part(dest).exists()


def test_server_ignoring_range_starts_over(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.ignore_range = True
    dest = tmp_path / "corpus.ndjson"
    _part(dest).write_bytes(PAYLOAD[:300_000])
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == ["bytes=300000-"]


def test_complete_part_needs_no_request(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    _part(dest).write_bytes(PAYLOAD)
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == []


def test_complete_part_of_unknown_size_gets_416(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    _part(dest).write_bytes(PAYLOAD)
    _get(url, dest, size=None)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_stale_part_is_discarded(srv: Behaviour, url: str, tmp_path: Path) -> None:
    dest = tmp_path / "corpus.ndjson"
    _part(dest).write_bytes(b"\0" * 100_000)  # an earlier run's bytes of another version
    _get(url, dest)
    assert dest.read_bytes() == PAYLOAD
    assert srv.ranges == ["bytes=100000-", None]


def test_not_found_is_not_retried(srv: Behaviour, url: str, tmp_path: Path) -> None:
    srv.not_found = True
    with pytest.raises(DownloadError, match="answered 404.*check the URL"):
        _get(url, tmp_path / "x")
    assert srv.ranges == [None]


def test_unreachable_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        with pytest.raises(DownloadError) as info:
            _get(f"http://127.0.0.1:{port}/x", tmp_path / "x", retries=3)
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert message.startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert message.endswith("check your network, or pass a local file with --data PATH")
    assert not (tmp_path / "x").exists()


def test_fetch_corpus_passes_the_corpus_constants(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}

    def fake(url: str, dest: Path, **kw: object) -> Path:
        seen.update(url=url, dest=dest, **kw)
        return dest

    monkeypatch.setattr(fetch_mod, "fetch", fake)
    fetch_mod.fetch_corpus(tmp_path, progress=False)
    assert seen["url"] == fetch_mod.CORPUS_URL
    assert seen["dest"] == tmp_path / "found_books_filtered.ndjson"
    assert seen["size"] == 58_925_764
    assert seen["sha256"] == fetch_mod.CORPUS_SHA256
    assert seen["progress"] is False


# --- through the CLI: `bookvec data fetch` ------------------------------------------------


def test_cli_fetch_downloads_and_verifies(
    srv: Behaviour, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import invoke

    monkeypatch.setattr(fetch_mod, "CORPUS_SIZE", len(PAYLOAD))
    monkeypatch.setattr(fetch_mod, "CORPUS_SHA256", SHA)
    result = invoke(["data", "fetch", "--url", url, "--json"], tmp_path)
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["path"])
    assert path == tmp_path / "data" / fetch_mod.CORPUS_FILENAME
    assert path.read_bytes() == PAYLOAD


def test_cli_fetch_refuses_a_mismatch_and_leaves_no_file(
    srv: Behaviour, url: str, tmp_path: Path
) -> None:
    from tests.conftest import invoke

    result = invoke(["data", "fetch", "--url", url], tmp_path)  # the real corpus's size and hash
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "58,925,764" in lines[0]
    assert "Traceback" not in result.output
    assert not any((tmp_path / "data").glob("*")) if (tmp_path / "data").exists() else True
