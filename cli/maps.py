"""`bookvec map` and `bookvec projector`: look at the embeddings.

Both need the optional `maps` extra (umap-learn, matplotlib, plotly), imported only when a command
runs; without it they say how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TypeVar

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption

T = TypeVar("T")


class MapMethod(str, Enum):
    umap = "umap"
    tsne = "tsne"


def _with_status(message: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a spinner on an interactive stderr (its log lines print above it)."""
    if output.is_quiet() or not output.stderr.is_terminal:
        return work()
    with output.stderr.status(message):
        return work()


@app.command("map")
def map_(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Where to write: .png (a picture) or .html (interactive)."
    ),
    links: bool = typer.Option(False, "--links", help="Map the link vectors, not the books."),
    method: MapMethod = typer.Option(MapMethod.umap, "--method", help="2-D reduction (cosine)."),
    top_genres: int = typer.Option(
        10, "--top-genres", min=1, max=20, help="Colour the N most common genres; others grey."
    ),
    highlight: list[str] = typer.Option(
        [], "--highlight", "-H", help="Mark this book and its neighbours (repeatable)."
    ),
    neighbours: int = typer.Option(
        5, "--neighbours", "-k", min=0, max=50, help="Neighbours marked per highlighted book."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the reduction."),
    width: int = typer.Option(1600, "--width", min=200, max=10000, help="PNG width in pixels."),
    height: int = typer.Option(1200, "--height", min=200, max=10000, help="PNG height in pixels."),
    recompute: bool = typer.Option(
        False, "--recompute", help="Reduce again even if the bundle has these coordinates."
    ),
    exact: bool = typer.Option(False, "--exact", help="Take --highlight titles as typed."),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Draw every book (or link) on a 2-D map coloured by genre: a PNG, or an HTML page to
    explore offline (hover for details, click the legend to hide a genre, search a title).

    The 2-D coordinates are computed once per model, method and seed and kept in the bundle.
    Books added with `bookvec upsert` are drawn too, ringed and marked "(upserted)".

    Example: bookvec map --out books.png --highlight "War and Peace" --highlight "Dune"
    """
    from bookvec.library import analysis

    report = analysis.draw_map(
        out,
        model=model,
        links=links,
        method=method.value,
        top_genres=top_genres,
        highlight=highlight,
        neighbours=neighbours,
        seed=seed,
        width=width,
        height=height,
        recompute=recompute,
        exact=exact,
        log=output.log,
        status=_with_status,
    )
    for warning in report.warnings:
        output.warn(warning)
    output.log(f"Wrote {out} ({report.format.upper()}, {report.seconds:.1f} s)")
    if json_:
        output.emit_json(report.to_dict())


@app.command()
def projector(
    out_dir: Path = typer.Argument(..., help="Directory to write the three files into."),
    sample_genres: int | None = typer.Option(
        None, "--sample-genres", min=1, max=100, help="Only books of the N most common genres."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the UMAP coordinates."),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Export the book vectors for the TensorFlow Embedding Projector: vectors.tsv,
    metadata.tsv (title, author, genres, year, umap_x, umap_y; and source, trained or
    upserted, when the store holds upserted books) and projector_config.json.

    Load the two TSV files with the projector's "Load" button (projector.tensorflow.org), or
    serve the directory and open the projector with ?config=projector_config.json. The UMAP
    columns let it show the whole set, where its own t-SNE samples 10,000 points.

    Example: bookvec projector projector/ --sample-genres 10
    """
    from bookvec.library import analysis

    result = analysis.projector(
        out_dir, model=model, sample_genres=sample_genres, seed=seed, log=output.log,
        status=_with_status,
    )  # fmt: skip
    for warning in result.warnings:
        output.warn(warning)
    output.log(
        f"Wrote {result.books:,} books x {result.dim} dimensions to {out_dir}: "
        "load vectors.tsv and metadata.tsv in the Embedding Projector"
    )
    if json_:
        output.emit_json(result.to_dict())
