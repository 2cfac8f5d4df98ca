"""Corpus file in, model bundle out: prepare -> train -> export -> evaluate -> write the bundle.

This is the one place that imports torch on behalf of the CLI (``bookvec train`` imports it
lazily); everything downstream reads the bundle.

Interruptions: training writes its state after every epoch under
``BOOKVEC_HOME/checkpoints/<run>/`` (``run.json`` says which corpus, cleaning and config;
``<run>`` is a hash of them). Ctrl-C or a kill leaves that state and the current bundle as they
were (a bundle is built in a temporary directory and renamed into place only when complete);
``train_bundle(..., resume=True)`` (``bookvec train --resume``) continues the run and ends
with the vectors the uninterrupted run would have given. A committed bundle removes its run's
checkpoints.

The bundle (``bookvec.model.bundle``, format 2) stores the training pairs and the held-out
pairs (empty without a validation split), so that ``bookvec evaluate`` never needs torch or the
corpus; beyond the required files it has the raw tables (``bookvec vectors --raw``, warm
starts) and ``weights.pt``. The manifest's ``metrics.evaluation`` holds
``evaluate_embeddings``'s numbers for the learned vectors and the binary-link baseline (the
other baselines and the probe are left to ``bookvec evaluate``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bookvec import __version__, settings
from bookvec.errors import ConfigError, DataNotFoundError
from bookvec.model import bundle as files
from bookvec.model.bundle import Bundle, BundleWriter, open_bundle
from bookvec.model.corpus.prepare import CleaningConfig, PreparedCorpus, prepare
from bookvec.model.linalg import normalise
from bookvec.model.training.config import TrainConfig
from bookvec.outfiles import write_atomic

if TYPE_CHECKING:
    from bookvec.model.corpus.read import RawBook
    from bookvec.model.training.model import TrainedModel

RUN_FILE = "run.json"
EVALUATION_BASELINES = ("binary_links",)  # cheap, and the one the p15 goal is judged against
_RUN_INDEPENDENT = ("threads", "device", "compile")  # may change when a run is resumed


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


# ---------------------------------------------------------------------------------------------
# Training runs and their checkpoints


def checkpoints_dir() -> Path:
    return settings.home() / "checkpoints"


def run_id(corpus_sha256: str, cleaning: CleaningConfig, config: TrainConfig) -> str:
    """The name of a run's checkpoint directory: a hash of what determines its vectors."""
    kept = {k: v for k, v in config.to_dict().items() if k not in _RUN_INDEPENDENT}
    key = json.dumps(
        {"corpus": corpus_sha256, "cleaning": cleaning.to_dict(), "config": kept},
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def interrupted_runs(directory: Path | None = None) -> list[dict[str, Any]]:
    """Runs that left a training state behind, newest first: each ``run.json`` plus ``dir``."""
    from bookvec.model.training.checkpoints import Checkpoints

    root = directory or checkpoints_dir()
    runs = []
    for run_dir in root.iterdir() if root.is_dir() else ():
        state = run_dir / Checkpoints.STATE
        try:
            info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
            mtime = state.stat().st_mtime
        except (OSError, ValueError):
            continue  # not a run, or one that never finished an epoch
        runs.append({**info, "dir": str(run_dir), "mtime": mtime})
    return sorted(runs, key=lambda run: run["mtime"], reverse=True)


# ---------------------------------------------------------------------------------------------
# The pipeline


def train_bundle(
    corpus_path: Path,
    *,
    cleaning: CleaningConfig | None = None,
    config: TrainConfig | None = None,
    models_dir: Path | None = None,
    synthetic: bool | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
    checkpoints: bool = True,
    evaluate: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    warm_start: str | Path | Bundle | None = None,
    extra_books: Sequence[RawBook] = (),
) -> Bundle:
    """Prepare the corpus, train, export ONNX, evaluate and commit a bundle; returns it.

    ``checkpoints``: keep the training state under ``checkpoints_dir()`` after every epoch
    (removed once the bundle is committed). ``resume``: continue this corpus + cleaning +
    config's interrupted run; DataNotFoundError when there is none. ``evaluate``: put the
    evaluation numbers in the manifest (``metrics.evaluation``).

    ``warm_start``: a parent model (a ``Bundle``, a model id or a bundle path) whose tables
    start this run (``bookvec.model.training.warm``: rows matched by cleaned name, new books folded
    in, new pages from the books that link to them). ``cleaning`` defaults to the parent's
    and must equal it; ``config`` defaults to ``warm_config(parent)``. A warm run keeps no
    checkpoints (it is short: an interrupted one is run again) and cannot be resumed; until
    its bundle is committed, the current model is untouched.

    ``extra_books``: more books trained with the corpus (``bookvec train --include-upserted``:
    the store's catalogue); a title in both keeps the extra one. The manifest's ``warm_start``
    records the parent and what changed (books and pages added, removed, changed).
    """
    from bookvec.model.training.checkpoints import Checkpoints
    from bookvec.model.training.export import export_onnx
    from bookvec.model.training.train import train

    parent: Bundle | None = None
    if warm_start is not None:
        from bookvec.model.training.warm import check_compatible, parent_cleaning

        parent = warm_start if isinstance(warm_start, Bundle) else open_bundle(warm_start)
        if resume:
            raise ConfigError("a warm start cannot be resumed: run it again")
        cleaning = cleaning or parent_cleaning(parent)
        config = config or warm_config(parent)
        check_compatible(parent, cleaning, config)
        checkpoints = False
    cleaning = cleaning or CleaningConfig()
    config = config or TrainConfig()
    say = log or (lambda message: None)

    started = time.perf_counter()
    prepared = prepare(corpus_path, cleaning, extra_books)
    prepare_seconds = time.perf_counter() - started
    n_books, n_links = prepared.books.height, prepared.links.height
    say(
        f"prepared {n_books:,} books, {n_links:,} links, {len(prepared.pairs):,} pairs "
        f"in {prepare_seconds:.1f} s"
    )
    if synthetic is None:
        synthetic = Path(str(corpus_path) + ".truth.parquet").exists()
    warm = None
    if parent is not None:
        from bookvec.model.training.warm import warm_start_state

        warm = warm_start_state(parent, prepared, config)
        b, ln = warm.changes["books"], warm.changes["links"]
        say(
            f"warm start from model {parent.model_id}: books {b['added']:,} added, "
            f"{b['removed']:,} removed, {b['changed']:,} changed; pages {ln['added']:,} "
            f"added, {ln['removed']:,} removed"
        )

    run_dir: Path | None = None
    if checkpoints or resume:
        run_dir = checkpoints_dir() / run_id(prepared.source_sha256, cleaning, config)
        if resume and not (run_dir / Checkpoints.STATE).is_file():
            raise DataNotFoundError(
                f"no interrupted training run of {corpus_path} with these options to resume",
                hint="train without --resume to start one",
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # a checkpoint half-written by a killed run
            stale.unlink(missing_ok=True)
        run_record = json.dumps(
            {
                "corpus": {
                    "path": str(Path(corpus_path).resolve()),
                    "sha256": prepared.source_sha256,
                },
                "cleaning": cleaning.to_dict(),
                "config": config.to_dict(),
                "synthetic": bool(synthetic),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
            sort_keys=True,
        )
        write_atomic(run_dir / RUN_FILE, run_record, durable=False)
    try:
        trained = train(
            prepared.pairs,
            n_books,
            n_links,
            config,
            progress=progress,
            on_epoch=on_epoch,
            checkpoint_dir=run_dir,
            resume=resume,
            resume_from=None if warm is None else warm.state,
        )
    except BaseException as exc:
        if run_dir is not None and (run_dir / Checkpoints.STATE).is_file():
            if isinstance(exc, KeyboardInterrupt):
                say(f"training state kept in {run_dir}: continue with `bookvec train --resume`")
        elif run_dir is not None:  # no epoch finished: nothing to resume from
            shutil.rmtree(run_dir, ignore_errors=True)
        raise

    evaluation_seconds = None
    from bookvec import disk

    dim = int(trained.book_embeddings.shape[1])
    need = 16 * dim * (n_books + n_links) + 8 * len(prepared.pairs) + (8 << 20)  # a guess
    writer_dir = models_dir or settings.models_dir()
    with disk.guard(writer_dir, need, what="writing the model"), BundleWriter(models_dir) as writer:
        _write_tables(writer.path, prepared, trained)
        export_started = time.perf_counter()
        export_onnx(trained, writer.path)
        export_seconds = time.perf_counter() - export_started
        metrics: dict[str, Any] = {
            **trained.metrics,
            "prepare_seconds": round(prepare_seconds, 3),
            "export_seconds": round(export_seconds, 3),
        }
        if evaluate:
            evaluation_started = time.perf_counter()
            metrics["evaluation"] = evaluation_summary(prepared, trained)
            evaluation_seconds = time.perf_counter() - evaluation_started
            metrics["evaluation_seconds"] = round(evaluation_seconds, 3)
        manifest: dict[str, Any] = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": trained.config.to_dict(),  # resolved: the batch size and patience used
            "config_requested": config.to_dict(),
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
            "metrics": metrics,
            "history": trained.history,
            "versions": _versions(),
        }
        if warm is not None:
            manifest["warm_start"] = warm.changes
        bundle = writer.commit(manifest)
    if run_dir is not None:
        shutil.rmtree(run_dir, ignore_errors=True)
    say(f"wrote model {bundle.model_id} to {bundle.path}")
    if evaluation_seconds is not None:
        say(f"evaluated in {evaluation_seconds:.1f} s (full report: `bookvec evaluate`)")
    return bundle


def warm_config(parent: Bundle, **overrides: Any) -> TrainConfig:
    """The config of a warm start from ``parent``: the options it was trained with (its
    requested ones, so that batch size and patience are chosen anew for the new corpus; the
    warm schedule is the ``warm_*`` options, ``bookvec.model.training.warm``), then
    ``overrides`` (None ignored)."""
    from dataclasses import replace

    config = parent.manifest.train_config(requested=True)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **changes) if changes else config


def evaluation_summary(prepared: PreparedCorpus, trained: TrainedModel) -> dict[str, Any]:
    """``evaluate_embeddings`` for the learned vectors and the cheap binary-link baseline:
    held-out link prediction and neighbour quality, no probe (JSON-ready, rounded). Seed 0
    and the default samples, as ``bookvec evaluate``: its numbers for these rows match."""
    from bookvec.model.analysis.evaluate import evaluate_embeddings, rounded

    result = evaluate_embeddings(
        trained.book_embeddings,
        trained.link_embeddings,
        prepared.books,
        pairs=prepared.pairs,
        held_out_pairs=trained.held_out_pairs,
        baselines=EVALUATION_BASELINES,
        probe=False,
        seed=0,
    )
    return rounded(result)


def _write_tables(directory: Path, prepared: PreparedCorpus, trained: TrainedModel) -> None:
    prepared.books.write_parquet(directory / files.BOOKS)
    _write_title_keys(directory, prepared)
    prepared.links.write_parquet(directory / files.LINKS)
    pairs = np.asarray(prepared.pairs, dtype=np.int32).reshape(-1, 2)
    pl.DataFrame(
        {"book": pairs[:, 0], "link": pairs[:, 1]}, schema={"book": pl.Int32, "link": pl.Int32}
    ).write_parquet(directory / files.PAIRS)
    held = np.zeros((0, 2)) if trained.held_out_pairs is None else trained.held_out_pairs
    np.save(directory / files.HELD_OUT_PAIRS, np.asarray(held, dtype=np.int32).reshape(-1, 2))
    np.save(directory / files.BOOK_VECTORS, normalise(trained.book_embeddings))
    np.save(directory / files.LINK_VECTORS, normalise(trained.link_embeddings))
    np.save(directory / files.RAW_BOOK_TABLE, np.asarray(trained.book_embeddings, np.float32))
    np.save(directory / files.RAW_LINK_TABLE, np.asarray(trained.link_embeddings, np.float32))
    _save_weights(directory / files.WEIGHTS, trained)


def _write_title_keys(directory: Path, prepared: PreparedCorpus) -> None:
    """The book titles' and link names' keys, so a loose title costs a lookup, not a pass over
    every title (bookvec/titlekeys.py; read by cli.actions.bundle_title_index)."""
    from bookvec.titlekeys import write_keys

    for what, names in (
        ("book", prepared.books.get_column("title").to_list()),
        ("link", prepared.links.get_column("name").to_list()),
    ):
        write_keys(directory / files.TITLE_KEYS[what], names, count=len(names), ranked=True)


def _save_weights(path: Path, trained: TrainedModel) -> None:
    import torch

    state = {
        "book_embeddings": torch.from_numpy(np.ascontiguousarray(trained.book_embeddings)),
        "link_embeddings": torch.from_numpy(np.ascontiguousarray(trained.link_embeddings)),
        "dense_weight": torch.tensor([trained.dense_weight]),
        "dense_bias": torch.tensor([trained.dense_bias]),
    }
    torch.save(state, path)
