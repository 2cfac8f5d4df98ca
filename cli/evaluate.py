"""`bookvec evaluate` (how good are the vectors, next to the baselines) and `bookvec similarity`
(the pairwise cosine matrix of a few books): parse, call ``bookvec.library.analysis``, print.
Neither imports torch: the bundle holds the training and held-out pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption


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
    from bookvec.library import analysis

    evaluation = analysis.evaluate(
        model,
        data=data,
        baselines=baselines,
        probe=probe,
        queries=queries,
        ranked=ranked,
        search_queries=search_queries,
        seed=seed,
        log=output.log,
    )
    for warning in evaluation.warnings:
        output.warn(warning)
    report = evaluation.to_dict()
    if json_:
        output.emit_json(report)
        return
    for table in evaluation_tables(report):
        output.stdout.print(table)


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
    from bookvec.library import analysis

    result = analysis.similarity(titles, model=model, exact=exact, one_hot=one_hot)
    if json_:
        output.emit_json(result.to_dict())
        return
    from rich.table import Table

    resolved, rows = result.titles, result.matrix
    what = "one-hot encoding" if one_hot else f"cosine, model {result.model}"
    synthetic = " [synthetic corpus]" if result.synthetic else ""
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
