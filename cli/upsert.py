"""`bookvec upsert`: add or update books without retraining (vectors folded in by ONNX Runtime)."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    JsonOption,
    ModelOption,
    UrlOption,
    open_model,
    open_store,
)
from bookvec.errors import ModelMismatchError


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
    model: ModelOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Add new books (or replace changed ones) in the index, placed by the links they make.

    Input: the 6-field Wikipedia ndjson, or JSONL lines like
    {"title": "My Book", "links": ["J. R. R. Tolkien", "Fantasy"], "genres": ["fantasy"]}.
    Running the same file twice changes nothing.

    Example: bookvec upsert new_books.jsonl
    """
    from bookvec.cli.actions import fold_in_books
    from bookvec.model.corpus import read_books
    from bookvec.model.runtime import Runtime

    bundle = open_model(model)
    bundle.verify(("fold_in.onnx", "links.parquet"))
    rejects: list = []
    books = list(read_books(file, format=format, skip_invalid=skip_invalid, rejects=rejects))
    runtime = Runtime(bundle.path)
    folded = fold_in_books(books, bundle, runtime)
    rejected = [*rejects, *folded.rejected]

    store = open_store(url, api_key, collection)
    try:
        info = store.info()
        if info is not None and info.model_version != bundle.model_id:
            raise ModelMismatchError(
                f"collection {info.name!r} holds vectors of model {info.model_version}, "
                f"the current model is {bundle.model_id}",
                hint="run `bookvec index` to rebuild it with the current model, then upsert",
            )
        if info is None:
            store.ensure_collection(vector_size=bundle.dim, model_version=bundle.model_id)
        if dry_run:
            existing = store.get([point.title for point in folded.points])
            added = sum(1 for p in folded.points if p.title not in existing)
            unchanged = sum(
                1
                for p in folded.points
                if p.title in existing
                and existing[p.title].payload.get("content_hash") == p.payload["content_hash"]
            )
            report = {"added": added, "updated": len(folded.points) - added - unchanged}
            report["unchanged"] = unchanged
        else:
            result = store.upsert(folded.points)
            report = {
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
            }
    finally:
        store.close()
    report["rejected"] = len(rejected)
    report["rejects"] = [
        {"line": line, "title": title, "reason": reason} for line, title, reason in rejected
    ]
    report["dry_run"] = dry_run
    if json_:
        output.emit_json(report)
        return
    verb = "would be" if dry_run else "were"
    output.stdout.print(
        f"{report['added']} added, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['rejected']} rejected"
        + (f" ({verb} not stored: dry run)" if dry_run else "")
    )
    for item in report["rejects"]:
        where = f"line {item['line']}" if item["line"] is not None else "record"
        output.warn(f"rejected {where} {item['title']!r}: {item['reason']}")
