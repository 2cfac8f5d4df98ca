"""`bookvec train`: corpus -> model bundle (PyTorch, imported only here)."""

from __future__ import annotations

from pathlib import Path

import typer

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption
from bookvec.errors import DataNotFoundError


def default_corpus() -> Path:
    from bookvec.model.fetch import CORPUS_FILENAME

    path = settings.data_dir() / CORPUS_FILENAME
    if not path.is_file():
        raise DataNotFoundError(
            f"no corpus at {path}",
            hint="run `bookvec data fetch`, or pass a file with --data PATH",
        )
    return path


def run_training(data: Path, *, config, cleaning, synthetic: bool | None = None):
    from bookvec.model.pipeline import train_bundle

    if not data.is_file():
        raise DataNotFoundError(f"no corpus file {data}", hint="check the path given to --data")
    return train_bundle(
        data,
        cleaning=cleaning,
        config=config,
        synthetic=synthetic,
        progress=not output.is_quiet(),
        log=output.log,
    )


def summary(bundle) -> dict:
    metrics = bundle.manifest.get("metrics", {})
    return {
        "model": bundle.model_id,
        "path": str(bundle.path),
        "books": bundle.n_books,
        "links": bundle.n_links,
        "pairs": bundle.manifest["counts"]["pairs"],
        "synthetic": bundle.synthetic,
        "metrics": metrics,
    }


@app.command()
def train(
    data: Path | None = typer.Option(
        None, "--data", "-d", help="Corpus file (6-field ndjson, .gz ok); default: the fetched one."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Most epochs (early stopping)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Positive pairs per batch."),
    learning_rate: float | None = typer.Option(None, "--lr", help="Adam learning rate."),
    dim: int | None = typer.Option(None, "--dim", help="Embedding size (default 50)."),
    objective: str | None = typer.Option(
        None, "--objective", help="classification (sigmoid + BCE) or regression (cosine + MSE)."
    ),
    negative_ratio: int | None = typer.Option(
        None, "--negative-ratio", help="Negatives per positive."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same seed, same vectors)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    min_books: int | None = typer.Option(
        None, "--min-books", help="Keep links used by at least this many books (default 4)."
    ),
    json_: JsonOption = False,
) -> None:
    """Train book and link embeddings and write a new model bundle (becomes the current model).

    Example: bookvec train --data ../shared/data/p15_books.ndjson
    """
    from dataclasses import replace

    from bookvec.model.config import TrainConfig
    from bookvec.model.prepare import CleaningConfig

    overrides = {
        "max_epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "embedding_dim": dim,
        "objective": objective,
        "negative_ratio": negative_ratio,
        "seed": seed,
        "device": device,
    }
    config = replace(TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    cleaning = CleaningConfig() if min_books is None else CleaningConfig(min_books=min_books)
    bundle = run_training(data or default_corpus(), config=config, cleaning=cleaning)
    result = summary(bundle)
    if json_:
        output.emit_json(result)
        return
    metrics = result["metrics"]
    output.stdout.print(
        f"model {result['model']}: {result['books']:,} books, {result['links']:,} links, "
        f"validation AUC {metrics.get('val_auc', float('nan')):.4f} "
        f"in {metrics.get('train_seconds', 0):.1f} s",
        markup=False,
    )
