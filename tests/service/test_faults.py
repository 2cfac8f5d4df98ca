"""The service under faults, as a real process: a kill -9 during a stream of upserts loses no
acknowledged book and leaves no half-written one; SIGTERM lets the request in flight finish,
then closes the store and removes the served-home marker."""

from __future__ import annotations

import shutil
import signal
import threading
import time

import httpx
import pytest

from tests.service.conftest import WRITE_KEY, auth
from tests.service.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def home(trained_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy, symlinks=True)
    return copy


def count(home) -> int:
    import bookvec

    with bookvec.open_index(home=home) as index:
        return index.info().to_dict()["store"]["points"]


def present(home, titles: list[str]) -> list[str]:
    import bookvec
    from bookvec.errors import TitleNotFoundError

    found = []
    with bookvec.open_index(home=home) as index:
        for title in titles:
            try:
                index.book(title)
            except TitleNotFoundError:
                continue
            found.append(title)
    return found


def test_kill_9_during_upserts_loses_no_acknowledged_book(home, link_names_of_home):
    links = link_names_of_home(home)
    before = count(home)
    acknowledged: list[str] = []
    sent: list[str] = []
    stop = threading.Event()
    server = Server(home, key=WRITE_KEY)
    server.wait_ready()

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                books = [
                    {"title": f"Kill Test Book {i}-{j}", "links": links[j : j + 5], "genres": []}
                    for j in range(3)
                ]
                sent.extend(b["title"] for b in books)
                try:
                    response = http.post("/api/books", json=books, headers=auth())
                except httpx.HTTPError:
                    return  # the server died under this request: not acknowledged
                if response.status_code == 200:
                    acknowledged.extend(b["title"] for b in books)

    writer = threading.Thread(target=stream)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 15 and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.02)
    server.process.send_signal(signal.SIGKILL)  # mid-stream: a request is most likely in flight
    server.process.wait()
    stop.set()
    writer.join(30)
    server.log.close()
    assert len(acknowledged) >= 15, server.output()

    after = count(home)  # the store opens: no damage
    assert present(home, acknowledged) == acknowledged  # every acknowledged book is there
    in_flight = [t for t in sent if t not in acknowledged]
    landed = present(home, in_flight)
    # the request cut off by the kill wrote all of its books or none of them
    assert len(landed) in (0, 3), landed
    assert after == before + len(acknowledged) + len(landed)


def test_sigterm_finishes_the_request_in_flight(home, link_names_of_home):
    links = link_names_of_home(home)
    books = [{"title": f"Term Book {i}", "links": links[i : i + 5]} for i in range(300)]
    result: dict = {}
    with Server(home, key=WRITE_KEY) as server:

        def post() -> None:
            with httpx.Client(timeout=60) as http:
                result["response"] = http.post(
                    f"{server.url}/api/books", json=books, headers=auth()
                )

        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(0.3)  # the upsert is under way
        server.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert server.process.wait(60) == 0, server.output()
    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 300
    assert len(present(home, [b["title"] for b in books])) == 300
    assert not (home / "serve" / "owner.json").exists()


@pytest.fixture
def link_names_of_home():
    def names(home) -> list[str]:
        import bookvec

        return list(bookvec.load(home=home).link_names)

    return names


def test_a_body_cut_off_mid_way_writes_nothing(home, link_names_of_home):
    import json
    import socket

    links = link_names_of_home(home)
    books = [{"title": f"Cut Off Book {i}", "links": links[i : i + 5]} for i in range(3)]
    body = "".join(json.dumps(b) + "\n" for b in books).encode()
    with Server(home, key=WRITE_KEY) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            head = (
                f"POST /api/books HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_KEY}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body) + 5000}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)  # whole books, then the client goes away
        time.sleep(1.0)
        assert httpx.get(f"{server.url}/readyz").status_code == 200  # the server is fine
        for book in books:
            found = httpx.get(f"{server.url}/api/book", params={"title": book["title"]})
            assert found.status_code == 404, found.text
    assert present(home, [b["title"] for b in books]) == []


def test_several_workers_share_the_store_and_the_metrics(home, link_names_of_home):
    links = link_names_of_home(home)
    with Server(home, key=WRITE_KEY, workers=2) as server, httpx.Client(timeout=60) as http:
        added = http.post(
            f"{server.url}/api/books",
            json=[{"title": "Two Workers Book", "links": links[:5]}],
            headers=auth(),
        )
        assert added.status_code == 200, added.text
        for _ in range(20):  # whichever worker answers, it sees the write
            found = http.get(f"{server.url}/api/book", params={"title": "Two Workers Book"})
            assert found.status_code == 200, found.text
        metrics = http.get(f"{server.url}/metrics").text
        wanted = 'bookvec_http_requests_total{method="GET",route="/api/book",status="200"}'
        line = next(row for row in metrics.splitlines() if row.startswith(wanted))
        assert float(line.split()[-1]) == 20.0  # both workers' counts, summed
