"""`bookvec train`: corpus -> model bundle (bookvec.library.training; PyTorch only inside it)."""

from __future__ import annotations

from pathlib import Path

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption


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
        "pages keep their rows, new ones start near them; only new books, new pages and "
        "books whose links changed train (anchored), the others stay where they were.",
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
    from bookvec.library import training

    plan = training.plan_training(
        data,
        None,
        warm_start=(model or True) if warm_start else None,
        home=training.home_of(),
        min_books=min_books,
        resume=resume,
        log=output.log,
        max_epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        embedding_dim=dim,
        objective=objective,
        negative_ratio=negative_ratio,
        seed=seed,
        device=device,
        threads=threads,
        compile=compile_,
    )
    extra = training.catalogue_books() if include_upserted else []
    if include_upserted:
        output.log(f"including {len(extra):,} upserted books from the store")
    bundle = training.run_training(
        plan["corpus"],
        config=plan["config"],
        cleaning=plan["cleaning"],
        synthetic=plan["synthetic"],
        resume=resume,
        evaluate=evaluate,
        warm_start=plan["parent"],
        extra_books=extra,
        progress=not output.is_quiet(),
        log=output.log,
    )
    result = training.summary(bundle, len(extra) if include_upserted else None).to_dict()
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
