"""What `bookvec map` and `bookvec projector` draw: the books (or links) of a bundle with their
labels, and the ``MapData`` a plot is made from. Plain data; the reductions are in
``reduce.py``, the drawing in ``plots.py``, the store's upserted books are added by the library.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bookvec.model.analysis.plots import MapData
    from bookvec.model.bundle import Bundle

FORMATS = {".png": "png", ".html": "html", ".htm": "html"}
METHODS = ("umap", "tsne")


@dataclass
class Books:
    """The books a map or projector shows: the bundle's, then any added books (the store's
    upserted books, vectors of this model only), rows in that order."""

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

    def add_upserted(self, records: list[Any]) -> None:
        """More books after these (records with ``title``, ``vector``, ``payload``: a store's
        upserted books), their labels from the payloads."""
        if not records:
            return
        extra = np.asarray([r.vector for r in records], dtype=self.vectors.dtype)
        self.vectors = np.vstack([self.vectors, extra])
        for record in records:
            payload = record.payload
            authors = payload.get("authors") or []
            self.titles.append(record.title)
            self.genres.append(list(payload.get("genres") or []))
            self.authors.append(payload.get("author") or ("; ".join(authors) or None))
            self.years.append(payload.get("year"))
        self.n_upserted += len(records)


def bundle_books(bundle: Bundle) -> Books:
    """The bundle's books with their genres, authors and years."""
    frame = bundle.books

    def column(name: str) -> list:
        return frame.get_column(name).to_list() if name in frame.columns else [None] * len(frame)

    return Books(
        titles=list(bundle.book_titles),
        vectors=np.asarray(bundle.book_vectors),
        genres=[list(g or []) for g in frame.get_column("genres").to_list()],
        authors=column("author"),
        years=column("year"),
    )


def map_data(
    bundle: Bundle,
    coords: np.ndarray,
    *,
    books: Books | None,
    top_n: int,
    highlights: list[int],
    neighbours: int,
    caption: str,
) -> MapData:
    """The points, colours, hover texts and highlights of a map of ``books`` (None: the
    bundle's links)."""
    from bookvec.model.analysis.plots import Highlight, MapData
    from bookvec.model.analysis.reduce import genre_labels, nearest, top_genres

    vectors = books.vectors if books is not None else bundle.link_vectors
    picked = [Highlight(i, nearest(vectors, i, neighbours)) for i in highlights]
    if books is None:
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


def projector_rows(
    books: Books, coords: np.ndarray, rows: np.ndarray
) -> tuple[list[list[Any]], tuple[str, ...]]:
    """The metadata.tsv rows of ``rows`` and its columns (a ``source`` column, trained or
    upserted, only where there are upserted books to tell apart)."""
    from bookvec.model.analysis.plots import PROJECTOR_COLUMNS

    titles, authors, genres, years = books.titles, books.authors, books.genres, books.years
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
    if books.n_upserted:
        columns = (*PROJECTOR_COLUMNS, "source")
        marked = books.upserted
        for row, i in zip(metadata, rows, strict=True):
            row.append("upserted" if marked[i] else "trained")
    return metadata, columns
