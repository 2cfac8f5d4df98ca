"""`bookvec.train()` and `bookvec train`: corpus -> a new model bundle (the current model once
committed). The only entry of the library that imports torch, inside the call
(bookvec.model.training), never at import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bookvec import settings
from bookvec.errors import ConfigError, DataNotFoundError
from bookvec.library.results import TrainSummary
from bookvec.library.store import Home, home_of, open_model_bundle

# TrainConfig fields a caller may give by name (the CLI's --epochs ... --compile)
CONFIG_FIELDS = (
    "max_epochs",
    "batch_size",
    "learning_rate",
    "embedding_dim",
    "objective",
    "negative_ratio",
    "seed",
)
MACHINE_FIELDS = ("device", "threads", "compile")  # change how fast, never the vectors


def train(
    data: str | Path | None = None,
    config: Any = None,
    *,
    warm_start: Any = None,
    home: str | Path | None = None,
    min_books: int | None = None,
    resume: bool = False,
    evaluate: bool = True,
    include_upserted: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
):
    """Train book and link embeddings on ``data`` (a corpus file; None: the fetched one) and
    return the new bookvec.Model (it becomes the current model).

    ``config``: a TrainConfig (bookvec.model.training.config), or options by name
    (max_epochs=, learning_rate=, embedding_dim=, seed=, ... device=, threads=).
    ``warm_start``: a parent model (a Model, a model id, a bundle path, or True for the current
    one) whose trained rows start this run (issue 16). ``resume``: continue the newest
    interrupted run. ``include_upserted``: train on the store's upserted books too."""
    from bookvec.library.model import Model

    where = home_of(home)
    plan = plan_training(
        data,
        config,
        warm_start=warm_start,
        home=where,
        min_books=min_books,
        resume=resume,
        log=log,
        **options,
    )
    extra = catalogue_books(where) if include_upserted else []
    bundle = run_training(
        plan["corpus"],
        config=plan["config"],
        cleaning=plan["cleaning"],
        synthetic=plan["synthetic"],
        resume=resume,
        evaluate=evaluate,
        warm_start=plan["parent"],
        extra_books=extra,
        home=where,
        progress=progress,
        log=log,
    )
    return Model(bundle, home=where)


def plan_training(
    data, config, *, warm_start, home: Home, min_books, resume: bool, log=None, **options: Any
) -> dict[str, Any]:
    """corpus, config, cleaning, synthetic and parent of the run the arguments ask for."""
    from bookvec.model.corpus.prepare import CleaningConfig
    from bookvec.model.training.config import TrainConfig

    unknown = sorted(set(options) - set(CONFIG_FIELDS) - set(MACHINE_FIELDS))
    if unknown:
        raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
    if config is not None and any(v is not None for v in options.values()):
        raise ConfigError("give a TrainConfig or options by name, not both")
    overrides = {k: options.get(k) for k in CONFIG_FIELDS}
    machine = {k: options.get(k) for k in MACHINE_FIELDS}
    data = Path(data) if data is not None else None
    plan: dict[str, Any] = {"synthetic": None, "parent": None}
    if warm_start is not None and warm_start is not False and resume:
        raise ConfigError("--warm-start and --resume do not go together: run the warm start again")
    if warm_start is not None and warm_start is not False:
        from bookvec.model.training.pipeline import warm_config
        from bookvec.model.training.warm import parent_cleaning

        parent = _parent(warm_start, home)
        if config is not None:
            plan["config"] = config
        else:
            plan["config"] = warm_config(parent, **overrides, **machine)
        cleaning = parent_cleaning(parent)
        if min_books is not None:
            cleaning = replace(cleaning, min_books=min_books)  # refused below unless the same
        plan.update(parent=parent, cleaning=cleaning, corpus=data or default_corpus(home))
    elif resume:
        corpus, config, cleaning, synthetic = resume_plan(
            data, {**overrides, "min_books": min_books}, machine, log=log
        )
        plan.update(corpus=corpus, config=config, cleaning=cleaning, synthetic=synthetic)
    else:
        if config is None:
            changes = {k: v for k, v in {**overrides, **machine}.items() if v is not None}
            config = replace(TrainConfig(), **changes)
        cleaning = CleaningConfig() if min_books is None else CleaningConfig(min_books=min_books)
        plan.update(config=config, cleaning=cleaning, corpus=data or default_corpus(home))
    return plan


def _parent(warm_start: Any, home: Home):
    if warm_start is True:
        return open_model_bundle(None, home=home)
    bundle = getattr(warm_start, "bundle", None)  # a bookvec.Model
    if bundle is not None:
        return bundle
    if hasattr(warm_start, "manifest"):  # a Bundle
        return warm_start
    return open_model_bundle(warm_start, home=home)


def default_corpus(home: Home | None = None) -> Path:
    from bookvec.model.corpus.fetch import CORPUS_FILENAME

    path = (home or home_of()).data / CORPUS_FILENAME
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
    home: Home | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
):
    """train_bundle on a corpus that must be readable (a FIFO is fine); returns the Bundle."""
    from bookvec import inputs
    from bookvec.model.training.pipeline import train_bundle

    if not inputs.readable(data):  # a FIFO (`--data <(zcat books.gz)`) is fine
        raise DataNotFoundError(f"no corpus file {data}", hint="check the path given to --data")
    return train_bundle(
        data,
        cleaning=cleaning,
        config=config,
        models_dir=(home or home_of()).models,
        synthetic=synthetic,
        progress=progress,
        log=log,
        resume=resume,
        evaluate=evaluate,
        warm_start=warm_start,
        extra_books=extra_books,
    )


def catalogue_books(home: Home | None = None) -> list:
    """The store's upserted books as corpus records (none when there is no store yet)."""
    from bookvec.library.catalogue import raw_books
    from bookvec.library.store import open_store

    home = home or home_of()
    env = settings.QdrantSettings.from_env()
    if not home.store.exists() and env.url is None:
        return []
    store = open_store(env.url, env.api_key, env.collection, home=home, read_only=True)
    try:
        return list(raw_books(store.upserted()))
    finally:
        store.close()


def summary(bundle, upserted_included: int | None = None) -> TrainSummary:
    """`bookvec train --json`."""
    metrics = dict(bundle.manifest.metrics)
    data = {
        "model": bundle.model_id,
        "path": str(bundle.path),
        "books": bundle.n_books,
        "links": bundle.n_links,
        "pairs": bundle.manifest.counts.pairs,
        "synthetic": bundle.synthetic,
        "metrics": metrics,
        "warm_start": bundle.manifest.warm_start,
    }
    if upserted_included is not None:
        data["upserted_included"] = upserted_included
    return TrainSummary(data)


def resume_plan(
    data: Path | None, overrides: Mapping[str, Any], machine: Mapping[str, Any], *, log=None
):
    """(corpus, config, cleaning, synthetic) of the newest interrupted run, with only the
    options that do not change its vectors (threads, compile, device) taken from the caller."""
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
    if log is not None:
        log(f"resuming the run in {run['dir']} on {corpus}")
    return corpus, config, CleaningConfig.from_dict(run["cleaning"]), run.get("synthetic")
