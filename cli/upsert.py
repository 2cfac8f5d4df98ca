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
from bookvec.sparse import DEFAULT_WEIGHTING

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
    from bookvec.indexer.points import batched
    from bookvec.library.actions import fold_in_books

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
    from bookvec.library.rejects import Rejects
    from bookvec.model.corpus.read import read_books
    from bookvec.model.runtime import Runtime

    if rejects_file is not None:
        _check_writable_dir(rejects_file)
    bundle = open_model(model)
    from bookvec.model import bundle as files

    bundle.verify((files.FOLD_IN_GRAPH, files.LINKS))
    rejects = Rejects(rejects_file)
    try:
        books = read_books(file, format=format, skip_invalid=skip_invalid, rejects=rejects)
        runtime = Runtime(bundle.path)
        counts = _store(books, bundle, runtime, rejects, dry_run, url, api_key, collection)
        rejects.commit()
    finally:
        rejects.discard()  # nothing left to remove once committed
    _report(counts, rejects, dry_run=dry_run, json_=json_, rejects_file=rejects_file)


def _store(books, bundle, runtime, rejects, dry_run, url, api_key, collection) -> dict[str, int]:
    from bookvec.cli.progress import counting_progress
    from bookvec.errors import Interrupted

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
        from bookvec.library.actions import bundle_link_weights, sparse_options

        weighting = info.index.sparse_weighting if info and info.index.has_sparse else None
        weights = bundle_link_weights(bundle, weighting)
        with counting_progress("upserting") as advance:
            if info is None and not dry_run:
                store.ensure_collection(
                    vector_size=bundle.dim,
                    model_version=bundle.model_id,
                    options=sparse_options(DEFAULT_WEIGHTING),
                )
                weights = bundle_link_weights(bundle, DEFAULT_WEIGHTING)
            points = folded_points(
                rejects.books(books), bundle, runtime, rejects, advance, weights=weights
            )
            if info is None and dry_run:  # nothing stored yet: every book would be new
                added = len({point.title for point in points})
                return {"added": added, "updated": 0, "unchanged": 0}
            try:
                result = store.upsert(points, dry_run=dry_run)
            except Interrupted as exc:
                raise Interrupted(_interrupted(exc.done), done=exc.done) from None
            return {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    finally:
        store.close()


def _interrupted(stored: int) -> str:
    if not stored:
        return "no book was stored; nothing stored was changed."
    return (
        f"{stored:,} books were stored before the interruption; running the same command "
        "again completes the rest (books already stored are not written twice)."
    )


def _report(counts, rejects, *, dry_run: bool, json_: bool, rejects_file: str | None) -> None:
    """The counts on stdout (the --json report lists the first rejects.KEEP rejects, its
    "rejected" is the whole count); at most rejects.WARN rejects as warnings on stderr. An
    input in which every record was rejected exits 1."""
    from bookvec.errors import InputError
    from bookvec.library.rejects import WARN, as_dict

    report: dict[str, Any] = {
        **counts,
        "rejected": rejects.count,
        "rejects": [as_dict(item) for item in rejects.kept],
        "rejects_listed": len(rejects.kept),
        "dry_run": dry_run,
    }
    if json_:
        output.emit_json(report)
    else:
        verb = "would be" if dry_run else "were"
        output.stdout.print(
            f"{report['added']} added, {report['updated']} updated, "
            f"{report['unchanged']} unchanged, {report['rejected']} rejected"
            + (f" ({verb} not stored: dry run)" if dry_run else ""),
            markup=False,
        )
        for item in report["rejects"][:WARN]:
            where = f"line {item['line']}" if item["line"] is not None else "record"
            output.warn(f"rejected {where} {item['title']!r}: {item['reason']}")
        more = rejects.count - min(WARN, len(rejects.kept))
        if more > 0:
            listed = (
                f"every one is in {rejects_file}"
                if rejects_file
                else "give --rejects FILE to list them all"
            )
            output.warn(f"... and {more:,} more rejected records: {listed}")
    stored = counts["added"] + counts["updated"] + counts["unchanged"]
    if rejects.count and not stored:
        raise InputError(
            f"every record was rejected ({rejects.count:,}); nothing was stored",
            hint="see the reasons "
            + (f"in {rejects_file}" if rejects_file else "above, or give --rejects FILE"),
        )


def _check_writable_dir(path: str) -> None:
    """Fail before any book is stored if the rejects file cannot be written where it is asked
    for: a missing or read-only directory, a directory or a block device as the name."""
    from bookvec.outfiles import check_output

    check_output(path, what="--rejects")
