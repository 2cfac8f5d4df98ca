"""`bookvec upsert`: add or update books without retraining (vectors folded in by ONNX Runtime).

The input is streamed: books are read, folded in and written in batches, so a file of any size
needs the memory of one batch. Each batch is checked before it is written; if a bad record
stops the run, the batches before it stay stored and running the same input again finishes the
job (nothing already stored is written twice).
"""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, JsonOption, ModelOption, UrlOption


@app.command()
def upsert(
    file: str = typer.Argument(..., help="Books to add: a file, or - for stdin."),
    format: str | None = typer.Option(
        None, "--format", help="ndjson (6-field), jsonl, csv or parquet; default: by extension."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip malformed records (reported) instead of stopping."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Report what would change; store nothing."
    ),
    rejects_file: str | None = typer.Option(
        None,
        "--rejects",
        metavar="FILE",
        help="Also write every rejected record to FILE, one JSON line each: line, title, "
        "reason (streamed; the --json report lists only the first 100).",
        show_default=False,
    ),
    model: ModelOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Add new books (or replace changed ones) in the index, placed by the links they make.

    Input: the 6-field Wikipedia ndjson, or JSONL lines like
    {"title": "My Book", "links": ["J. R. R. Tolkien", "Fantasy"], "genres": ["fantasy"]}.
    Streamed in batches of 2,048 books (any file size; progress on stderr). Running the same
    file twice changes nothing; counts are reported as added / updated / unchanged. The --json
    report's "rejected" counts every rejected record, its "rejects" lists the first 100
    ("rejects_listed" says how many); --rejects FILE has them all. An input whose every record
    is rejected exits 1.

    Examples: bookvec upsert new_books.jsonl
    zcat books.ndjson.gz | bookvec upsert - --skip-invalid --rejects rejects.jsonl --json
    """
    from bookvec.cli.progress import counting_progress
    from bookvec.library import upserting
    from bookvec.library.store import open_model_bundle, open_store

    if rejects_file is not None:
        from bookvec.outfiles import check_output

        check_output(rejects_file, what="--rejects")  # before the model is even opened
    from bookvec.cli.common import refuse_if_served

    if not dry_run:
        refuse_if_served(url, collection)
    report = upserting.upsert(
        file,
        open_model_bundle(model),
        lambda read_only: open_store(url, api_key, collection, read_only=read_only),
        format=format,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        rejects_file=rejects_file,
        progress=counting_progress,
    )
    _report(report, dry_run=dry_run, json_=json_, rejects_file=rejects_file)
    upserting.check_stored(report, rejects_file)


def _report(report, *, dry_run: bool, json_: bool, rejects_file: str | None) -> None:
    """The counts on stdout (the --json report lists the first rejects.KEEP rejects, its
    "rejected" is the whole count); at most rejects.WARN rejects as warnings on stderr."""
    from bookvec.library.rejects import WARN

    if json_:
        output.emit_json(report.to_dict())
        return
    verb = "would be" if dry_run else "were"
    output.stdout.print(
        f"{report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.rejected} rejected"
        + (f" ({verb} not stored: dry run)" if dry_run else ""),
        markup=False,
    )
    for item in report.rejects[:WARN]:
        where = f"line {item['line']}" if item["line"] is not None else "record"
        output.warn(f"rejected {where} {item['title']!r}: {item['reason']}")
    more = report.rejected - min(WARN, len(report.rejects))
    if more > 0:
        listed = (
            f"every one is in {rejects_file}"
            if rejects_file
            else "give --rejects FILE to list them all"
        )
        output.warn(f"... and {more:,} more rejected records: {listed}")
