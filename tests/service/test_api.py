"""Every endpoint through httpx against the app: success, each error status, auth. The JSON of
a read is the JSON the CLI prints with --json for the same call; an error's message and hint
are the CLI's `Error:` line."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import invoke
from tests.service.conftest import READ_KEY, WRITE_KEY, assert_error, auth, make_client


def hits(data) -> list[dict]:
    return data if isinstance(data, list) else data["hits"]


def cli_json(home, *args: str):
    result = invoke([*args, "--json"], home)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_error(home, *args: str) -> str:
    result = invoke(list(args), home)
    assert result.exit_code == 1, result.output
    return result.stderr.strip().removeprefix("Error: ")


def as_cli_line(error: dict) -> str:
    return f"{error['message']} ({error['hint']})" if error["hint"] else error["message"]


# --- operations ----------------------------------------------------------------------------


def test_health_ready_and_info(client, served_home):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    info = client.get("/api/info")
    assert info.status_code == 200
    assert info.json() == cli_json(served_home, "info")


def test_not_ready_without_a_model_is_503_and_recovers_nothing_else(tmp_path):
    with make_client(tmp_path / "empty") as empty:
        assert empty.get("/healthz").status_code == 200
        error = assert_error(empty.get("/readyz"), 503)
        assert error["hint"]
        assert_error(empty.get("/api/similar", params={"title": "Dune"}), 503)
        assert empty.get("/api/similar", params={"title": "x"}).headers["retry-after"]


def test_metrics_count_requests_errors_and_points(client, titles):
    client.get("/api/similar", params={"title": titles[0]})
    client.get("/api/similar", params={"title": "Qwxzzq Unknown Book"})
    text = client.get("/metrics").text
    assert 'bookvec_http_requests_total{method="GET",route="/api/similar",status="200"}' in text
    assert 'bookvec_http_errors_total{route="/api/similar",status="404"}' in text
    assert "bookvec_http_request_duration_seconds_bucket" in text
    points = [line for line in text.splitlines() if line.startswith("bookvec_store_points")]
    assert points and float(points[0].split()[-1]) >= len(titles)


def test_unknown_route_and_method_are_json_errors(client):
    assert_error(client.get("/api/nothing-here"), 404, "NotFound")
    assert_error(client.put("/api/similar"), 405, "MethodNotAllowed")


def test_docs_work_offline_and_the_spec_is_served(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/swagger-ui.css").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/similar", "/api/books", "/api/score", "/metrics"} <= set(spec["paths"])


def test_page_and_its_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for name in ("app.js", "app.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and "https://" not in asset.text
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/../pyproject.toml").status_code == 404


# --- reads ---------------------------------------------------------------------------------


def test_similar_equals_the_cli_json(client, served_home, titles):
    title = titles[3]
    response = client.get("/api/similar", params={"title": title, "limit": 5})
    assert response.status_code == 200
    data = response.json()
    assert data["hits"] == cli_json(served_home, "search", title, "--limit", "5")
    assert len(data["hits"]) == 5 and data["positive"] == [title]


def test_loose_title_and_genre_filter(client, served_home, titles):
    import bookvec

    with bookvec.open_index(home=served_home) as index:
        title = next(t for t in titles[5:] if index.book(t).genres)
        genre = index.book(title).genres[0]
    loose = title.lower()
    response = client.get("/api/similar", params={"title": loose, "genre": genre, "limit": 8})
    assert response.status_code == 200, response.text
    found = hits(response.json())
    assert found and all(genre in hit["genres"] for hit in found)
    assert title not in [hit["title"] for hit in found]


def test_other_filters_match_the_cli(client, served_home, titles):
    params = {"title": titles[1], "year_from": 1900, "year_to": 2000, "limit": 4}
    response = client.get("/api/similar", params=params)
    expected = cli_json(
        served_home, "search", titles[1], "--year-from", "1900", "--year-to", "2000", "-k", "4"
    )
    assert response.json()["hits"] == expected
    assert response.json()["filters"]["year_from"] == 1900
    assert all(1900 <= hit["year"] <= 2000 for hit in hits(expected) if hit["year"] is not None)


def test_unknown_title_is_404_with_suggestions_and_the_cli_message(client, served_home, titles):
    typo = titles[2][:-2] + "zq"
    error = assert_error(client.get("/api/similar", params={"title": typo}), 404)
    assert error["type"] == "TitleNotFoundError" and error["suggestions"]
    assert as_cli_line(error) == cli_error(served_home, "search", typo)


def test_validation_errors_are_422_naming_the_parameter(client, titles):
    error = assert_error(client.get("/api/similar", params={"title": titles[0], "limit": 0}), 422)
    assert "limit" in error["message"]
    error = assert_error(client.get("/api/similar"), 422)
    assert "title" in error["message"]
    error = assert_error(client.get("/api/similar", params={"title": titles[0], "mode": "x"}), 422)
    assert "mode" in error["message"]
    error = assert_error(client.get("/api/similar", params={"title": "a", "all_genres": True}), 400)
    assert "genre" in error["message"]


def test_limit_over_the_servers_maximum_is_400(served_home, titles):
    with make_client(served_home, max_limit=5) as small:
        error = assert_error(
            small.get("/api/similar", params={"title": titles[0], "limit": 6}), 400
        )
        assert "limit 6" in error["message"] and "5" in error["message"]


def test_recommend_equals_the_cli(client, served_home, titles):
    params = {"like": [titles[0], titles[1]], "unlike": [titles[2]], "limit": 5}
    response = client.get("/api/recommend", params=params)
    assert response.status_code == 200, response.text
    expected = cli_json(
        served_home, "search", "--like", titles[0], "--like", titles[1], "--unlike", titles[2],
        "-k", "5",
    )  # fmt: skip
    assert response.json()["hits"] == expected
    assert response.json()["negative"] == [titles[2]]
    assert_error(client.get("/api/recommend", params={"limit": 3}), 422)


def test_books_for_a_page(client, served_home, link_names):
    page = link_names[0]
    response = client.get("/api/linking", params={"page": page, "limit": 5})
    assert response.status_code == 200, response.text
    assert response.json()["hits"] == cli_json(served_home, "search", "--link", page, "-k", "5")
    assert response.json()["link"] == page
    assert_error(client.get("/api/linking", params={"page": "Qwxzzq No Such Page"}), 404)


def test_book_record_and_links(client, served_home, titles):
    record = client.get("/api/book", params={"title": titles[4]})
    assert record.status_code == 200 and record.json()["title"] == titles[4]
    links = client.get("/api/book/links", params={"title": titles[4], "limit": 5})
    assert links.status_code == 200
    assert links.json()["links"] == cli_json(served_home, "links", titles[4], "-k", "5")
    params = {"title": titles[4], "missing": True, "limit": 7}
    missing = client.get("/api/book/links", params=params)
    expected = cli_json(served_home, "links", titles[4], "--missing", "-k", "7")
    assert missing.json()["links"] == expected and not any(r["observed"] for r in expected)
    assert_error(client.get("/api/book", params={"title": "Qwxzzq"}), 404)


def test_explain_and_similar_pages(client, served_home, titles, link_names):
    response = client.get("/api/explain", params={"a": titles[0], "b": titles[1]})
    assert response.status_code == 200
    assert response.json() == cli_json(served_home, "explain", titles[0], titles[1])
    pages = client.get("/api/pages/similar", params={"page": link_names[1], "limit": 4})
    assert pages.json() == cli_json(served_home, "similar-links", link_names[1], "-k", "4")


def test_complete_prefix_then_fuzzy(client, titles):
    title = titles[7]
    prefix = client.get("/api/complete", params={"q": title[:6]}).json()
    assert title in prefix or all(t.lower().startswith(title[:6].lower()) for t in prefix)
    typo = title[:3] + title[4:]  # a letter dropped
    assert title in client.get("/api/complete", params={"q": typo, "limit": 10}).json()
    assert client.get("/api/complete", params={"q": "  "}).json() == []


def test_facets_count_the_genres(client, served_home):
    import bookvec

    facets = client.get("/api/facets").json()
    assert list(facets.values()) == sorted(facets.values(), reverse=True)
    books = bookvec.load(home=served_home).to_polars()
    for genre in list(facets)[:3]:  # the bundle's books; upserts in this module add others
        having = books.filter(books["genres"].list.contains(genre)).height
        assert having <= facets[genre] <= having + 10, genre


# --- scoring -------------------------------------------------------------------------------


def test_score_one_and_many(client, served_home, titles, link_names):
    one = client.get("/api/score", params={"book": titles[0], "link": link_names[0]})
    assert one.status_code == 200
    assert one.json() == cli_json(served_home, "score", titles[0], link_names[0])
    pairs = [{"book": titles[i], "link": link_names[i]} for i in range(5)]
    many = client.post("/api/score", json=pairs)
    assert many.status_code == 200
    assert [r["book"] for r in many.json()] == titles[:5]
    assert many.json()[0] == one.json()
    lines = "\n".join(json.dumps(p) for p in pairs) + "\n"
    streamed = client.post(
        "/api/score", content=lines, headers={"Content-Type": "application/x-ndjson"}
    )
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in streamed.text.splitlines()] == many.json()


def test_score_errors(client, served_home, titles, link_names):
    bad = client.post(
        "/api/score",
        content='{"book": "a", "link": "b"}\nnot json\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert "line 2" in assert_error(bad, 400, "InputError")["message"]
    assert (
        "item 1"
        in assert_error(
            client.post("/api/score", json=[{"book": titles[0], "link": link_names[0]}, {"b": 1}]),
            400,
        )["message"]
    )
    assert_error(client.post("/api/score", json={"book": "x"}), 400)
    unknown = client.get("/api/score", params={"book": "Qwxzzq", "link": link_names[0]})
    assert_error(unknown, 404)
    with make_client(served_home, max_pairs=2) as small:
        many = [{"book": titles[0], "link": link_names[0]}] * 3
        assert "3 pairs" in assert_error(small.post("/api/score", json=many), 413)["message"]


# --- writes --------------------------------------------------------------------------------

NEW = {"title": "Serve Test Book One", "links": [], "genres": ["fantasy"]}


def new_book(link_names, title: str = NEW["title"]) -> dict:
    return {**NEW, "title": title, "links": link_names[:6]}


def test_writes_need_the_key(client, served_home, link_names):
    book = [new_book(link_names)]
    assert_error(client.post("/api/books", json=book), 401, "Unauthorized")
    wrong = client.post("/api/books", json=book, headers=auth("not-the-key-at-all"))
    error = assert_error(wrong, 403, "Forbidden")
    assert "not-the-key" not in wrong.text
    assert error["hint"]
    assert_error(client.delete("/api/books", params={"title": "x"}), 401)
    with make_client(served_home) as keyless:  # started without a key: read-only
        error = assert_error(keyless.post("/api/books", json=book, headers=auth()), 403)
        assert "BOOKVEC_API_KEY" in error["hint"]


def test_read_key_when_configured(served_home, titles):
    with make_client(served_home, api_key=WRITE_KEY, read_key=READ_KEY) as locked:
        assert_error(locked.get("/api/similar", params={"title": titles[0]}), 401)
        assert_error(locked.get("/api/facets", headers={"X-API-Key": "wrong-key-123"}), 403)
        ok = locked.get("/api/similar", params={"title": titles[0]}, headers=auth(READ_KEY))
        assert ok.status_code == 200
        assert locked.get("/healthz").status_code == 200  # probes need no key


def test_upsert_report_then_unchanged_then_searchable(client, served_home, link_names):
    book = new_book(link_names)
    dry = client.post("/api/books", json=[book], params={"dry_run": True}, headers=auth())
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["added"] == 1
    assert_error(client.get("/api/book", params={"title": book["title"]}), 404)
    first = client.post("/api/books", json=[book], headers=auth())
    assert first.status_code == 200, first.text
    assert first.json()["added"] == 1 and first.json()["rejected"] == 0
    again = client.post("/api/books", json=book, headers=auth())  # one object is one book
    assert again.json()["unchanged"] == 1
    assert client.get("/api/book", params={"title": book["title"]}).status_code == 200
    found = client.get("/api/similar", params={"title": book["title"]})
    assert found.status_code == 200 and hits(found.json())


def test_upsert_formats_and_rejects(client, link_names):
    books = [new_book(link_names, f"Serve Format Book {i}") for i in range(3)]
    ndjson = "\n".join(json.dumps(b) for b in books) + "\n"
    response = client.post(
        "/api/books",
        content=gzip.compress(ndjson.encode()),
        headers={**auth(), "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 3
    bad = client.post(
        "/api/books",
        content=json.dumps(books[0]) + "\n{broken\n",
        headers={**auth(), "Content-Type": "application/x-ndjson"},
    )
    error = assert_error(bad, 400, "InputError")
    assert "request body:2" in error["message"] and "/tmp" not in error["message"]


def test_upsert_bad_bodies(client):
    assert (
        "not JSON"
        in assert_error(client.post("/api/books", content=b"{nope", headers=auth()), 400)["message"]
    )
    assert_error(client.post("/api/books", json=[], headers=auth()), 400)
    assert_error(client.post("/api/books", json=[1, 2], headers=auth()), 400)
    unsupported = client.post(
        "/api/books", content=b"x", headers={**auth(), "Content-Type": "image/png"}
    )
    assert_error(unsupported, 415)


def test_body_too_large_is_413(served_home, link_names):
    with make_client(served_home, api_key=WRITE_KEY, max_body_bytes=1000) as small:
        books = [new_book(link_names, f"Big {i}") for i in range(40)]
        assert_error(small.post("/api/books", json=books, headers=auth()), 413, "BodyTooLarge")

        def chunks():  # no Content-Length: counted as it comes
            for _ in range(20):
                yield b" " * 100

        streamed = small.post("/api/books", content=chunks(), headers=auth())
        assert_error(streamed, 413, "BodyTooLarge")


def test_delete(client, link_names):
    title = "Serve Delete Me"
    client.post("/api/books", json=[new_book(link_names, title)], headers=auth())
    dry = client.delete("/api/books", params={"title": title, "dry_run": True}, headers=auth())
    assert dry.status_code == 200, dry.text
    assert client.get("/api/book", params={"title": title}).status_code == 200
    gone = client.delete("/api/books", params={"title": title}, headers=auth())
    assert gone.status_code == 200 and gone.json()["deleted"] == 1
    assert_error(client.get("/api/book", params={"title": title}), 404)
    assert_error(client.delete("/api/books", params={"title": "Qwxzzq"}, headers=auth()), 404)


# --- CORS and the served-home marker ---------------------------------------------------------


def test_cors_off_unless_configured(client, served_home):
    origin = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    with make_client(served_home, cors_origins=("https://example.org",)) as open_:
        headers = open_.get("/healthz", headers=origin).headers
        assert headers["access-control-allow-origin"] == "https://example.org"


def test_a_served_home_refuses_cli_writes_with_a_pointer_to_the_server(tmp_path):
    import subprocess
    import sys

    from bookvec import served
    from bookvec.errors import StoreLockedError

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = served.owner_path(tmp_path)
        path.parent.mkdir(parents=True)
        path.write_text(
            json.dumps({"pid": child.pid, "url": "http://127.0.0.1:9", "collection": "books"})
        )
        with pytest.raises(StoreLockedError, match="owns the store") as caught:
            served.check_not_served(tmp_path, "books")
        assert "http://127.0.0.1:9/api/books" in caught.value.hint
    finally:
        child.kill()
        child.wait()
    assert served.serving(tmp_path) is None  # its process is gone: the file is ignored


def test_server_side_failures_are_json_without_tracebacks(tmp_path):
    import errno

    from fastapi.testclient import TestClient

    from bookvec.service.app import create_app
    from bookvec.service.config import ServeConfig

    app = create_app(ServeConfig(home=str(tmp_path)))

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))

    def read_only():
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    def bug():
        raise RuntimeError("a bug, with a secret path /etc/x")

    for path, fn in (("/t/full", full), ("/t/ro", read_only), ("/t/bug", bug)):
        app.add_api_route(path, fn)
    with TestClient(app, raise_server_exceptions=False) as test:
        assert_error(test.get("/t/full"), 507, "DiskFullError")
        assert_error(test.get("/t/ro"), 503, "StoreError")
        error = assert_error(test.get("/t/bug"), 500, "InternalError")
        assert "secret" not in error["message"]
