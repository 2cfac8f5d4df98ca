"""`bookvec evaluate` (how good are the vectors, next to the baselines) and `bookvec similarity`
(the pairwise cosine matrix of a few books). Neither imports torch: the bundle holds the
training and held-out pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption, open_model
from bookvec.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# The corpus and the held-out split a bundle was trained with


def corpus_pairs_for(bundle, data: Path | None = None) -> tuple[np.ndarray | None, str]:
    """All (book, link) pairs of the corpus the bundle was trained on, and where they came from.

    The bundle's ``pairs.parquet``; with ``data``, that corpus file prepared again (with the
    manifest's cleaning), accepted only when it has the recorded sha256 and gives the bundle's
    books and links.
    """
    if data is None:
        return bundle.pairs, "pairs.parquet in the bundle"
    from bookvec.model.corpus.prepare import prepare

    corpus = bundle.manifest.corpus
    path = Path(data)
    if not path.is_file():
        return None, f"corpus file {str(path)!r} not found"
    output.log(f"preparing {path} again to rebuild the pairs ...")
    prepared = prepare(path, bundle.manifest.cleaning_config())
    if corpus.sha256 and prepared.source_sha256 != corpus.sha256:
        return None, f"{path} is not the file the model was trained on (sha256 differs)"
    same = (
        prepared.n_books == bundle.n_books
        and prepared.n_links == bundle.n_links
        and prepared.books.get_column("title").to_list() == bundle.book_titles
    )
    if not same:
        return None, f"{path} prepares to other books or links than the model's"
    return prepared.pairs, f"{path}, prepared again"


def held_out_pairs_for(bundle) -> tuple[np.ndarray | None, str]:
    """The (book, link) pairs training held out (``held_out_pairs.npy``), and a note."""
    held = bundle.held_out_pairs
    if not len(held):
        return None, "the model was trained without holding pairs out"
    return held, "held_out_pairs.npy in the bundle"


# ---------------------------------------------------------------------------------------------
# bookvec evaluate


@app.command()
def evaluate(
    model: ModelOption = None,
    data: Path | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Rebuild the pairs from this corpus file (the one trained on: same sha256).",
    ),
    baselines: bool = typer.Option(
        True,
        "--baselines/--no-baselines",
        help="Also score random, binary links, TF-IDF, SVD and ALS.",
    ),
    probe: bool = typer.Option(
        True, "--probe/--no-probe", help="Also run the genre probe (vectors vs one-hot ids)."
    ),
    queries: int = typer.Option(
        10_000, "--queries", min=0, help="Books whose neighbours are scored (seeded; 0 = all)."
    ),
    ranked: int = typer.Option(
        10_000, "--ranked", min=0, help="Held-out pairs ranked among all links (0 = all)."
    ),
    search_queries: int = typer.Option(
        2_000,
        "--search-queries",
        min=0,
        help="Books searched through the store in each mode, dense, sparse and hybrid "
        "(seeded; 0 = no search modes).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the negatives, samples and baselines."),
    json_: JsonOption = False,
) -> None:
    """Measure the model: held-out link prediction (AUC, MRR, Hits@10), neighbour quality
    (genre agreement@10, same-author recall@10), the genre probe, and the same for baselines.

    Example: bookvec evaluate --json > metrics.json
    """
    from bookvec.model.analysis.evaluate import evaluate_embeddings, rounded

    bundle = open_model(model)
    pairs, corpus_note = corpus_pairs_for(bundle, data)
    held, split_note = (None, "no corpus pairs")
    if pairs is None:
        output.warn(f"{corpus_note}: link prediction, baselines and link probes are skipped")
    else:
        held, split_note = held_out_pairs_for(bundle)
        if held is None:
            output.warn(f"{split_note}: link prediction is skipped")
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
        log=output.log,
    )
    if search_queries and pairs is not None:
        result["search"] = search_modes(bundle, pairs, held, search_queries, seed, result["k"])
    metrics = bundle.manifest.metrics
    report = {
        "model": {
            "id": bundle.model_id,
            "path": str(bundle.path),
            "synthetic": bundle.synthetic,
            "training_val_auc": metrics.get("val_auc"),
        },
        "corpus": {"available": pairs is not None, "note": corpus_note},
        "split": {"available": held is not None, "note": split_note},
        **result,
    }
    if json_:
        output.emit_json(rounded(report))
        return
    for table in evaluation_tables(report):
        output.stdout.print(table)


def search_modes(bundle, pairs, held, n_queries: int, seed: int, k: int) -> dict[str, Any]:
    """Neighbour metrics of each search mode, through a temporary Edge store built like
    `bookvec index` (sparse vectors from the training pairs only; see
    model/analysis/search_eval.py)."""
    from bookvec.model.analysis.evaluate import sample_rows, training_pairs
    from bookvec.model.analysis.search_eval import evaluate_modes
    from bookvec.sparse import DEFAULT_WEIGHTING

    train = pairs if held is None else training_pairs(pairs, held, bundle.n_links)
    queries = sample_rows(bundle.n_books, n_queries, seed)
    modes = evaluate_modes(
        np.asarray(bundle.book_vectors),
        bundle.books,
        train,
        bundle.n_links,
        queries,
        k=k,
        weighting=DEFAULT_WEIGHTING,
        log=output.log,
    )
    return {"query_books": int(len(queries)), "sparse": DEFAULT_WEIGHTING, "modes": modes}


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def evaluation_tables(report: dict[str, Any]) -> list:
    """The rich tables ``bookvec evaluate`` prints for people."""
    from rich.table import Table

    k = report["k"]
    label = " [synthetic corpus]" if report["model"]["synthetic"] else ""
    from rich.text import Text

    tables: list = []
    head = (
        f"Model {report['model']['id']}{label}: {report['books']:,} books, "
        f"{report['links']:,} links; neighbours of {report['query_books']:,} books"
    )
    if report.get("held_out_pairs"):
        head += f"; {report['held_out_pairs']:,} held-out pairs ({report['split']['note']})"
    tables.append(Text(head))

    if report["link_prediction"]:
        table = Table(title="Link prediction on held-out pairs", title_justify="left")
        for column in ("method", "AUC", "MRR", f"Hits@{k}"):
            table.add_column(column, justify="left" if column == "method" else "right")
        for name, row in report["link_prediction"].items():
            table.add_row(name, _cell(row["auc"]), _cell(row["mrr"]), _cell(row[f"hits@{k}"]))
        tables.append(table)

    table = Table(title=f"Neighbours (k={k}, cosine)", title_justify="left")
    for column in ("features", f"genre agreement@{k}", f"author recall@{k}", "same author @1"):
        table.add_column(column, justify="left" if column == "features" else "right")
    for name, row in report["neighbours"].items():
        table.add_row(
            name,
            _cell(row[f"genre_agreement@{k}"]),
            _cell(row[f"author_recall@{k}"]),
            _cell(row["author_nn@1"]),
        )
    tables.append(table)

    search = report.get("search")
    if search:
        table = Table(
            title=f"Search modes through the store (k={k}, {search['query_books']:,} books, "
            f"sparse: {search['sparse']})",
            title_justify="left",
        )
        for column in ("mode", f"genre agreement@{k}", f"author recall@{k}", "same author @1"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        for name, row in search["modes"].items():
            table.add_row(
                name,
                _cell(row[f"genre_agreement@{k}"]),
                _cell(row[f"author_recall@{k}"]),
                _cell(row["author_nn@1"]),
            )
        tables.append(table)

    probe = report.get("probe")
    if probe:
        genre = probe["genre"]
        title = (
            f"Genre probe: logistic regression, {genre['folds']}-fold, {genre['books']:,} books, "
            f"{len(genre['classes'])} genres"
        )
        if genre.get("majority_share") is not None:
            title += f" (majority share {genre['majority_share']:.3f})"
        table = Table(title=title, title_justify="left")
        for column in ("features", "accuracy", "macro-F1", "same author @1"):
            table.add_column(column, justify="left" if column == "features" else "right")
        names = list(dict.fromkeys([*genre["results"], *probe["same_author"]["results"]]))
        for name in names:
            row = genre["results"].get(name, {})
            table.add_row(
                name,
                _cell(row.get("accuracy")),
                _cell(row.get("macro_f1")),
                _cell(probe["same_author"]["results"].get(name)),
            )
        tables.append(table)
    tables.append(f"[dim]{report['seconds']['total']:.1f} s[/dim]")
    return tables


# ---------------------------------------------------------------------------------------------
# bookvec similarity


@app.command()
def similarity(
    titles: list[str] = typer.Argument(..., help="Two or more book titles (loose spelling ok)."),
    exact: bool = typer.Option(False, "--exact", help="Take the titles as typed, no matching."),
    one_hot: bool = typer.Option(
        False, "--one-hot", help="Show what one-hot encoding gives instead (the identity)."
    ),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """The pairwise cosine similarity of the learned vectors of the given books.

    Example: bookvec similarity "War and Peace" "Anna Karenina" "The Hitchhiker's Guide"
    """
    from bookvec.titles import resolve

    if len(titles) < 2:
        raise ConfigError("give at least two titles", hint='e.g. bookvec similarity "A" "B"')
    bundle = open_model(model)
    known = bundle.book_titles
    resolved = [resolve(title, known, exact=exact) for title in titles]
    if one_hot:
        matrix = np.array([[1.0 if t == u else 0.0 for u in resolved] for t in resolved])
    else:
        index = bundle.book_index
        vectors = np.asarray(bundle.book_vectors[[index[t] for t in resolved]], dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
        matrix = np.clip(vectors @ vectors.T, -1.0, 1.0)
    rows = [[round(float(v), 6) for v in row] for row in matrix]
    if json_:
        record: dict[str, Any] = {"titles": resolved, "matrix": rows}
        record["encoding"] = "one-hot" if one_hot else "bookvec"
        record["model"] = bundle.model_id
        output.emit_json(record)
        return
    from rich.table import Table

    what = "one-hot encoding" if one_hot else f"cosine, model {bundle.model_id}"
    synthetic = " [synthetic corpus]" if bundle.synthetic else ""
    title = output.cell(f"Pairwise similarity ({what}){synthetic}")
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", style="bold")
    for i in range(len(resolved)):
        table.add_column(str(i + 1), justify="right")
    for i, (name, row) in enumerate(zip(resolved, rows, strict=True)):
        cells = [f"[dim]{v:.3f}[/dim]" if i == j else f"{v:.3f}" for j, v in enumerate(row)]
        table.add_row(str(i + 1), output.cell(name), *cells)
    output.stdout.print(table)
