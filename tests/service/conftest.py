"""Fixtures for the HTTP service: a served copy of the trained home, apps over it (httpx
through Starlette's TestClient, lifespan included), and the keys they are started with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install '.[serve]')")

WRITE_KEY = "write-key-0123456789"
READ_KEY = "read-key-0123456789"


@pytest.fixture(scope="module")
def served_home(trained_home, tmp_path_factory) -> Path:
    """A private copy of the trained home for one test module (its writes stay in it)."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    return home


def make_client(home: Path, **config):
    from fastapi.testclient import TestClient

    from bookvec.service.app import create_app
    from bookvec.service.config import ServeConfig

    app = create_app(ServeConfig(home=str(home), **config))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(served_home, monkeypatch_module):
    monkeypatch_module.setenv("BOOKVEC_HOME", str(served_home))
    with make_client(served_home, api_key=WRITE_KEY) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def titles(served_home) -> list[str]:
    import bookvec

    return list(bookvec.load(home=served_home).titles)


@pytest.fixture(scope="module")
def link_names(served_home) -> list[str]:
    import bookvec

    return list(bookvec.load(home=served_home).link_names)


def auth(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response, status: int, type_: str | None = None) -> dict:
    """The response is the error model with this status: JSON, type / message / hint."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"type", "message", "hint"}
    assert "Traceback" not in response.text
    if type_ is not None:
        assert error["type"] == type_, error
    return error
