"""Every input a user can type or pipe gets one clear line, exit 1, no traceback: JSON integers
past Python's digit limit, a closed stdin, FIFOs (accepted) and directories (refused), malformed
Qdrant URLs and timeouts, garbage manifests and model pointers, servers answering in the wrong
shape. And the upsert's rejects: streamed to their file, capped in the report and on stderr,
and an input whose every record is rejected exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import invoke, one_error_line

HUGE = "1" + "0" * 5000


def _links(home: Path, n: int = 3) -> list[str]:
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=home / "models").link_names[:n]


def test_a_json_integer_past_the_digit_limit_is_one_line(trained_home, tmp_path):
    source = tmp_path / "huge.jsonl"
    source.write_text('{"title": "Huge", "links": ["x"], "year": ' + HUGE + "}\n")
    one_error_line(invoke(["upsert", str(source)], trained_home), "huge.jsonl:1", "digits")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"book": "a", "link": "b", "n": ' + HUGE + "}\n")
    one_error_line(invoke(["score", "--pairs", str(pairs)], trained_home), "pairs.jsonl:1")


def test_a_closed_stdin_is_one_line(trained_home):
    for args in (["upsert", "-"], ["score", "--pairs", "-"]):
        proc = subprocess.run(
            [sys.executable, "-m", "bookvec.cli.main", *args],
            env={**os.environ, "BOOKVEC_HOME": str(trained_home)},
            stdin=None,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.close(0),
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip() == (
            "Error: <stdin>: standard input is closed (pipe the data into it (`cat file | "
            "bookvec ...`), or give a path instead of -)"
        )


def test_a_fifo_is_read_like_a_file(mutable_home, tmp_path):
    fifo = tmp_path / "books.fifo"
    os.mkfifo(fifo)
    record = json.dumps({"title": "Fifo Book", "links": _links(mutable_home)}) + "\n"

    def feed() -> None:
        with open(fifo, "w") as handle:
            handle.write(record)

    writer = threading.Thread(target=feed)
    writer.start()
    result = invoke(["upsert", str(fifo), "--json"], mutable_home)
    writer.join(10)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 1


@pytest.mark.parametrize(
    "args",
    [["upsert", "{dir}"], ["score", "--pairs", "{dir}"], ["train", "--data", "{dir}"]],
)
def test_a_directory_is_refused_as_not_a_regular_file(trained_home, tmp_path, args):
    args = [a.format(dir=tmp_path) for a in args]
    one_error_line(invoke(args, trained_home), str(tmp_path), "not a regular file")


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://localhost:99999", "port out of range"),
        ("http://localhost:abc", "port"),
        ("ftp://host", "scheme 'ftp'"),
        (" ", "it is empty"),
        ("http://:6333", "no host"),
        ("http://local host:6333", "spaces"),
        ("http://h:0", "port 0"),
    ],
)
def test_a_malformed_qdrant_url_is_one_line(trained_home, url, why):
    line = one_error_line(
        invoke(["search", "x", "--url", url], trained_home), "the Qdrant URL is malformed", why
    )
    assert "--url or BOOKVEC_QDRANT_URL" in line
    result = invoke(["search", "x"], trained_home, BOOKVEC_QDRANT_URL=url)
    one_error_line(result, "the Qdrant URL is malformed")


@pytest.mark.parametrize("value", ["-1", "0", "3601", "99999999999999999999999", HUGE])
def test_an_out_of_range_timeout_is_one_line(trained_home, value):
    result = invoke(
        ["search", "x", "--url", "http://127.0.0.1:9"], trained_home, BOOKVEC_QDRANT_TIMEOUT=value
    )
    one_error_line(result, "BOOKVEC_QDRANT_TIMEOUT=", "out of range", "from 1 to 3600")


def _manifest(home: Path) -> Path:
    return home / "models" / (home / "models" / "CURRENT").read_text().strip() / "manifest.json"


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: [], "a JSON list, not an object"),
        (lambda m: {**m, "model_id": 5}, "no model_id string"),
        (lambda m: {**m, "counts": {**m["counts"], "dim": "fifty"}}, "counts.dim"),
        (lambda m: {**m, "files": {"books.parquet": {"size": "big"}}}, "files.books.parquet"),
        (lambda m: "garbage {", "unreadable manifest"),
        (lambda m: '{"format_version": 1, "n": ' + HUGE + "}", "unreadable manifest"),
    ],
)
def test_a_garbage_manifest_is_one_line(mutable_home, change, words):
    path = _manifest(mutable_home)
    changed = change(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    one_error_line(invoke(["score", "a", "b"], mutable_home), "manifest.json", words)


@pytest.mark.parametrize(
    "content, words",
    [(b"\xff\xfe", "unreadable"), (b"a\nb", "holds no model id"), (b"x" * 5000, "no model id")],
)
def test_a_garbage_model_pointer_is_one_line(mutable_home, content, words):
    (mutable_home / "models" / "CURRENT").write_bytes(content)
    one_error_line(invoke(["score", "a", "b"], mutable_home), "CURRENT", words)


class _Wrong(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies = {
        "html": b"<html>not qdrant</html>",
        "string": b'{"result": "garbage", "status": "ok", "time": 0}',
        "list": b"[1, 2, 3]",
        "fields": b'{"result": {"aliases": [{"alias_name": 5}]}, "status": "ok", "time": 0}',
    }

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        data = self.bodies[self.server.mode]  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.mark.parametrize("mode", sorted(_Wrong.bodies))
def test_a_server_answering_in_the_wrong_shape_is_one_line(trained_home, mode):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Wrong)
    server.mode = mode  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for args in (["search", "x"], ["delete", "x"]):
            one_error_line(
                invoke([*args, "--url", url], trained_home), "reply of the wrong shape", "6333"
            )
    finally:
        server.shutdown()
        server.server_close()


# --- rejects: streamed, capped, honest exit code -----------------------------------------------


def test_an_upsert_whose_every_record_is_rejected_exits_1(trained_home, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('"not a record"\n{"title": "", "links": ["x"]}\n')
    result = invoke(["upsert", str(source), "--skip-invalid", "--json"], trained_home)
    assert result.exit_code == 1 and "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert report["rejected"] == 2 and report["added"] == 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: every record was rejected (2); nothing was stored")
    )


def test_many_rejects_stream_to_their_file_and_are_capped_elsewhere(mutable_home, tmp_path):
    from bookvec.library.rejects import KEEP, WARN

    known = _links(mutable_home)
    lines = []
    for i in range(3000):
        if i % 1000 == 500:
            lines.append(json.dumps({"title": f"Kept Book {i}", "links": known}))
        elif i % 3 == 0:
            lines.append(json.dumps({"title": f"Unplaceable {i}", "links": ["No Such Page"]}))
        else:
            lines.append("{not json")
    source, rejects = tmp_path / "many.jsonl", tmp_path / "rejects.jsonl"
    source.write_text("\n".join(lines) + "\n")
    args = ["upsert", str(source), "--skip-invalid", "--rejects", str(rejects)]
    report = json.loads(invoke([*args, "--json"], mutable_home).stdout)
    assert report["added"] == 3 and report["rejected"] == 2997
    assert len(report["rejects"]) == report["rejects_listed"] == KEEP
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(written) == 2997
    assert [r["line"] for r in written] == sorted(r["line"] for r in written)  # input order
    assert written[:KEEP] == report["rejects"]
    assert not list(tmp_path.glob(".rejects.jsonl.*"))
    again = invoke(args, mutable_home)  # same books again: unchanged, rejects as before
    warnings = again.stderr.strip().splitlines()
    assert len(warnings) == WARN + 1
    more = f"Warning: ... and {2997 - WARN:,} more rejected records: every one is in {rejects}"
    assert warnings[-1] == more
