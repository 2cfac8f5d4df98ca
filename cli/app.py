"""The Typer application and the one place where library errors become messages and exit codes.

Exit codes: 0 ok; 1 a user or data error (one line on stderr saying how to fix it);
2 a usage error (Click's own); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled
the same way: temporary files removed, what was stored said).
"""

from __future__ import annotations

import os

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from bookvec import __version__, settings
from bookvec.cli import coercion, failures
from bookvec.errors import BookvecError
from bookvec.safetext import printable

coercion.install()


class BookvecGroup(TyperGroup):
    """Runs a command and turns a BookvecError into one line on stderr and exit code 1.
    A usage error (exit 2) keeps Click's message and display, with what the user typed made
    inert: Click escapes C0/C1 controls itself, not bidi overrides or line separators."""

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except ClickException as exc:
            raise _inert(exc) from None

    def invoke(self, ctx: typer.Context):
        import warnings

        try:
            with warnings.catch_warnings():  # restored afterwards (tests invoke in-process)
                warnings.showwarning = _one_line_warning
                return super().invoke(ctx)
        except ClickException as exc:  # a subcommand's usage error: Click shows it, exit 2
            raise _inert(exc) from None
        except BrokenPipeError:
            raise  # stdout closed early (`| head`): nothing to say
        except (BookvecError, OSError, KeyboardInterrupt) as exc:
            said = failures.report(exc)
            if said is None:
                raise
            typer.echo(said[0], err=True)
            ctx.exit(said[1])


def handle_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does: the same clean-up runs (the default
    would end the process where it stands, leaving temporary files and half builds). Both
    reach the main thread whichever thread the kernel picks (see bookvec.signals)."""
    from bookvec.signals import route_to_main_thread

    route_to_main_thread()


# Command name -> the module under bookvec.cli that registers it, in the order `--help` lists
# them. A module is imported when its command runs (all of them for --help and completion), so
# `bookvec search` does not pay for what `evaluate` or `train` import.
COMMANDS = {
    "config": "config",
    "delete": "delete",
    "evaluate": "evaluate",
    "similarity": "evaluate",
    "explain": "explain",
    "index": "index",
    "info": "info",
    "links": "links",
    "similar-links": "links",
    "map": "maps",
    "projector": "maps",
    "quickstart": "quickstart",
    "score": "score",
    "search": "search",
    "serve": "serve",
    "train": "train",
    "upsert": "upsert",
    "vectors": "vectors",
    "data": "data",
}


class LazyGroup(BookvecGroup):
    """The root group: commands come from their modules on first use (see COMMANDS)."""

    def get_command(self, ctx: typer.Context, cmd_name: str):
        if cmd_name not in self.commands:
            # an unknown name loads them all, so "did you mean" knows every command
            self._load(COMMANDS.get(cmd_name))
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        self._load(None)
        order = list(COMMANDS)
        return sorted(self.commands, key=lambda n: order.index(n) if n in order else len(order))

    def _load(self, module: str | None) -> None:
        import importlib

        from typer.main import get_command_from_info, get_command_name, get_group_from_info

        for name in [module] if module else dict.fromkeys(COMMANDS.values()):
            importlib.import_module(f"bookvec.cli.{name}")
        short, markup = app.pretty_exceptions_short, app.rich_markup_mode
        for info in app.registered_commands:
            name = info.name or get_command_name(info.callback.__name__)
            if name not in self.commands:
                command = get_command_from_info(
                    info, pretty_exceptions_short=short, rich_markup_mode=markup
                )
                self.commands[name] = command
        for info in app.registered_groups:
            if info.name not in self.commands:
                group = get_group_from_info(
                    info,
                    pretty_exceptions_short=short,
                    rich_markup_mode=markup,
                    suggest_commands=app.suggest_commands,
                )
                self.commands[group.name] = group


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one `Warning:` line on stderr, without the source line."""
    typer.echo(failures.warning_line(message), err=True)


def _inert(exc: ClickException) -> ClickException:
    """``exc`` whose message (the values typed included) shows control characters as escapes."""
    format_message = exc.format_message
    exc.format_message = lambda: printable(format_message())  # type: ignore[method-assign]
    return exc


app = typer.Typer(
    name="bookvec",
    cls=LazyGroup,
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
    from bookvec import progress
    from bookvec.cli import output
    from bookvec.cli.progress import rich_display

    output.set_quiet(quiet)
    progress.install(rich_display)  # the library's long calls show rich bars on stderr
    if home:
        os.environ[settings.ENV_HOME] = home
