"""A CLI write to a home whose embedded store a running `bookvec serve` owns stops with one line
saying to go through the server; reads and dry runs go ahead, and a server that died leaves
nothing in the way."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bookvec import served
from tests.conftest import invoke, one_error_line


@pytest.fixture
def served_home(tmp_path):
    """A home claimed by a live process standing in for a server (pid alive, not ours)."""
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    path = served.owner_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(
        f'{{"pid": {stand_in.pid}, "url": "http://127.0.0.1:8765", "collection": "books"}}'
    )
    yield tmp_path
    stand_in.kill()
    stand_in.wait()


@pytest.mark.parametrize(
    "args",
    [["upsert", "-"], ["delete", "Some Book"], ["index"]],
    ids=["upsert", "delete", "index"],
)
def test_a_cli_write_to_a_served_home_says_to_go_through_the_server(served_home, args):
    result = invoke(args, served_home, input='{"title": "A", "links": ["x"]}\n')
    line = one_error_line(result, "bookvec server (pid", "owns the store")
    assert "http://127.0.0.1:8765/api/books" in line


def test_a_dry_run_is_not_a_write(served_home):
    result = invoke(["delete", "Some Book", "--dry-run"], served_home)
    assert "bookvec server" not in result.output


def test_a_dead_server_is_ignored(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = served.owner_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(f'{{"pid": {int(done.stdout)}, "url": "http://x", "collection": "books"}}')
    result = invoke(["delete", "Some Book"], tmp_path)
    assert "bookvec server" not in result.output


def test_another_collection_is_not_in_the_way(served_home):
    result = invoke(["delete", "Some Book", "--collection", "other"], served_home)
    assert "bookvec server" not in result.output
