"""The Typer application and the one place where library errors become messages and exit codes.

Exit codes: 0 ok; 1 a user or data error (one line on stderr saying how to fix it);
2 a usage error (Click's own); 130 interrupted.
"""

from __future__ import annotations

import os

import typer
from typer.core import TyperGroup

from bookvec import __version__, settings
from bookvec.errors import BookvecError


class BookvecGroup(TyperGroup):
    """Runs a command and turns a BookvecError into one line on stderr and exit code 1."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except BookvecError as exc:
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("Interrupted: nothing stored was changed by the unfinished step.", err=True)
            ctx.exit(130)


app = typer.Typer(
    name="bookvec",
    cls=BookvecGroup,
    help=(
        "Learn embeddings of books from the pages they link to, then search them.\n\n"
        "Start with: bookvec quickstart --data books.ndjson"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bookvec {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only data on stdout; no progress."),
    home: str | None = typer.Option(
        None,
        "--home",
        envvar=settings.ENV_HOME,
        help="Where bookvec keeps data, models and the embedded store (this run only).",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    from bookvec.cli import output

    output.set_quiet(quiet)
    if home:
        os.environ[settings.ENV_HOME] = home
