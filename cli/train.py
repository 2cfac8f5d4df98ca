"""`bookvec train`: corpus -> model bundle (PyTorch, imported only here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption
from bookvec.errors import ConfigError, DataNotFoundError


def default_corpus() -> Path:
    from bookvec.model.corpus.fetch import CORPUS_FILENAME

    path = settings.data_dir() / CORPUS_FILENAME
    if not path.is_file():
        raise DataNotFoundError(
            f"no corpus at {path}",
            hint="run `bookvec data fetch`, or pass a file with --data PATH",
        )
    return path


def run_training(
    data: Path,
    *,
    config,
    cleaning,
    synthetic: bool | None = None,
    resume: bool = False,
    evaluate: bool = True,
    warm_start=None,
    extra_books=(),
):
    from bookvec import inputs
    from bookvec.model.training.pipeline import train_bundle

    if not inputs.readable(data):  # a FIFO (`--data <(zcat books.gz)`) is fine
        raise DataNotFoundError(f"no corpus file {data}", hint="check the path given to --data")
    return train_bundle(
        data,
        cleaning=cleaning,
        config=config,
        synthetic=synthetic,
        progress=not output.is_quiet(),
        log=output.log,
        resume=resume,
        evaluate=evaluate,
        warm_start=warm_start,
        extra_books=extra_books,
    )


def catalogue_books() -> list:
    """The store's upserted books as corpus records (none when there is no store yet)."""
    from bookvec.indexer import open_store
    from bookvec.library.catalogue import raw_books

    if not settings.store_dir().exists() and settings.QdrantSettings.from_env().url is None:
        return []
    store = open_store(
        settings.QdrantSettings.from_env(), path=settings.store_dir(), read_only=True
    )
    try:
        return list(raw_books(store.upserted()))
    finally:
        store.close()


def summary(bundle) -> dict:
    metrics = bundle.manifest.metrics
    return {
        "model": bundle.model_id,
        "path": str(bundle.path),
        "books": bundle.n_books,
        "links": bundle.n_links,
        "pairs": bundle.manifest.counts.pairs,
        "synthetic": bundle.synthetic,
        "metrics": metrics,
        "warm_start": bundle.manifest.warm_start,
    }


def _resume_plan(data: Path | None, overrides: dict[str, Any], machine: dict[str, Any]):
    """(corpus, config, cleaning, synthetic) of the newest interrupted run, with only the
    options that do not change its vectors (threads, compile, device) taken from the command."""
    from bookvec.model.corpus.prepare import CleaningConfig
    from bookvec.model.training.config import TrainConfig
    from bookvec.model.training.pipeline import interrupted_runs

    given = sorted(name for name, value in overrides.items() if value is not None)
    if given:
        raise ConfigError(
            f"--resume continues the interrupted run with its own options; drop {', '.join(given)}",
            hint="only --data (the same file, moved), --threads, --compile and --device may "
            "be given with --resume",
        )
    runs = interrupted_runs()
    if not runs:
        raise DataNotFoundError(
            "no interrupted training run to resume",
            hint="start one with `bookvec train` (without --resume)",
        )
    run = runs[0]
    config = TrainConfig.from_dict(run["config"])
    config = replace(config, **{k: v for k, v in machine.items() if v is not None})
    corpus = data or Path(run["corpus"]["path"])
    output.log(f"resuming the run in {run['dir']} on {corpus}")
    return corpus, config, CleaningConfig.from_dict(run["cleaning"]), run.get("synthetic")


@app.command()
def train(
    data: Path | None = typer.Option(
        None, "--data", "-d", help="Corpus file (6-field ndjson, .gz ok); default: the fetched one."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Most epochs (early stopping)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Positive pairs per batch (default: by corpus size)."
    ),
    learning_rate: float | None = typer.Option(
        None, "--lr", help="SGD step of the book and link tables (default 0.1)."
    ),
    dim: int | None = typer.Option(None, "--dim", help="Embedding size (default 50)."),
    objective: str | None = typer.Option(
        None, "--objective", help="classification (sigmoid + BCE) or regression (cosine + MSE)."
    ),
    negative_ratio: int | None = typer.Option(
        None, "--negative-ratio", help="Negatives per positive."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same seed, same vectors)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for training (default: torch's choice)."
    ),
    compile_: bool | None = typer.Option(
        None,
        "--compile/--no-compile",
        help="torch.compile the training step (default: off; measured no faster on CPU).",
        show_default=False,
    ),
    min_books: int | None = typer.Option(
        None, "--min-books", help="Keep links used by at least this many books (default 4)."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the last interrupted run (its corpus and options) from its last epoch.",
    ),
    evaluate: bool = typer.Option(
        True,
        "--evaluate/--no-evaluate",
        help="Store held-out AUC and neighbour metrics in the manifest (seconds at 37k books).",
    ),
    warm_start: bool = typer.Option(
        False,
        "--warm-start",
        help="Start from a trained model (--model, default: the current one): known books and "
        "pages keep their rows, new ones start near them; fewer epochs at a smaller step.",
    ),
    include_upserted: bool = typer.Option(
        False,
        "--include-upserted",
        help="Train on the corpus plus the books added with `bookvec upsert` (a title in "
        "both keeps the upserted version), so the new model knows them as trained books.",
    ),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Train book and link embeddings and write a new model bundle (becomes the current model).

    The training state is saved after every epoch: after Ctrl-C or a crash, `bookvec train
    --resume` continues where it stopped, and the current model stays as it was meanwhile.

    With --warm-start the run continues a trained model on a changed corpus (new books, new
    pages, changed links): its cleaning is the parent's, and the new bundle records the parent
    and what changed; `bookvec index` then rewrites only the points that moved.

    Example: bookvec train --data ../shared/data/p15_books.ndjson
    """
    from bookvec.model.corpus.prepare import CleaningConfig
    from bookvec.model.training.config import TrainConfig

    overrides = {
        "max_epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "embedding_dim": dim,
        "objective": objective,
        "negative_ratio": negative_ratio,
        "seed": seed,
    }
    machine = {"device": device, "threads": threads, "compile": compile_}
    synthetic = None
    parent = None
    if warm_start and resume:
        raise ConfigError("--warm-start and --resume do not go together: run the warm start again")
    if warm_start:
        from bookvec.cli.common import open_model
        from bookvec.model.training.pipeline import warm_config
        from bookvec.model.training.warm import parent_cleaning

        parent = open_model(model)
        config = warm_config(parent, **overrides, **machine)
        cleaning = parent_cleaning(parent)
        if min_books is not None:
            cleaning = replace(cleaning, min_books=min_books)  # refused below unless the same
        corpus = data or default_corpus()
    elif resume:
        with_cleaning = {**overrides, "min_books": min_books}
        corpus, config, cleaning, synthetic = _resume_plan(data, with_cleaning, machine)
    else:
        changes = {k: v for k, v in {**overrides, **machine}.items() if v is not None}
        config = replace(TrainConfig(), **changes)
        cleaning = CleaningConfig() if min_books is None else CleaningConfig(min_books=min_books)
        corpus = data or default_corpus()
    extra = catalogue_books() if include_upserted else []
    if include_upserted:
        output.log(f"including {len(extra):,} upserted books from the store")
    bundle = run_training(
        corpus,
        config=config,
        cleaning=cleaning,
        synthetic=synthetic,
        resume=resume,
        evaluate=evaluate,
        warm_start=parent,
        extra_books=extra,
    )
    result = summary(bundle)
    if include_upserted:
        result["upserted_included"] = len(extra)
    if json_:
        output.emit_json(result)
        return
    metrics = result["metrics"]
    line = (
        f"model {result['model']}: {result['books']:,} books, {result['links']:,} links, "
        f"validation AUC {metrics.get('val_auc') or float('nan'):.4f} "
        f"in {metrics.get('train_seconds', 0):.1f} s"
    )
    neighbours = metrics.get("evaluation", {}).get("neighbours", {})
    if "bookvec" in neighbours and "binary_links" in neighbours:
        ours = neighbours["bookvec"].get("genre_agreement@10")
        theirs = neighbours["binary_links"].get("genre_agreement@10")
        if ours is not None and theirs is not None:
            line += f"; genre agreement@10 {ours:.3f} (binary links: {theirs:.3f})"
    output.stdout.print(line, markup=False)
