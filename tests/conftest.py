"""Shared fixtures: the real p15 sample (skipped when absent), small synthetic corpora, and a
trained + indexed BOOKVEC_HOME built once per session through the CLI itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
P15 = Path(os.environ.get("BOOKVEC_P15", ROOT.parent / "shared" / "data" / "p15_books.ndjson"))


@pytest.fixture(scope="session")
def p15_path() -> Path:
    if not P15.is_file():
        pytest.skip(f"real sample not present at {P15}")
    return P15


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A 600-book synthetic corpus with planted genres and authors (a .truth.parquet beside it)."""
    from bookvec.model.corpus.synth import synthesize

    path = tmp_path_factory.mktemp("corpus") / "small.ndjson"
    synthesize(path, n_books=600, seed=7)
    return path


def invoke(args: list[str], home: Path, input: str | bytes | None = None, **env: str):
    from typer.testing import CliRunner

    from bookvec.cli.main import app

    runner = CliRunner()
    return runner.invoke(
        app, args, input=input, env={"BOOKVEC_HOME": str(home), **env}, catch_exceptions=False
    )


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, small_corpus) -> Path:
    """BOOKVEC_HOME with a model trained on the small corpus and indexed in the Edge store."""
    home = tmp_path_factory.mktemp("home")
    result = invoke(["train", "--data", str(small_corpus), "--seed", "1"], home)
    assert result.exit_code == 0, result.output
    result = invoke(["index"], home)
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def mutable_home(trained_home, tmp_path) -> Path:
    """A private copy of ``trained_home`` for tests that write to the store or the models."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    return home


def one_error_line(result, *needles: str) -> str:
    """The CLI failed as bad input should: exit 1, no traceback, one ``Error: ...`` line on
    stderr holding every needle. Returns the line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
