"""`bookvec score`: how likely a book's article links to a page, through ONNX Runtime."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption, open_model
from bookvec.errors import InputError


def read_pairs(source: str) -> list[tuple[int, str, str]]:
    """(line, book, link) from CSV (columns book,link) or JSONL ({"book", "link"}); - is stdin."""
    if source == "-":
        text = sys.stdin.read()
        name = "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError("no such file", path=source, hint="check the path")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", path=source) from None
        name = source
    text = text.lstrip("\ufeff")
    pairs: list[tuple[int, str, str]] = []
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"not JSON ({exc.msg})", path=name, line=number) from None
            if not isinstance(record, dict) or not all(
                isinstance(record.get(k), str) for k in ("book", "link")
            ):
                raise InputError('expected {"book": "...", "link": "..."}', path=name, line=number)
            pairs.append((number, record["book"], record["link"]))
        return pairs
    reader = csv.reader(io.StringIO(text))
    for number, row in enumerate(reader, 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["book", "link"]:
            continue
        if len(row) < 2:
            raise InputError("expected two columns: book,link", path=name, line=number)
        pairs.append((number, row[0], row[1]))
    return pairs


@app.command()
def score(
    book: str | None = typer.Argument(None, help="A book title."),
    link: str | None = typer.Argument(None, help="A page title the book might link to."),
    pairs: str | None = typer.Option(
        None, "--pairs", help="Score many: a CSV (book,link) or JSONL file, or - for stdin."
    ),
    exact: bool = typer.Option(False, "--exact", help="Take titles as typed, no matching."),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Probability that BOOK's article links to LINK, from the model's score graph (ONNX Runtime).

    Examples: bookvec score "Jaws (novel)" "shark"
              bookvec score --pairs pairs.csv --json
    """
    import numpy as np

    from bookvec.cli.actions import resolve_bundle_book, resolve_bundle_link
    from bookvec.model.runtime import Runtime

    if pairs is None and (book is None or link is None):
        raise typer.BadParameter("give BOOK and LINK, or --pairs FILE")
    bundle = open_model(model)
    bundle.verify(("score.onnx",))
    items = read_pairs(pairs) if pairs is not None else [(0, book, link)]
    book_idx, link_idx = [], []
    for _, book_title, link_name in items:
        book_idx.append(resolve_bundle_book(bundle, book_title, exact=exact))
        link_idx.append(resolve_bundle_link(bundle, link_name, exact=exact))
    runtime = Runtime(bundle.path)
    probabilities = runtime.score(np.asarray(book_idx), np.asarray(link_idx))
    results = [
        {
            "book": bundle.book_titles[b],
            "link": bundle.link_names[k],
            "probability": round(float(p), 6),
        }
        for b, k, p in zip(book_idx, link_idx, probabilities, strict=True)
    ]
    if json_:
        output.emit_json(results if pairs is not None else results[0])
        return
    for result in results:
        output.stdout.print(
            f"{result['probability']:.4f}  {result['book']}  ->  {result['link']}", markup=False
        )
