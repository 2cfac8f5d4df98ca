"""What a failed command says and its exit code, for the Typer app (cli/app.py) and the fast
search path (cli/searching.py) alike. No typer or rich here: the fast path must not import them.

Exit codes: 1 a user or data error (one line on stderr saying how to fix it); 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM, handled the same way).
"""

from __future__ import annotations

import re
import sys

from bookvec import settings
from bookvec.errors import BookvecError, Interrupted
from bookvec.signals import received

INTERRUPTED = "nothing stored was changed by the unfinished step."

_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")  # what click.echo strips off a non-terminal


def report(exc: BaseException) -> tuple[str, int] | None:
    """The one stderr line and exit code for a library error, a file system error or an
    interruption; None for anything else (it goes on)."""
    if isinstance(exc, BookvecError):
        return f"Error: {safe(exc)}", exc.exit_code
    if isinstance(exc, BrokenPipeError):
        return None  # stdout closed early (`| head`): nothing to say
    if isinstance(exc, OSError):  # the file system said no: a full disk, a file where a dir goes
        from bookvec import disk

        if disk.is_full(exc):
            return f"Error: {disk.full(exc.filename or settings.home())}", 1
        what = exc.strerror or exc
        where = safe(f"{what}: {exc.filename}" if exc.filename else what)
        return (
            f"Error: {where} (check that BOOKVEC_HOME and the paths "
            "given are directories or files as expected, writable, on a disk with space)",
            1,
        )
    if isinstance(exc, KeyboardInterrupt):
        message = exc.message if isinstance(exc, Interrupted) else INTERRUPTED
        return f"Interrupted: {message}", 128 + received["signal"]
    return None


def safe(text: object) -> str:
    """One line for stderr: control characters as escapes (a title in a message cannot drive
    the terminal or forge a line), URLs' credentials masked."""
    from bookvec.safetext import mask_urls, printable

    return printable(mask_urls(str(text)))


def warning_line(message: object) -> str:
    """A library warning as the one `Warning:` line the CLI prints, without the source line."""
    return f"Warning: {safe(' '.join(str(message).split()))}"


def echo_err(text: str) -> None:
    """``text`` and a newline on stderr as click.echo(err=True) writes them (ANSI styles
    stripped when stderr is not a terminal), for the path that does not import click."""
    stream = sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        text = _ANSI.sub("", text)
    stream.write(text + "\n")
    stream.flush()
