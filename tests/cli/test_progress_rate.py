"""The counting bar (index, upsert, quickstart) shows its rate (issue 15, item 3)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from bookvec.cli.progress import _rate_column, rate_text


def test_rate_text() -> None:
    assert rate_text(None) == "" and rate_text(0.0) == ""
    assert rate_text(20512.4) == "20,512/s"


def test_the_bar_renders_the_rate() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    column = _rate_column()
    with Progress(column, console=console) as bar:
        task = bar.add_task("upserting", total=None)
        bar.advance(task, 1000)
        bar.advance(task, 1000)
        shown = column.render(bar.tasks[0]).plain
    assert shown.endswith("/s") and shown[0].isdigit()
