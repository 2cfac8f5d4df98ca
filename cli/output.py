"""Output helpers: data to stdout (JSON for machines, rich tables for people), logs to stderr."""

from __future__ import annotations

import csv
import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from bookvec.safetext import csv_cell, json_safe, mask_urls, printable

if TYPE_CHECKING:
    from rich.table import Table

# rich and typer are imported on first use: `bookvec search --json` needs neither.
# `stdout` and `stderr` (SafeConsoles) and the class `SafeConsole` are made by `_consoles`.


def _consoles() -> None:
    from rich.console import Console

    class SafeConsole(Console):
        """A rich Console that shows control characters in any string it renders (table
        cells, titles, captions, panel titles, messages) as visible escapes, before markup
        and layout: text from the data cannot drive the terminal, and columns stay aligned.
        LF and TAB are kept (bookvec's own multi-line output); `cell` escapes them too, for
        one-line fields."""

        def render_str(self, text: str, **kwargs: Any):  # type: ignore[override]
            return super().render_str(printable(text, keep_lines=True), **kwargs)

    globals().update(
        SafeConsole=SafeConsole,
        stdout=SafeConsole(highlight=False, soft_wrap=False),
        stderr=SafeConsole(stderr=True, highlight=False),
    )


def __getattr__(name: str) -> Any:
    if name in ("SafeConsole", "stdout", "stderr"):
        _consoles()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _console(name: str) -> Any:
    return globals().get(name) or __getattr__(name)


def cell(value: Any) -> str:
    """A value from the data (a title, a name) for a rich table or markup string: control
    characters (line breaks too) as escapes, rich markup escaped."""
    from rich.markup import escape

    return escape(printable("" if value is None else value))


def safe_message(text: str) -> str:
    """A message for stderr: one that cannot drive the terminal, and shows no secret URL."""
    return printable(mask_urls(str(text)), keep_lines=True)


_quiet = False


def set_quiet(value: bool) -> None:
    """Set by the top-level --quiet option (the app callback runs on every invocation)."""
    global _quiet
    _quiet = bool(value)


def is_quiet() -> bool:
    return _quiet


def log(message: str) -> None:
    """A progress or status line on stderr (silenced by --quiet)."""
    if not is_quiet():
        _console("stderr").print(mask_urls(message), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning on stderr; shown even with --quiet."""
    import typer

    typer.echo(f"Warning: {safe_message(message)}", err=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json_safe(json.dumps(data, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


def emit_jsonl(rows: Iterable[Any]) -> None:
    for row in rows:
        sys.stdout.write(json_safe(json.dumps(row, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


def hit_record(title: str, score: float, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON shape of a book in every command's output."""
    return {
        "title": title,
        "score": round(float(score), 6),
        "genres": list(payload.get("genres") or []),
        "author": payload.get("author"),
        "country": payload.get("country"),
        "year": payload.get("year"),
    }


def books_table(records: list[dict[str, Any]], *, title: str, score_label: str = "cosine") -> Table:
    from rich.table import Table

    table = Table(title=cell(title), title_justify="left", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", style="bold")
    table.add_column(score_label, justify="right")
    table.add_column("genres")
    table.add_column("author")
    table.add_column("year", justify="right")
    for rank, record in enumerate(records, 1):
        table.add_row(
            str(rank),
            cell(record["title"]),
            f"{record['score']:.3f}",
            cell(", ".join(record["genres"])),
            cell(record.get("author") or ""),
            str(record["year"]) if record.get("year") is not None else "",
        )
    return table


# --- one output-format option set for every command that prints rows --------------------------
# sqlite-utils' @output_options, for Typer: the decorator adds --json / --jsonl / --csv (at most
# one; none means a rich table) and hands the command one argument, ``fmt``.

FORMATS = ("table", "json", "jsonl", "csv")
_PANEL = "Output"
_FLAGS = {
    "json": "Print a JSON array on stdout.",
    "jsonl": "Print one JSON object per line on stdout.",
    "csv": "Print CSV with a header row on stdout.",
}


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command --json, --jsonl and --csv; it receives ``fmt`` (one of FORMATS)."""
    import inspect

    import typer

    signature = inspect.signature(func, eval_str=True)
    kept = [p for name, p in signature.parameters.items() if name != "fmt"]
    added = [
        inspect.Parameter(
            f"output_{name}",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool, typer.Option(f"--{name}", help=text, rich_help_panel=_PANEL)
            ],
        )
        for name, text in _FLAGS.items()
    ]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        chosen = [name for name in _FLAGS if kwargs.pop(f"output_{name}", False)]
        if len(chosen) > 1:
            raise typer.BadParameter(
                "choose one output format",
                param_hint=" / ".join(f"'--{name}'" for name in chosen),
            )
        return func(*args, fmt=chosen[0] if chosen else "table", **kwargs)

    command.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return command


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cell(value: Any) -> str:
    """A CSV cell: text (and lists of it) neutralised; a number stays a number (-0.5)."""
    if isinstance(value, (str, list, tuple)):
        return csv_cell(_plain(value))
    return _plain(value)


class _LF:
    """Rows from a writer ending them in CRLF (so that it quotes a field holding a bare CR,
    which it does not do for an LF terminator) written with LF."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, line: str) -> None:
        self.out.write(line[:-2] + "\n" if line.endswith("\r\n") else line)


def emit_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """CSV with a header row; lists joined with "; ", None as an empty cell; text cells
    neutralised against formula injection (`csv_cell`), fields with CR or LF quoted."""
    columns = list(columns or (rows[0].keys() if rows else ()))
    writer = csv.writer(_LF(sys.stdout), lineterminator="\r\n")
    if columns:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    sys.stdout.flush()


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    table: Callable[[Sequence[Mapping[str, Any]]], Table],
    columns: Sequence[str] | None = None,
    empty: str = "nothing found",
) -> None:
    """Rows in the chosen format: data on stdout; for people, an empty result is a note on
    stderr (machines get ``[]``, no lines, or a header)."""
    if fmt == "json":
        emit_json(list(rows))
    elif fmt == "jsonl":
        emit_jsonl(rows)
    elif fmt == "csv":
        emit_csv(rows, columns)
    elif not rows:
        log(empty)
    else:
        _console("stdout").print(table(rows))


BOOK_COLUMNS = ("title", "score", "genres", "author", "country", "year")


def link_record(name: str, score: float, **extra: Any) -> dict[str, Any]:
    """The JSON shape of a linked page: ``title`` and ``score`` as for books, then extras."""
    return {"title": name, "score": round(float(score), 6), **extra}


def links_table(
    records: Sequence[Mapping[str, Any]],
    *,
    title: str,
    score_label: str,
    extra: Sequence[str] = (),
    caption: str | None = None,
) -> Table:
    from rich.table import Table

    table = Table(
        title=cell(title),
        title_justify="left",
        caption=cell(caption) if caption else None,
        caption_justify="left",
    )
    table.add_column("#", justify="right", style="dim")
    table.add_column("page", style="bold")
    table.add_column(score_label, justify="right")
    for name in extra:
        table.add_column(name, justify="right" if name == "books" else "center")
    for rank, record in enumerate(records, 1):
        cells = [str(rank), cell(record["title"]), f"{record['score']:.3f}"]
        for name in extra:
            value = record.get(name)
            cells.append("✓" if value is True else "" if value is False else cell(_plain(value)))
        table.add_row(*cells)
    return table
