"""Add or update books without retraining (vectors folded in by ONNX Runtime): `bookvec upsert`
and ``Index.upsert``.

The input is streamed: books are read, folded in and written in batches, so a file of any size
needs the memory of one batch. Each batch is checked before it is written; if a bad record
stops the run, the batches before it stay stored and running the same input again finishes the
job (nothing already stored is written twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from bookvec.errors import InputError, Interrupted, ModelMismatchError
from bookvec.library.results import UpsertReport
from bookvec.model import bundle as files

BATCH = 2048  # books read and folded in at a time

# progress(label, total) -> a context yielding advance(n): the CLI's bar, or nothing
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextmanager
def no_progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


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
    from bookvec.library import actions

    for chunk in batched(books, batch):
        folded = actions.fold_in_books(chunk, bundle, runtime, weights)
        rejected.extend(folded.rejected)
        yield from folded.points
        advance(len(chunk))


def read_input(source: Any, *, format: str | None, skip_invalid: bool, rejects) -> Iterable[Any]:
    """Books from a path (or ``-``: stdin) in any format `bookvec upsert` reads, or from an
    iterable of dicts in the corpus record shape ({"title", "links", "genres", ...})."""
    from pathlib import Path

    from bookvec.model.corpus.read import read_books

    if isinstance(source, (str, Path)):
        return read_books(str(source), format=format, skip_invalid=skip_invalid, rejects=rejects)
    return _records(source, skip_invalid=skip_invalid, rejects=rejects)


def _records(books: Iterable[Any], *, skip_invalid: bool, rejects) -> Iterator[Any]:
    """Dicts in the corpus record shape -> corpus records, through the same reader as a file
    (one JSON line each in a temporary file: the same checks, the same line numbers)."""
    import json
    import os
    import tempfile

    from bookvec.model.corpus.read import read_books

    handle, name = tempfile.mkstemp(prefix="bookvec-upsert-", suffix=".jsonl")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for book in books:
                out.write(json.dumps(book, ensure_ascii=False, default=str) + "\n")
        try:
            yield from read_books(name, format="jsonl", skip_invalid=skip_invalid, rejects=rejects)
        except InputError as exc:  # name the records, not the temporary file
            raise InputError(exc.message.replace(name, "<books>", 1), hint=exc.hint) from None
    finally:
        os.unlink(name)


def upsert(
    books: Any,
    bundle,
    opener: Callable[..., Any],
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
    rejects_file: str | None = None,
    progress: ProgressFactory = no_progress,
) -> UpsertReport:
    """Fold in and store ``books`` (see read_input) in the store ``opener(read_only=...)``
    opens (for this call; once the input is open, so a missing file is said first); the
    report counts added, updated, unchanged and rejected books. Does not raise when every
    record is rejected: see check_stored (the CLI prints the report first)."""
    from bookvec.library.rejects import Rejects, as_dict
    from bookvec.model.runtime import Runtime

    if rejects_file is not None:
        from bookvec.outfiles import check_output

        # fail before any book is stored if the rejects file cannot be written there
        check_output(rejects_file, what="--rejects")
    bundle.verify((files.FOLD_IN_GRAPH, files.LINKS))
    rejects = Rejects(rejects_file)
    try:
        read = read_input(books, format=format, skip_invalid=skip_invalid, rejects=rejects)
        runtime = Runtime(bundle.path)
        store = opener(read_only=dry_run)
        try:
            counts = _store(read, bundle, runtime, rejects, store, dry_run, progress)
        finally:
            store.close()
        rejects.commit()
    finally:
        rejects.discard()  # nothing left to remove once committed
    return UpsertReport(
        **counts,
        rejected=rejects.count,
        rejects=tuple(as_dict(item) for item in rejects.kept),
        dry_run=dry_run,
    )


def check_stored(report: UpsertReport, rejects_file: str | None = None) -> None:
    """An input in which every record was rejected is an error (nothing was stored)."""
    if report.rejected and not report.stored:
        raise InputError(
            f"every record was rejected ({report.rejected:,}); nothing was stored",
            hint="see the reasons "
            + (f"in {rejects_file}" if rejects_file else "above, or give --rejects FILE"),
        )


def _store(books, bundle, runtime, rejects, store, dry_run, progress) -> dict[str, int]:
    from bookvec.library.actions import bundle_link_weights, sparse_options
    from bookvec.sparse import DEFAULT_WEIGHTING

    info = store.info()
    if info is not None and info.model_version != bundle.model_id:
        raise ModelMismatchError(
            f"collection {info.name!r} holds vectors of model {info.model_version}, "
            f"the current model is {bundle.model_id}",
            hint="run `bookvec index` to rebuild it with the current model, then upsert",
        )
    # New books' sparse vectors are weighted as the indexed ones (the bundle's IDF).
    weighting = info.index.sparse_weighting if info and info.index.has_sparse else None
    weights = bundle_link_weights(bundle, weighting)
    with progress("upserting", None) as advance:
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


def _interrupted(stored: int) -> str:
    if not stored:
        return "no book was stored; nothing stored was changed."
    return (
        f"{stored:,} books were stored before the interruption; running the same command "
        "again completes the rest (books already stored are not written twice)."
    )
