"""`bookvec upsert`: add or update books without retraining (vectors folded in by ONNX Runtime).

The input is streamed: books are read, folded in and written in batches, so a file of any size
needs the memory of one batch. Each batch is checked before it is written; if a bad record
stops the run, the batches before it stay stored and running the same input again finishes the
job (nothing already stored is written twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
from bookvec.model.sparse import DEFAULT_WEIGHTING

BATCH = 2048  # books read and folded in at a time


def folded_points(
    books: Iterable[Any],
    bundle,
    runtime,
    rejected: list,
    advance: Callable[[int], None],
    batch: int = BATCH,
    weights=None,
) -> Iterator[Any]:
    """Books -> store points, one batch of `batch` books at a time (one ONNX call each);
    books the model cannot place go to `rejected`."""
    from bookvec.cli.actions import fold_in_books
    from bookvec.indexer.points import batched

    for chunk in batched(books, batch):
        folded = fold_in_books(chunk, bundle, runtime, weights)
        rejected.extend(folded.rejected)
        yield from folded.points
        advance(len(chunk))


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
        help="Also write the rejected records to FILE, one JSON line each: line, title, reason.",
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
    file twice changes nothing; counts are reported as added / updated / unchanged.

    Examples: bookvec upsert new_books.jsonl
    zcat books.ndjson.gz | bookvec upsert - --skip-invalid --rejects rejects.jsonl --json
    """
    from bookvec.cli.progress import counting_progress
    from bookvec.model.corpus import read_books
    from bookvec.model.runtime import Runtime

    if rejects_file is not None:
        _check_writable_dir(rejects_file)
    bundle = open_model(model)
    bundle.verify(("fold_in.onnx", "links.parquet"))
    rejects: list = []
    books = read_books(file, format=format, skip_invalid=skip_invalid, rejects=rejects)
    runtime = Runtime(bundle.path)
    rejected: list = []

    store = open_store(url, api_key, collection, read_only=dry_run)
    try:
        info = store.info()
        if info is not None and info.model_version != bundle.model_id:
            raise ModelMismatchError(
                f"collection {info.name!r} holds vectors of model {info.model_version}, "
                f"the current model is {bundle.model_id}",
                hint="run `bookvec index` to rebuild it with the current model, then upsert",
            )
        # New books' sparse vectors are weighted as the indexed ones (the bundle's IDF).
        from bookvec.cli.actions import bundle_link_weights, sparse_options

        weighting = info.index.sparse_weighting if info and info.index.has_sparse else None
        weights = bundle_link_weights(bundle, weighting)
        with counting_progress("upserting") as advance:
            points = folded_points(books, bundle, runtime, rejected, advance, weights=weights)
            if info is None and dry_run:  # nothing stored yet: every book would be new
                added = len({point.title for point in points})
                counts = {"added": added, "updated": 0, "unchanged": 0}
            else:
                if info is None:
                    store.ensure_collection(
                        vector_size=bundle.dim,
                        model_version=bundle.model_id,
                        options=sparse_options(DEFAULT_WEIGHTING),
                    )
                    weights = bundle_link_weights(bundle, DEFAULT_WEIGHTING)
                    points = folded_points(
                        books, bundle, runtime, rejected, advance, weights=weights
                    )
                result = store.upsert(points, dry_run=dry_run)
                counts = {
                    "added": result.added,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                }
    finally:
        store.close()
    all_rejected = sorted([*rejects, *rejected], key=lambda r: (r[0] is None, r[0] or 0))
    report: dict[str, Any] = {
        **counts,
        "rejected": len(all_rejected),
        "rejects": [
            {"line": line, "title": title, "reason": reason} for line, title, reason in all_rejected
        ],
        "dry_run": dry_run,
    }
    if rejects_file is not None:
        _write_rejects(rejects_file, report["rejects"])
    if json_:
        output.emit_json(report)
        return
    verb = "would be" if dry_run else "were"
    output.stdout.print(
        f"{report['added']} added, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['rejected']} rejected"
        + (f" ({verb} not stored: dry run)" if dry_run else ""),
        markup=False,
    )
    for item in report["rejects"]:
        where = f"line {item['line']}" if item["line"] is not None else "record"
        output.warn(f"rejected {where} {item['title']!r}: {item['reason']}")


def _check_writable_dir(path: str) -> None:
    """Fail before any work if the rejects file cannot be written where it is asked for."""
    from pathlib import Path

    from bookvec.errors import ConfigError

    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise ConfigError(
            f"--rejects {path}: the directory {parent} does not exist",
            hint="create it first, or give another path",
        )


def _write_rejects(path: str, rejects: list[dict[str, Any]]) -> None:
    """The rejected records as JSON lines, written whole (a temporary file, then renamed)."""
    import json
    import os
    from pathlib import Path

    from bookvec.errors import ConfigError

    target = Path(path).expanduser()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            for item in rejects:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"--rejects {path}: cannot write it: {exc.strerror or exc}",
            hint="give a path in a writable directory",
        ) from None
