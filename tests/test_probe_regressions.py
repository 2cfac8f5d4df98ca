"""Cases found by the adversarial probe of issue 12 after items 1-9 landed, kept so that they
stay fixed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import invoke

# Click escapes C0/C1 controls in what it echoes, not bidi overrides or line separators.
TYPED = ["\x1b[31m", "\x1b]0;pwned\x07", "\u202e", "\u2028", "\x9b2J"]


@pytest.mark.parametrize(
    "args",
    [
        lambda t: ["search", "x", f"--{t}x"],  # a subcommand's unknown option
        lambda t: [f"--{t}x"],  # the root group's unknown option
        lambda t: [f"sea{t}rch"],  # an unknown command
        lambda t: ["map", "--method", t],  # a choice
        lambda t: ["search", "x", "y", t],  # extra arguments
    ],
)
def test_usage_errors_show_typed_controls_as_escapes(args, tmp_path) -> None:
    for typed in TYPED:
        result = invoke(args(typed), tmp_path)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\u2028"):
            assert ch not in result.output, (typed, result.output)
        assert "Usage: bookvec" in result.output  # Click's own display stays


def test_usage_error_in_a_real_process_is_inert(tmp_path) -> None:
    cmd = [sys.executable, "-m", "bookvec.cli.main", "search", "x", "--\u202e\x1b[31mx"]
    env = {"BOOKVEC_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert done.returncode == 2
    assert b"\x1b" not in done.stderr and "\u202e".encode() not in done.stderr
    assert b"No such option: --\\u202e\\x1b[31mx" in done.stderr
