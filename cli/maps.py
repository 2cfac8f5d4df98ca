"""`bookvec map` and `bookvec projector`: look at the embeddings.

Both need the optional `maps` extra (umap-learn, matplotlib, plotly), imported only when a command
runs; without it they say how to install it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption, open_model
from bookvec.errors import ConfigError
from bookvec.outfiles import check_output, check_output_dir

if TYPE_CHECKING:
    from bookvec.model.analysis.plots import MapData
    from bookvec.model.bundle import Bundle

T = TypeVar("T")
FORMATS = {".png": "png", ".html": "html", ".htm": "html"}


class MapMethod(str, Enum):
    umap = "umap"
    tsne = "tsne"


def _with_status(message: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a spinner on an interactive stderr (its log lines print above it)."""
    if output.is_quiet() or not output.stderr.is_terminal:
        return work()
    with output.stderr.status(message):
        return work()


def _coordinates(
    bundle: Bundle, kind: str, method: str, seed: int, recompute: bool, books: Books | None = None
):
    from bookvec.model.analysis.reduce import map_coordinates

    extra = None
    if books is not None and books.n_upserted:
        extra = (books.titles[bundle.n_books :], books.vectors[bundle.n_books :])
    return _with_status(
        f"{method.upper()} of the {kind} vectors",
        lambda: map_coordinates(
            bundle,
            kind=kind,
            method=method,
            seed=seed,
            recompute=recompute,
            log=output.log,
            extra=extra,
        ),
    )


@dataclass
class Books:
    """The books a map or projector shows: the bundle's, then the store's upserted books
    (vectors of this model only), rows in that order."""

    titles: list[str]
    vectors: Any  # float32 (n, dim)
    genres: list[list[str]]
    authors: list[str | None]
    years: list[int | None]
    n_upserted: int = 0

    @property
    def upserted(self) -> list[bool]:
        n_trained = len(self.titles) - self.n_upserted
        return [i >= n_trained for i in range(len(self.titles))] if self.n_upserted else []


def _books(bundle: Bundle) -> Books:
    import numpy as np

    from bookvec.library.catalogue import store_upserted_vectors

    books = Books(
        titles=list(bundle.book_titles),
        vectors=np.asarray(bundle.book_vectors),
        genres=_book_genres(bundle),
        authors=_column(bundle, "author"),
        years=_column(bundle, "year"),
    )
    records, note = store_upserted_vectors(bundle)
    if note:
        output.warn(f"upserted books not shown: {note}")
    known = bundle.book_index
    records = [r for r in records if r.title not in known]  # the trained version stays
    if not records:
        return books
    books.titles += [r.title for r in records]
    extra = np.asarray([r.vector for r in records], dtype=books.vectors.dtype)
    books.vectors = np.vstack([books.vectors, extra])
    for record in records:
        payload = record.payload
        authors = payload.get("authors") or []
        books.genres.append(list(payload.get("genres") or []))
        books.authors.append(payload.get("author") or ("; ".join(authors) or None))
        books.years.append(payload.get("year"))
    books.n_upserted = len(records)
    output.log(f"with {len(records):,} upserted books from the store")
    return books


def _book_genres(bundle: Bundle) -> list[list[str]]:
    return [list(g or []) for g in bundle.books.get_column("genres").to_list()]


def _column(bundle: Bundle, name: str) -> list:
    books = bundle.books
    return books.get_column(name).to_list() if name in books.columns else [None] * len(books)


def _map_data(
    bundle: Bundle,
    coords,
    *,
    kind: str,
    books: Books | None,
    top_n: int,
    highlights: list[int],
    neighbours: int,
    caption: str,
) -> MapData:
    from bookvec.model.analysis.plots import Highlight, MapData
    from bookvec.model.analysis.reduce import genre_labels, nearest, top_genres

    vectors = books.vectors if books is not None else bundle.link_vectors
    picked = [Highlight(i, nearest(vectors, i, neighbours)) for i in highlights]
    if kind == "links":
        counts = bundle.links.get_column("count").to_list()
        return MapData(
            coords=coords,
            names=bundle.link_names,
            groups=[None] * len(coords),
            legend=[],
            hover_fields=("linked from",),
            hover=[[f"{c:,} books"] for c in counts],
            highlights=picked,
            title=caption,
            other_label="links",
        )
    assert books is not None
    genres, authors, years = books.genres, books.authors, books.years
    ranked = [name for name, _ in top_genres(genres, top_n)]
    groups = genre_labels(genres, ranked)
    coloured = Counter(groups)
    legend = [(name, coloured[name]) for name in ranked]  # books drawn in each colour
    return MapData(
        coords=coords,
        names=books.titles,
        groups=groups,
        legend=legend,
        hover_fields=("author", "genres", "year"),
        hover=[
            [a or "", ", ".join(g), "" if y is None else str(y)]
            for a, g, y in zip(authors, genres, years, strict=True)
        ],
        highlights=picked,
        title=caption,
        marked=books.upserted,
    )


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
    from bookvec.model.analysis.reduce import require
    from bookvec.titles import resolve

    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell what to write from {out.name!r}", hint="end --out with .png or .html"
        )
    require("matplotlib" if fmt == "png" else "plotly")
    check_output(out, what="--out")  # before minutes of UMAP, not after
    bundle = open_model(model)
    kind = "links" if links else "books"
    books = None if links else _books(bundle)
    if books is None:
        names, lookup = bundle.link_names, bundle.link_index
    elif books.n_upserted:
        names, lookup = books.titles, {t: i for i, t in enumerate(books.titles)}
    else:
        names, lookup = bundle.book_titles, bundle.book_index
    what = "link" if links else "book"
    picked = [lookup[resolve(title, names, exact=exact, what=what)] for title in highlight]
    coords, cached = _coordinates(bundle, kind, method.value, seed, recompute, books)
    n_upserted = books.n_upserted if books is not None else 0
    extra = f" ({n_upserted:,} upserted)" if n_upserted else ""
    caption = (
        f"bookvec: {len(names):,} {kind}{extra}, {method.value.upper()} (cosine, seed {seed}), "
        f"model {bundle.model_id}{' [synthetic corpus]' if bundle.synthetic else ''}"
    )
    data = _map_data(
        bundle,
        coords,
        kind=kind,
        books=books,
        top_n=top_genres,
        highlights=picked,
        neighbours=neighbours,
        caption=caption,
    )
    started = time.perf_counter()
    if fmt == "png":
        from bookvec.model.analysis.plots import draw_png

        draw_png(data, out, width=width, height=height)
    else:
        from bookvec.model.analysis.plots import write_html

        write_html(data, out)
    output.log(f"Wrote {out} ({fmt.upper()}, {time.perf_counter() - started:.1f} s)")
    if json_:
        upserted = {"upserted": n_upserted} if n_upserted else {}  # unchanged without them
        output.emit_json(
            {
                "out": str(out),
                "format": fmt,
                "kind": kind,
                "points": len(names),
                "method": method.value,
                "seed": seed,
                "cached": cached,
                "model": bundle.model_id,
                "genres": [{"genre": g, "count": c} for g, c in data.legend],
                "highlights": [
                    {
                        "title": names[h.index],
                        "neighbours": [
                            {"title": names[j], "score": round(s, 6)} for j, s in h.neighbours
                        ],
                    }
                    for h in data.highlights
                ],
            }
            | upserted
        )


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
    import numpy as np

    from bookvec.model.analysis.plots import PROJECTOR_COLUMNS, write_projector
    from bookvec.model.analysis.reduce import genre_labels, top_genres

    check_output_dir(out_dir, what="OUT_DIR")
    bundle = open_model(model)
    books = _books(bundle)
    coords, _ = _coordinates(bundle, "books", "umap", seed, False, books)
    genres = books.genres
    n_books = len(books.titles)
    rows = np.arange(n_books)
    if sample_genres is not None:
        top = [name for name, _ in top_genres(genres, sample_genres)]
        labels = genre_labels(genres, top)
        rows = np.array([i for i, label in enumerate(labels) if label is not None], dtype=int)
        output.log(f"Keeping {len(rows):,} of {n_books:,} books: {', '.join(top)}")
    titles, authors, years = books.titles, books.authors, books.years
    metadata = [
        [
            titles[i],
            authors[i],
            ", ".join(genres[i]),
            years[i],
            f"{coords[i, 0]:.5f}",
            f"{coords[i, 1]:.5f}",
        ]
        for i in rows
    ]
    columns = PROJECTOR_COLUMNS
    if books.n_upserted:  # a `source` column only where there is something to tell apart
        columns = (*PROJECTOR_COLUMNS, "source")
        marked = books.upserted
        for row, i in zip(metadata, rows, strict=True):
            row.append("upserted" if marked[i] else "trained")
    vectors = np.asarray(books.vectors)[rows]
    paths = write_projector(
        out_dir,
        vectors,
        metadata,
        tensor_name=f"bookvec books ({bundle.model_id})",
        columns=columns,
    )
    output.log(
        f"Wrote {len(rows):,} books x {vectors.shape[1]} dimensions to {out_dir}: "
        "load vectors.tsv and metadata.tsv in the Embedding Projector"
    )
    if json_:
        upserted = int(sum(books.upserted[i] for i in rows)) if books.n_upserted else None
        output.emit_json(
            {"books": int(len(rows)), "dim": int(vectors.shape[1]), "model": bundle.model_id}
            | ({"upserted": upserted} if upserted is not None else {})
            | paths
        )
