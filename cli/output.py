"""Output helpers: data to stdout (JSON for machines, rich tables for people), logs to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


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
        stderr.print(message, markup=False)


def warn(message: str) -> None:
    """A warning on stderr; shown even with --quiet."""
    typer.echo(f"Warning: {message}", err=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_jsonl(rows: Iterable[Any]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
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
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", style="bold")
    table.add_column(score_label, justify="right")
    table.add_column("genres")
    table.add_column("author")
    table.add_column("year", justify="right")
    for rank, record in enumerate(records, 1):
        table.add_row(
            str(rank),
            record["title"],
            f"{record['score']:.3f}",
            ", ".join(record["genres"]),
            record.get("author") or "",
            str(record["year"]) if record.get("year") is not None else "",
        )
    return table
