"""`bookvec quickstart`: from nothing to searches — get a corpus, train, index, show examples."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.errors import DownloadError

SYNTHETIC_BOOKS = 37020  # the full corpus's shape
FAMOUS = (
    "War and Peace",
    "The Fellowship of the Ring",
    "Jaws (novel)",
    "The Sea of Monsters",
    "Eclipse (Meyer novel)",
    "My Side of the Mountain",
)


def get_corpus(data: Path | None, *, no_fallback: bool) -> tuple[Path, bool]:
    """The corpus to train on and whether it is synthetic."""
    if data is not None:
        return data, False
    from bookvec.model.corpus import fetch as fetching

    try:
        return fetching.fetch_corpus(settings.data_dir(), progress=not output.is_quiet()), False
    except DownloadError as exc:
        if no_fallback:
            raise
        output.warn(f"{exc}")
        output.warn(
            "the real corpus cannot be fetched here: continuing on a SYNTHETIC corpus "
            "shaped like it (every result below is labelled synthetic)"
        )
    from bookvec.model.corpus.synth import synthesize

    path = settings.data_dir() / f"synthetic-{SYNTHETIC_BOOKS}-seed0.ndjson"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        synthesize(tmp, n_books=SYNTHETIC_BOOKS, seed=0)
        tmp.replace(path)
        truth = Path(str(tmp) + ".truth.parquet")
        if truth.exists():
            truth.replace(Path(str(path) + ".truth.parquet"))
    return path, True


def example_titles(bundle, count: int = 3) -> list[str]:
    present = [title for title in FAMOUS if title in bundle.book_index]
    if len(present) < count:
        books = bundle.books.sort(["n_links", "index"], descending=[True, False])
        present += [t for t in books.get_column("title").to_list() if t not in present]
    return present[:count]


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
    from bookvec.cli.common import open_store
    from bookvec.cli.index import run_index
    from bookvec.cli.train import run_training
    from bookvec.indexer import BookFilter
    from bookvec.library.actions import resolve_store_title
    from bookvec.model.corpus.prepare import CleaningConfig
    from bookvec.model.training.config import TrainConfig

    started = time.perf_counter()
    corpus, synthetic = get_corpus(data, no_fallback=no_fallback)
    output.log(f"corpus: {corpus}" + (" (SYNTHETIC)" if synthetic else ""))
    bundle = run_training(
        corpus, config=TrainConfig(), cleaning=CleaningConfig(), synthetic=synthetic or None
    )
    metrics = bundle.manifest.metrics
    output.log(
        f"trained in {metrics.get('train_seconds', 0):.1f} s, "
        f"validation AUC {metrics.get('val_auc', float('nan')):.4f}"
    )
    indexed = run_index(bundle, None, None, settings.DEFAULT_COLLECTION)
    output.log(f"indexed {indexed['points']:,} books in {indexed['seconds']:.1f} s")

    label = " [synthetic corpus]" if bundle.synthetic else ""
    store = open_store(None, None, settings.DEFAULT_COLLECTION, read_only=True)
    try:
        for title in example_titles(bundle):
            resolved = resolve_store_title(store, title)
            hits = store.search_like(resolved, limit=limit)
            records = [output.hit_record(h.title, h.score, h.payload) for h in hits]
            output.stdout.print(output.books_table(records, title=f"Books like {resolved}{label}"))
            genres = (store.get([resolved])[resolved].payload.get("genres") or [])[:1]
            if genres:
                hits = store.search_like(
                    resolved, limit=limit, filter=BookFilter(genres_any=tuple(genres))
                )
                records = [output.hit_record(h.title, h.score, h.payload) for h in hits]
                caption = f"Books like {resolved}, only {genres[0]}{label}"
                output.stdout.print(output.books_table(records, title=caption))
    finally:
        store.close()
    output.log(
        f"done in {time.perf_counter() - started:.1f} s. Try: bookvec search "
        f'"{example_titles(bundle, 1)[0]}" --genre <genre>'
    )
