"""The fast path of `bookvec search` (cli/searching.py): a plain search line runs without typer,
click or rich, takes exactly the arguments the Typer command would get, and prints the same
bytes with the same exit code; every other line goes to the Typer app unchanged."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bookvec.cli import searching

ORDER = (
    "fmt",
    "title",
    "like",
    "unlike",
    "link",
    "genre",
    "all_genres",
    "author",
    "country",
    "year_from",
    "year_to",
    "mode",
    "diverse",
    "limit",
    "exact",
    "model",
    "url",
    "api_key",
    "collection",
)

TAKEN = [
    ["search", "Some Book"],
    [
        "search",
        "Some Book",
        "--json",
        "-k",
        "3",
        "-g",
        "a",
        "--genre",
        "b",
        "--all-genres",
        "--author",
        "X",
        "--country",
        "Y",
        "--year-from",
        "1900",
        "--year-to",
        "2000",
        "-m",
        "dense",
        "--diverse",
        "--exact",
    ],
    ["-q", "search", "--like", "A", "--like", "B", "--unlike", "C", "--csv", "--model", "m1"],
    ["search", "--link", "page", "--jsonl", "--limit", "1000", "--url", "http://x"],
    ["search", "--link", "page", "--api-key", "k"],
    ["search", "--author", "a", "--author", "b", "T", "--collection", "other", "--mode", "sparse"],
    ["search", "T", "--json", "--json", "--limit", "007"],
    ["search", "naïve title (novel)", "-k", "1"],
]

LEFT_TO_TYPER = [
    ["search", "--help"],
    ["--help"],
    ["--version"],
    [],
    ["info"],
    ["search"],
    ["search", "T", "--limit=5"],
    ["search", "T", "-k5"],
    ["search", "T", "--json", "--csv"],
    ["search", "T", "-k", "0"],
    ["search", "T", "-k", "1001"],
    ["search", "T", "-k", "abc"],
    ["search", "T", "-k", "-3"],
    ["search", "T", "--year-from", "-500"],
    ["search", "A", "B"],
    ["search", "T", "--mode", "x"],
    ["search", "T", "--all-genres"],
    ["search", "T", "--link", "p"],
    ["search", "--unlike", "U"],
    ["search", "T", "--bogus"],
    ["search", "T", "--author", "-x"],
    ["search", "T", "--"],
    ["search", "-"],
    ["search", "T", "-k"],
    ["--home", "-x", "search", "T"],
    ["--home=/tmp", "search", "T"],
    ["-q", "info"],
]


def _typer_args(argv: list[str], home, monkeypatch) -> tuple | None:
    """What the Typer command hands searching.run for ``argv`` (None: it did not run)."""
    from bookvec.cli.main import app

    got: list[tuple] = []
    monkeypatch.setattr(searching, "run", lambda *args: got.append(args))
    result = CliRunner().invoke(app, argv, env={"BOOKVEC_HOME": str(home)})
    monkeypatch.undo()
    return got[0] if got else (None, result.exit_code)


@pytest.mark.parametrize("argv", TAKEN)
def test_the_fast_path_takes_what_typer_would_hand_the_command(argv, tmp_path, monkeypatch):
    parsed = searching.parse(argv)
    assert parsed is not None
    quiet, home, args = parsed
    assert quiet == ("-q" in argv)
    assert tuple(args[name] for name in ORDER) == _typer_args(argv, tmp_path, monkeypatch)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER)
def test_anything_else_is_left_to_the_typer_app(argv):
    assert searching.parse(argv) is None


def test_an_option_set_from_the_environment_is_left_to_typer(monkeypatch):
    monkeypatch.setenv("BOOKVEC_MODEL", "m1")
    assert searching.parse(["search", "T"]) is None
    assert searching.parse(["search", "T", "--model", "m2"]) is not None  # the flag wins
    monkeypatch.delenv("BOOKVEC_MODEL")
    monkeypatch.setenv("_BOOKVEC_COMPLETE", "complete_bash")  # shell completion
    assert searching.parse(["search", "T"]) is None


def _run(args: list[str], home) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKVEC_")}
    done = subprocess.run(
        [sys.executable, "-m", "bookvec.cli.main", *args],
        env={**env, "BOOKVEC_HOME": str(home), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        cwd=home,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def store_titles(trained_home) -> list[str]:
    from bookvec.library.index import open_index

    with open_index(home=trained_home) as index:
        return sorted(index.store.titles())


def test_fast_and_typer_print_the_same_bytes(trained_home, store_titles):
    title = next(t for t in store_titles if " " in t)
    loose = title.lower() + "!"
    mistyped = title[0] + title[2] + title[1] + title[3:] + "zq"
    cases = [
        ["search", title, "--json"],
        ["search", loose, "-k", "3"],
        ["search", loose, "--csv", "--mode", "dense"],
        ["search", mistyped],
        ["search", "--like", title, "--unlike", store_titles[0], "--jsonl", "-m", "dense"],
        ["search", title, "--genre", "no such genre"],  # nothing matches: a note on stderr
        ["search", title, "--json", "--diverse", "--year-from", "1000", "--year-to", "3000"],
        ["search", "--link", "no such page at all"],
        ["-q", "search", title, "--collection", "nothing-here"],
    ]
    for args in cases:
        assert searching.parse(args) is not None, args
        fast = _run(args, trained_home)
        typer = _run([f"--home={trained_home}", *args], trained_home)  # not a fast-path line
        assert fast == typer, args
        assert "Traceback" not in fast[2]
    assert _run(cases[0], trained_home)[0] == 0
    assert _run(cases[3], trained_home)[0] == 1


def test_a_fast_search_imports_no_typer_click_or_rich(trained_home, store_titles):
    env = {**os.environ, "BOOKVEC_HOME": str(trained_home)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bookvec.cli.main"]
        + ["search", store_titles[5], "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[{")
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "qdrant_edge" in imported and "bookvec" in imported
    assert not imported & {"typer", "click", "rich", "numpy", "pydantic", "polars", "torch"}


def test_the_search_ends_without_closing_the_reader_and_the_store_is_intact(trained_home):
    """The fast path leaves the read-only shard to the kernel (os._exit); the store opens
    and answers the same afterwards."""
    from bookvec.library.index import open_index

    with open_index(home=trained_home) as index:
        title = sorted(index.store.titles())[7]
    first = _run(["search", title, "--json"], trained_home)
    again = _run(["search", title, "--json"], trained_home)
    assert first == again and first[0] == 0
    with open_index(home=trained_home) as index:
        assert index.store.count() > 0
