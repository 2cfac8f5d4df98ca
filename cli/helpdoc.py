"""Generate docs/cli.md from the commands' own --help (a test fails when the file drifts).

python -m bookvec.cli.helpdoc > docs/cli.md
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

WIDTH = "100"


def _walk(command, path: list[str]):
    yield path, command
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), [*path, name])


def render() -> str:
    from bookvec.cli.main import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    parts = [
        "# bookvec command reference",
        "",
        "Generated from `--help` by `python -m bookvec.cli.helpdoc > docs/cli.md`; "
        "`tests/test_docs.py` fails when it drifts from the code.",
        "",
    ]
    for path, _ in _walk(root, []):
        result = runner.invoke(
            app,
            [*path, "--help"],
            env={
                "COLUMNS": WIDTH,
                "TERM": "dumb",
                "NO_COLOR": "1",
                "_TYPER_FORCE_DISABLE_TERMINAL": "1",
            },
            prog_name="bookvec",
        )
        title = " ".join(["bookvec", *path])
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        parts += [f"## {title}", "", "```text", text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
