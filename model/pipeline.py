"""Corpus file in, model bundle out: prepare -> train -> export -> write the bundle atomically.

This is the one place that imports torch on behalf of the CLI (``bookvec train`` imports it
lazily); everything downstream reads the bundle.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bookvec import __version__
from bookvec.model.bundle import Bundle, BundleWriter
from bookvec.model.config import TrainConfig
from bookvec.model.prepare import CleaningConfig, PreparedCorpus, prepare


def normalise_rows(table: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return (table / np.maximum(norms, 1e-12)).astype(np.float32)


def _versions() -> dict[str, str]:
    versions = {"bookvec": __version__, "python": platform.python_version()}
    for name in ("torch", "onnx", "onnxruntime", "polars", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = getattr(module, "__version__", "?")
    return versions


def train_bundle(
    corpus_path: Path,
    *,
    cleaning: CleaningConfig | None = None,
    config: TrainConfig | None = None,
    models_dir: Path | None = None,
    synthetic: bool | None = None,
    progress: bool = True,
    log=None,
) -> Bundle:
    """Prepare the corpus, train, export ONNX and commit a bundle; returns the new bundle."""
    from bookvec.model.export import export_onnx
    from bookvec.model.train import train

    cleaning = cleaning or CleaningConfig()
    config = config or TrainConfig()
    say = log or (lambda message: None)

    started = time.perf_counter()
    prepared = prepare(corpus_path, cleaning)
    prepare_seconds = time.perf_counter() - started
    n_books, n_links = prepared.books.height, prepared.links.height
    say(
        f"prepared {n_books:,} books, {n_links:,} links, {len(prepared.pairs):,} pairs "
        f"in {prepare_seconds:.1f} s"
    )
    if synthetic is None:
        synthetic = Path(str(corpus_path) + ".truth.parquet").exists()

    trained = train(prepared.pairs, n_books, n_links, config, progress=progress)
    with BundleWriter(models_dir) as writer:
        _write_tables(writer.path, prepared, trained)
        export_started = time.perf_counter()
        export_onnx(trained, writer.path)
        export_seconds = time.perf_counter() - export_started
        manifest: dict[str, Any] = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": config.to_dict(),
            "cleaning": cleaning.to_dict(),
            "corpus": {
                "path": str(Path(corpus_path).resolve()),
                "sha256": prepared.source_sha256,
                "synthetic": bool(synthetic),
            },
            "counts": {
                "books": n_books,
                "links": n_links,
                "pairs": int(len(prepared.pairs)),
                "dim": int(trained.book_embeddings.shape[1]),
            },
            "metrics": {
                **trained.metrics,
                "prepare_seconds": round(prepare_seconds, 3),
                "export_seconds": round(export_seconds, 3),
            },
            "history": trained.history,
            "versions": _versions(),
        }
        bundle = writer.commit(manifest)
    say(f"wrote model {bundle.model_id} to {bundle.path}")
    return bundle


def _write_tables(directory: Path, prepared: PreparedCorpus, trained) -> None:
    prepared.books.write_parquet(directory / "books.parquet")
    prepared.links.write_parquet(directory / "links.parquet")
    pairs = np.asarray(prepared.pairs, dtype=np.int32).reshape(-1, 2)
    pl.DataFrame(
        {"book": pairs[:, 0], "link": pairs[:, 1]}, schema={"book": pl.Int32, "link": pl.Int32}
    ).write_parquet(directory / "pairs.parquet")
    np.save(directory / "book_vectors.npy", normalise_rows(trained.book_embeddings))
    np.save(directory / "link_vectors.npy", normalise_rows(trained.link_embeddings))
    _save_weights(directory / "weights.pt", trained)


def _save_weights(path: Path, trained) -> None:
    import torch

    state = {
        "book_embeddings": torch.from_numpy(np.ascontiguousarray(trained.book_embeddings)),
        "link_embeddings": torch.from_numpy(np.ascontiguousarray(trained.link_embeddings)),
        "dense_weight": torch.tensor([trained.dense_weight]),
        "dense_bias": torch.tensor([trained.dense_bias]),
    }
    torch.save(state, path)
