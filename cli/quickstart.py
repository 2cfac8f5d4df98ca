"""`bookvec quickstart`: from nothing to searches — get a corpus, train, index, show examples."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from bookvec.cli import output
from bookvec.cli.app import app


@app.command()
def quickstart(
    data: Path | None = typer.Option(
        None, "--data", "-d", help="Corpus file; default: fetch the full Wikipedia corpus."
    ),
    no_fallback: bool = typer.Option(
        False, "--no-fallback", help="Fail if the corpus cannot be fetched (no synthetic data)."
    ),
    limit: int = typer.Option(5, "--limit", "-k", help="Books shown per example search."),
) -> None:
    """Fetch (or use --data), train, index into the embedded store and show example searches.

    Example: bookvec quickstart --data ../shared/data/p15_books.ndjson
    """
    from bookvec.cli.progress import counting_progress
    from bookvec.library import quickstart as steps
    from bookvec.library.index import open_index
    from bookvec.library.indexing import index_model
    from bookvec.library.store import home_of
    from bookvec.library.training import plan_training, run_training, summary

    started = time.perf_counter()
    progress = not output.is_quiet()
    corpus, synthetic = steps.get_corpus(
        data, no_fallback=no_fallback, progress=progress, warn=output.warn
    )
    output.log(f"corpus: {corpus}" + (" (SYNTHETIC)" if synthetic else ""))
    plan = plan_training(
        corpus, None, warm_start=None, home=home_of(), min_books=None, resume=False
    )
    bundle = run_training(
        corpus,
        config=plan["config"],
        cleaning=plan["cleaning"],
        synthetic=synthetic or None,
        progress=progress,
        log=output.log,
    )
    metrics = summary(bundle)["metrics"]
    output.log(
        f"trained in {metrics.get('train_seconds', 0):.1f} s, "
        f"validation AUC {metrics.get('val_auc', float('nan')):.4f}"
    )
    indexed = index_model(bundle, progress=counting_progress, log=output.log, warn=output.warn)
    output.log(f"indexed {indexed['points']:,} books in {indexed['seconds']:.1f} s")

    label = " [synthetic corpus]" if bundle.synthetic else ""
    with open_index() as index:
        for caption, found in steps.example_searches(index, bundle, limit=limit):
            records = found.records()
            output.stdout.print(output.books_table(records, title=f"{caption}{label}"))
    output.log(
        f"done in {time.perf_counter() - started:.1f} s. Try: bookvec search "
        f'"{steps.example_titles(bundle, 1)[0]}" --genre <genre>'
    )
