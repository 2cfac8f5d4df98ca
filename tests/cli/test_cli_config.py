"""`bookvec config`, `bookvec info`, the global --home option, and the exit-code contract:
0 ok, 1 a one-line error without a traceback, 2 a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import invoke

UNSET = {
    "BOOKVEC_MODEL": None,
    "BOOKVEC_QDRANT_URL": None,
    "BOOKVEC_QDRANT_API_KEY": None,
    "BOOKVEC_COLLECTION": None,
}


def run(args: list[str], **env: str | None):
    from bookvec.cli.main import app

    return CliRunner().invoke(app, args, env={**UNSET, **env}, catch_exceptions=False)


def test_config_says_where_each_value_came_from(trained_home: Path, tmp_path: Path):
    env = {"BOOKVEC_HOME": str(trained_home), "BOOKVEC_QDRANT_API_KEY": "secret-key-123456"}
    result = run(["config", "--json", "--collection", "other"], **env)
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config["home"] == {"value": str(trained_home), "source": "env", "env": "BOOKVEC_HOME"}
    assert config["collection"]["value"] == "other" and config["collection"]["source"] == "flag"
    assert config["qdrant_api_key"] == {
        "value": "****3456",
        "source": "env",
        "env": "BOOKVEC_QDRANT_API_KEY",
    }
    assert "secret-key" not in result.stdout
    assert config["qdrant_url"] == {"value": None, "source": "default", "env": "BOOKVEC_QDRANT_URL"}
    current = (trained_home / "models" / "CURRENT").read_text().strip()
    assert config["model"]["value"] == current
    assert config["model"]["source"].startswith("default")
    assert config["store"]["value"].startswith("embedded Qdrant Edge in")

    flagged = json.loads(run(["--home", str(tmp_path), "config", "--json"]).stdout)
    assert flagged["home"] == {"value": str(tmp_path), "source": "flag", "env": "BOOKVEC_HOME"}
    assert flagged["model"]["value"] is None
    table = run(["config"], BOOKVEC_HOME=str(trained_home), BOOKVEC_MODEL="m1")
    assert table.exit_code == 0
    assert "BOOKVEC_MODEL" in table.stdout and "m1" in table.stdout and "env" in table.stdout


def test_home_flag_is_used_by_every_command(trained_home: Path, tmp_path: Path):
    result = run(["--home", str(trained_home), "info", "--json"], BOOKVEC_HOME=str(tmp_path))
    assert json.loads(result.stdout)["home"] == str(trained_home)


def test_info_json_and_table(trained_home: Path):
    info = json.loads(invoke(["info", "--json"], trained_home).stdout)
    assert info["model"]["pairs"] > 0 and info["model"]["dim"] == info["store"]["dim"]
    table = invoke(["info"], trained_home)
    assert table.exit_code == 0
    for word in ("Model", "Store", info["model"]["id"], "indexed with this model", "edge"):
        assert word in table.stdout
    assert not table.stdout.lstrip().startswith("{")


def test_info_on_an_empty_home_explains_what_to_do(tmp_path: Path):
    result = invoke(["info"], tmp_path)
    assert result.exit_code == 0
    assert "bookvec train" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["search", "Some Book"],
        ["search", "--link", "novel"],
        ["links", "Some Book"],
        ["similar-links", "novel"],
        ["explain", "A", "B"],
        ["score", "A", "b"],
    ],
)
def test_missing_model_or_store_is_one_line_exit_1(tmp_path: Path, args):
    result = invoke(args, tmp_path)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["nonsense-command"],
        ["links"],
        ["links", "x", "--limit", "many"],
        ["similar-links", "x", "--csv", "--jsonl"],
        ["explain", "only-one"],
        ["config", "--bogus"],
    ],
)
def test_bad_usage_is_exit_2(trained_home: Path, args):
    result = invoke(args, trained_home)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_shell_completion_is_installable():
    result = run(["--help"])
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
