"""`bookvec score`: how likely a book's article links to a page, through ONNX Runtime."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ModelOption


def _pairs_table(records):
    from rich.table import Table

    table = Table(title="P(the book's article links to the page)", title_justify="left")
    table.add_column("probability", justify="right")
    table.add_column("book", style="bold")
    table.add_column("page")
    for record in records:
        table.add_row(
            f"{record['probability']:.4f}", output.cell(record["book"]), output.cell(record["link"])
        )
    return table


@app.command()
@output.output_options
def score(
    fmt: str,
    book: str | None = typer.Argument(None, metavar="BOOK", help="A book title."),
    link: str | None = typer.Argument(
        None, metavar="LINK", help="A page title the book might link to."
    ),
    pairs: str | None = typer.Option(
        None,
        "--pairs",
        help="Score many: a CSV (book,link), JSONL or Parquet file, or - for stdin.",
    ),
    format: str | None = typer.Option(
        None, "--format", help="Format of --pairs: csv, jsonl or parquet (default: by extension)."
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Report bad rows and unknown titles on stderr and score the rest.",
    ),
    exact: bool = typer.Option(False, "--exact", help="Take titles as typed, no matching."),
    model: ModelOption = None,
) -> None:
    """Probability that BOOK's article links to LINK, from the model's score graph (ONNX Runtime).

    With --pairs, rows are scored in one batch. A bad row (not CSV/JSON, an unknown book or
    page) stops the run with its line number, or with --skip-invalid is reported on stderr
    (with the reason) and left out.

    Examples: bookvec score "Jaws (novel)" "shark"
              bookvec score --pairs pairs.csv --json
              cat pairs.jsonl | bookvec score --pairs - --skip-invalid --csv
    """
    from bookvec.library.model import load
    from bookvec.library.pairs import PairRow, read_pairs

    if pairs is None and (book is None or link is None):
        raise typer.BadParameter("give BOOK and LINK, or --pairs FILE", param_hint="'BOOK LINK'")
    if pairs is not None and (book is not None or link is not None):
        raise typer.BadParameter("give BOOK and LINK, or --pairs FILE, not both")
    m = load(model)
    rejects: list[tuple[int, str]] = []
    source = "<stdin>" if pairs == "-" else pairs
    if pairs is not None:
        rows = read_pairs(pairs, format=format, rejects=rejects if skip_invalid else None)
    else:
        rows = [PairRow(0, book, link)]  # type: ignore[arg-type]
    scored = m.score(
        rows, exact=exact, skip_invalid=skip_invalid and pairs is not None, source=source
    )
    rejects += scored.rejects
    results = scored.records()
    for line, reason in sorted(rejects):
        output.warn(f"{source}:{line}: skipped: {reason}")
    if pairs is not None:
        output.log(f"scored {len(results)} pairs, skipped {len(rejects)}")
    if pairs is None and fmt == "json":
        output.emit_json(results[0])
        return
    if pairs is None and fmt == "table":
        result = results[0]
        output.stdout.print(
            f"{result['probability']:.4f}  {output.cell(result['book'])}  ->  "
            f"{output.cell(result['link'])}"
        )
        return
    output.emit_rows(
        results,
        fmt,
        table=_pairs_table,
        columns=("book", "link", "probability"),
        empty="no pairs to score",
    )
