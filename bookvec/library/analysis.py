"""Looking at a model: ``evaluate``, ``similarity``, ``export_vectors``, and (from
``bookvec.library.maps``) ``draw_map`` and ``projector``. Each returns a small frozen result
whose ``to_dict()`` is the command's ``--json``; progress goes to ``log``, and what a person
should know (a skipped part) is in the result's ``warnings``. No torch (the bundle holds the
training and held-out pairs), no typer or rich.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bookvec.errors import ConfigError
from bookvec.library.maps import MapReport, ProjectorExport, draw_map, open_model, projector

__all__ = [
    "Evaluation", "MapReport", "ProjectorExport", "Similarity", "VectorExport", "draw_map",
    "evaluate", "export_vectors", "open_model", "projector", "similarity",
]  # fmt: skip

if TYPE_CHECKING:
    from bookvec.model.bundle import Bundle

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# evaluate


@dataclass(frozen=True)
class Source:
    available: bool
    note: str


@dataclass(frozen=True)
class EvaluatedModel:
    id: str
    path: str
    synthetic: bool
    training_val_auc: float | None


@dataclass(frozen=True)
class Evaluation:
    """``bookvec evaluate``'s report: ``metrics`` holds ``evaluate_embeddings``'s numbers
    (link_prediction, neighbours, probe, k, books, ...) and ``search`` when measured."""

    model: EvaluatedModel
    corpus: Source
    split: Source
    metrics: Mapping[str, Any]
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        from bookvec.model.analysis.evaluate import rounded

        head = {"model": asdict(self.model), "corpus": asdict(self.corpus)}
        return rounded({**head, "split": asdict(self.split), **self.metrics})


def corpus_pairs(bundle: Bundle, data: str | Path | None = None, *, log: Log = _quiet):
    """(pairs or None, note): the bundle's training pairs; with ``data``, that corpus file
    prepared again with the manifest's cleaning, accepted only when it has the recorded sha256
    and gives the bundle's books and links."""
    if data is None:
        return bundle.pairs, "pairs.parquet in the bundle"
    from bookvec.model.corpus.prepare import prepare

    path = Path(data)
    if not path.is_file():
        return None, f"corpus file {str(path)!r} not found"
    log(f"preparing {path} again to rebuild the pairs ...")
    prepared = prepare(path, bundle.manifest.cleaning_config())
    expected = bundle.manifest.corpus.sha256
    if expected and prepared.source_sha256 != expected:
        return None, f"{path} is not the file the model was trained on (sha256 differs)"
    same = (
        prepared.n_books == bundle.n_books
        and prepared.n_links == bundle.n_links
        and prepared.books.get_column("title").to_list() == bundle.book_titles
    )
    if not same:
        return None, f"{path} prepares to other books or links than the model's"
    return prepared.pairs, f"{path}, prepared again"


def held_out_pairs(bundle: Bundle) -> tuple[np.ndarray | None, str]:
    """(the pairs training held out or None, note), from the bundle's held_out_pairs.npy."""
    held = bundle.held_out_pairs
    if not len(held):
        return None, "the model was trained without holding pairs out"
    return held, "held_out_pairs.npy in the bundle"


def evaluate(
    model: str | Path | Bundle | None = None,
    *,
    data: str | Path | None = None,
    baselines: bool | Sequence[str] = True,
    probe: bool = True,
    queries: int | None = 10_000,
    ranked: int | None = 10_000,
    search_queries: int = 2_000,
    seed: int = 0,
    log: Log = _quiet,
) -> Evaluation:
    """Measure a model: held-out link prediction (AUC, MRR, Hits@10), neighbour quality (genre
    agreement@10, same-author recall@10), the genre probe, the same for the baselines, and the
    search modes through a temporary store. ``queries`` / ``ranked``: samples (None or 0: all);
    ``search_queries`` 0: no search modes."""
    from bookvec.model.analysis.evaluate import evaluate_embeddings

    bundle = open_model(model)
    warnings: list[str] = []
    pairs, corpus_note = corpus_pairs(bundle, data, log=log)
    held, split_note = None, "no corpus pairs"
    if pairs is None:
        warnings.append(f"{corpus_note}: link prediction, baselines and link probes are skipped")
    else:
        held, split_note = held_out_pairs(bundle)
        if held is None:
            warnings.append(f"{split_note}: link prediction is skipped")
    result = evaluate_embeddings(
        np.asarray(bundle.book_vectors),
        np.asarray(bundle.link_vectors),
        bundle.books,
        pairs=pairs,
        held_out_pairs=held,
        baselines=baselines,
        probe=probe,
        max_queries=queries or None,
        max_ranked=ranked or None,
        seed=seed,
        log=log,
    )
    if search_queries and pairs is not None:
        from bookvec.model.analysis.search_eval import search_modes

        result["search"] = search_modes(bundle, pairs, held, search_queries, seed, result["k"], log)
    return Evaluation(
        model=EvaluatedModel(
            id=bundle.model_id,
            path=str(bundle.path),
            synthetic=bundle.synthetic,
            training_val_auc=bundle.manifest.metrics.get("val_auc"),
        ),
        corpus=Source(pairs is not None, corpus_note),
        split=Source(held is not None, split_note),
        metrics=result,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------------------
# similarity


@dataclass(frozen=True)
class Similarity:
    titles: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]  # cosine (rounded to 6 places), row per title
    encoding: str  # "bookvec" or "one-hot"
    model: str
    synthetic: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        rows = [list(row) for row in self.matrix]
        return {"titles": list(self.titles), "matrix": rows, "encoding": self.encoding} | {
            "model": self.model
        }


def similarity(
    titles: Sequence[str],
    *,
    model: str | Path | Bundle | None = None,
    exact: bool = False,
    one_hot: bool = False,
) -> Similarity:
    """The pairwise cosine similarity of the books' learned vectors (titles resolved loosely
    unless ``exact``); ``one_hot``: what one-hot encoding gives instead (the identity)."""
    from bookvec.model.linalg import normalise
    from bookvec.titles import resolve

    if len(titles) < 2:
        raise ConfigError("give at least two titles", hint='e.g. bookvec similarity "A" "B"')
    bundle = open_model(model)
    resolved = [resolve(title, bundle.book_titles, exact=exact) for title in titles]
    if one_hot:
        matrix = np.array([[1.0 if t == u else 0.0 for u in resolved] for t in resolved])
    else:
        index = bundle.book_index
        vectors = np.asarray(bundle.book_vectors[[index[t] for t in resolved]])
        unit = normalise(vectors, dtype=np.float64)
        matrix = np.clip(unit @ unit.T, -1.0, 1.0)
    return Similarity(
        titles=tuple(resolved),
        matrix=tuple(tuple(round(float(v), 6) for v in row) for row in matrix),
        encoding="one-hot" if one_hot else "bookvec",
        model=bundle.model_id,
        synthetic=bundle.synthetic,
    )


# ---------------------------------------------------------------------------------------------
# vectors


@dataclass(frozen=True)
class VectorExport:
    files: tuple[str, ...]
    format: str
    what: str  # "books" or "links"
    rows: int
    upserted: int
    dim: int
    normalised: bool
    model: str
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        del record["warnings"]
        return record | {"files": list(self.files)}


def export_vectors(
    out: str | Path,
    *,
    model: str | Path | Bundle | None = None,
    links: bool = False,
    raw: bool = False,
    format: str | None = None,
) -> VectorExport:
    """Write the model's book (or link) vectors with their titles and metadata to ``out``
    (Parquet, NumPy + index, word2vec; by ``format`` or the extension). Normalised book
    vectors include the store's upserted books."""
    from bookvec.model.analysis import vectors_io

    fmt = vectors_io.format_for(out, format)
    bundle = open_model(model)
    table = vectors_io.bundle_table(bundle, links=links, raw=raw)
    upserted, warnings = 0, []
    if not links and not raw:  # upserted books have folded-in (unit) vectors only
        from bookvec.library.catalogue import with_upserted

        table, upserted, note = with_upserted(table, bundle)
        if note:
            warnings.append(f"upserted books not exported: {note}")
    files = vectors_io.write(table, out, fmt)
    n, dim = table.vectors.shape
    return VectorExport(
        files=tuple(str(path) for path in files),
        format=fmt,
        what="links" if links else "books",
        rows=n,
        upserted=upserted,
        dim=dim,
        normalised=not raw,
        model=bundle.model_id,
        warnings=tuple(warnings),
    )
