"""``draw_map`` and ``projector`` (`bookvec map`, `bookvec projector`): the bundle's books, the
store's upserted books after them, reduced to 2-D and drawn or exported. Results are frozen;
``to_dict()`` is the command's ``--json``. Re-exported by ``bookvec.library.analysis``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from bookvec.errors import ConfigError

if TYPE_CHECKING:
    from bookvec.model.analysis.maps import Books
    from bookvec.model.bundle import Bundle

T = TypeVar("T")
Log = Callable[[str], None]
Status = Callable[[str, Callable[[], Any]], Any]  # run work under a message (a spinner)


def _quiet(message: str) -> None:
    pass


def _plain(message: str, work: Callable[[], T]) -> T:
    return work()


def open_model(model: str | Path | Bundle | None) -> Bundle:
    """A bundle: ``model`` itself, the one a model id or path names, or (None) the current."""
    from bookvec.model.bundle import Bundle, open_bundle

    return model if isinstance(model, Bundle) else open_bundle(model)


def _books_with_upserted(bundle: Bundle, log: Log, warnings: list[str]) -> Books:
    """The bundle's books, then the store's upserted books (vectors of this model only)."""
    from bookvec.library.catalogue import store_upserted_vectors
    from bookvec.model.analysis.maps import bundle_books

    books = bundle_books(bundle)
    records, note = store_upserted_vectors(bundle)
    if note:
        warnings.append(f"upserted books not shown: {note}")
    known = bundle.book_index
    records = [r for r in records if r.title not in known]  # the trained version stays
    if records:
        books.add_upserted(records)
        log(f"with {len(records):,} upserted books from the store")
    return books


def _coordinates(bundle, kind, method, seed, recompute, books, log: Log, status: Status):
    from bookvec.model.analysis.reduce import map_coordinates

    extra = None
    if books is not None and books.n_upserted:
        extra = (books.titles[bundle.n_books :], books.vectors[bundle.n_books :])
    return status(
        f"{method.upper()} of the {kind} vectors",
        lambda: map_coordinates(
            bundle, kind=kind, method=method, seed=seed, recompute=recompute, log=log, extra=extra
        ),
    )


@dataclass(frozen=True)
class MapReport:
    out: str
    format: str
    kind: str  # "books" or "links"
    points: int
    method: str
    seed: int
    cached: bool
    model: str
    genres: tuple[tuple[str, int], ...]
    highlights: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    upserted: int = 0
    seconds: float = field(default=0.0, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "out": self.out,
            "format": self.format,
            "kind": self.kind,
            "points": self.points,
            "method": self.method,
            "seed": self.seed,
            "cached": self.cached,
            "model": self.model,
            "genres": [{"genre": g, "count": c} for g, c in self.genres],
            "highlights": [
                {"title": t, "neighbours": [{"title": n, "score": s} for n, s in near]}
                for t, near in self.highlights
            ],
        }
        return record | ({"upserted": self.upserted} if self.upserted else {})


def draw_map(
    out: str | Path,
    *,
    model: str | Path | Bundle | None = None,
    links: bool = False,
    method: str = "umap",
    top_genres: int = 10,
    highlight: Sequence[str] = (),
    neighbours: int = 5,
    seed: int = 0,
    width: int = 1600,
    height: int = 1200,
    recompute: bool = False,
    exact: bool = False,
    log: Log = _quiet,
    status: Status = _plain,
) -> MapReport:
    """Draw every book (or link) on a 2-D map coloured by genre: a PNG, or an HTML page.
    The coordinates are cached in the bundle per model, method and seed."""
    import time

    from bookvec.model.analysis.maps import FORMATS, METHODS, map_data
    from bookvec.model.analysis.reduce import require
    from bookvec.outfiles import check_output
    from bookvec.titles import resolve

    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell what to write from {out.name!r}", hint="end --out with .png or .html"
        )
    if method not in METHODS:
        raise ConfigError(f"unknown map method {method!r}", hint="umap or tsne")
    require("matplotlib" if fmt == "png" else "plotly")
    check_output(out, what="--out")  # before minutes of UMAP, not after
    bundle = open_model(model)
    kind = "links" if links else "books"
    warnings: list[str] = []
    books = None if links else _books_with_upserted(bundle, log, warnings)
    if books is None:
        names, lookup = bundle.link_names, bundle.link_index
    elif books.n_upserted:
        names, lookup = books.titles, {t: i for i, t in enumerate(books.titles)}
    else:
        names, lookup = bundle.book_titles, bundle.book_index
    what = "link" if links else "book"
    picked = [lookup[resolve(title, names, exact=exact, what=what)] for title in highlight]
    coords, cached = _coordinates(bundle, kind, method, seed, recompute, books, log, status)
    n_upserted = books.n_upserted if books is not None else 0
    extra = f" ({n_upserted:,} upserted)" if n_upserted else ""
    caption = (
        f"bookvec: {len(names):,} {kind}{extra}, {method.upper()} (cosine, seed {seed}), "
        f"model {bundle.model_id}{' [synthetic corpus]' if bundle.synthetic else ''}"
    )
    data = map_data(
        bundle,
        coords,
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
    return MapReport(
        out=str(out),
        format=fmt,
        kind=kind,
        points=len(names),
        method=method,
        seed=seed,
        cached=cached,
        model=bundle.model_id,
        genres=tuple((g, c) for g, c in data.legend),
        highlights=tuple(
            (names[h.index], tuple((names[j], round(s, 6)) for j, s in h.neighbours))
            for h in data.highlights
        ),
        upserted=n_upserted,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class ProjectorExport:
    books: int
    dim: int
    model: str
    files: Mapping[str, str]  # vectors, metadata, config: their paths
    upserted: int | None = None  # None: the store holds no upserted books
    kept_genres: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"books": self.books, "dim": self.dim, "model": self.model}
        if self.upserted is not None:
            record["upserted"] = self.upserted
        return record | dict(self.files)


def projector(
    out_dir: str | Path,
    *,
    model: str | Path | Bundle | None = None,
    sample_genres: int | None = None,
    seed: int = 0,
    log: Log = _quiet,
    status: Status = _plain,
) -> ProjectorExport:
    """Export the book vectors for the TensorFlow Embedding Projector: vectors.tsv,
    metadata.tsv (title, author, genres, year, umap_x, umap_y; and source where the store holds
    upserted books) and projector_config.json."""
    from bookvec.model.analysis.maps import projector_rows
    from bookvec.model.analysis.plots import write_projector
    from bookvec.model.analysis.reduce import genre_labels, top_genres
    from bookvec.outfiles import check_output_dir

    check_output_dir(out_dir, what="OUT_DIR")
    bundle = open_model(model)
    warnings: list[str] = []
    books = _books_with_upserted(bundle, log, warnings)
    coords, _ = _coordinates(bundle, "books", "umap", seed, False, books, log, status)
    n_books = len(books.titles)
    rows = np.arange(n_books)
    kept: list[str] = []
    if sample_genres is not None:
        kept = [name for name, _ in top_genres(books.genres, sample_genres)]
        labels = genre_labels(books.genres, kept)
        rows = np.array([i for i, label in enumerate(labels) if label is not None], dtype=int)
        log(f"Keeping {len(rows):,} of {n_books:,} books: {', '.join(kept)}")
    metadata, columns = projector_rows(books, coords, rows)
    vectors = np.asarray(books.vectors)[rows]
    paths = write_projector(
        Path(out_dir),
        vectors,
        metadata,
        tensor_name=f"bookvec books ({bundle.model_id})",
        columns=columns,
    )
    upserted = int(sum(books.upserted[i] for i in rows)) if books.n_upserted else None
    return ProjectorExport(
        books=int(len(rows)),
        dim=int(vectors.shape[1]),
        model=bundle.model_id,
        files=paths,
        upserted=upserted,
        kept_genres=tuple(kept),
        warnings=tuple(warnings),
    )
