"""`bookvec search`: books like a book (or several, or unlike some), or the books most likely to
link to a page; nearest first, with payload filters. Scores: cosine similarities (dense), sparse
dot products (sparse), or the fused score (hybrid)."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    ModelOption,
    UrlOption,
    open_store,
    read_manifest_quietly,
)
from bookvec.errors import ModelMismatchError

_FILTERS = "Filters"
_QUERY = "Query"


def genre_filter_values(values: list[str]) -> tuple[str, ...]:
    """What a person types as a genre -> the canonical genre names stored in payloads."""
    from bookvec.model.corpus.genres import canonical_genres

    canonical: list[str] = []
    for value in values:
        for genre in canonical_genres(value) or [value.strip().casefold()]:
            if genre not in canonical:
                canonical.append(genre)
    return tuple(canonical)


def _check_query(title: str | None, like: list[str], unlike: list[str], link: str | None) -> None:
    """Usage errors (exit 2): what makes a query, and what does not combine."""
    if link is not None and (title is not None or like or unlike):
        raise typer.BadParameter(
            "a query of its own: give it without TITLE, --like or --unlike", param_hint="'--link'"
        )
    if link is None and title is None and not like:
        raise typer.BadParameter(
            "give a book title, --like TITLE (repeatable) or --link PAGE", param_hint="'TITLE'"
        )


def _caption(positive: list[str], negative: list[str], link: str | None, book_filter) -> str:
    if link is not None:
        caption = f"Books most likely to link to {link!r}"
    else:
        caption = "Books like " + " and ".join(positive)
        if negative:
            caption += ", unlike " + " and ".join(negative)
    conditions = []
    if book_filter.genres_any:
        conditions.append("genre: " + " or ".join(book_filter.genres_any))
    if book_filter.genres_all:
        conditions.append("genres: " + " and ".join(book_filter.genres_all))
    for name in ("author", "country"):
        if getattr(book_filter, name):
            conditions.append(f"{name}: {getattr(book_filter, name)}")
    if book_filter.year_from is not None or book_filter.year_to is not None:
        conditions.append(f"years: {book_filter.year_from or ''}..{book_filter.year_to or ''}")
    return caption + (f" ({'; '.join(conditions)})" if conditions else "")


def _link_vector(model: str | None, link: str, exact: bool, store_model: str | None):
    """The page's unit vector from the bundle the store was indexed with, and its name."""
    import numpy as np

    from bookvec.cli.common import open_model
    from bookvec.library.actions import resolve_bundle_link

    bundle = open_model(model)
    from bookvec.model import bundle as files

    bundle.verify((files.LINK_VECTORS, files.LINKS))
    if store_model is not None and store_model != bundle.model_id:
        raise ModelMismatchError(
            f"the store holds vectors of model {store_model}, the model here is "
            f"{bundle.model_id}: a link vector from one cannot query the other",
            hint="run `bookvec index` to index the current model, or pass --model " + store_model,
        )
    index = resolve_bundle_link(bundle, link, exact=exact)
    vector = np.asarray(bundle.link_vectors[index], dtype=np.float32)
    return vector, ([int(index)], [1.0]), bundle.link_names[index]


def default_mode(info) -> str:
    """The mode a search uses when none is given: hybrid where the collection has sparse
    vectors (chosen by measurement, README "Search modes"), else dense."""
    from bookvec.indexer.hybrid import DEFAULT_MODE

    return DEFAULT_MODE if info is not None and info.index.has_sparse else "dense"


@app.command()
@output.output_options
def search(
    fmt: str,
    title: str | None = typer.Argument(
        None,
        metavar="TITLE",
        help="A book title (loose spelling is resolved). Optional with --like or --link.",
    ),
    like: list[str] = typer.Option(
        [], "--like", help="Also like this book (repeatable).", rich_help_panel=_QUERY
    ),
    unlike: list[str] = typer.Option(
        [], "--unlike", help="Away from this book (repeatable).", rich_help_panel=_QUERY
    ),
    link: str | None = typer.Option(
        None,
        "--link",
        help="Books most likely to link to this page (its vector is the query).",
        rich_help_panel=_QUERY,
    ),
    genre: list[str] = typer.Option(
        [],
        "--genre",
        "-g",
        help="Only books of this genre (repeat: any of them).",
        rich_help_panel=_FILTERS,
    ),
    all_genres: bool = typer.Option(
        False, "--all-genres", help="Books must have every --genre.", rich_help_panel=_FILTERS
    ),
    author: str | None = typer.Option(
        None, "--author", help="Only books by this author.", rich_help_panel=_FILTERS
    ),
    country: str | None = typer.Option(
        None, "--country", help="Only books from this country.", rich_help_panel=_FILTERS
    ),
    year_from: int | None = typer.Option(
        None, "--year-from", help="Published in or after.", rich_help_panel=_FILTERS
    ),
    year_to: int | None = typer.Option(
        None, "--year-to", help="Published in or before.", rich_help_panel=_FILTERS
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        "-m",
        help="dense: the learned vectors' cosine; sparse: the books' links (shared pages, "
        "weighted); hybrid: both, fused by Qdrant. Default: hybrid when the store has sparse "
        "vectors (`bookvec info` says), else dense.",
        show_default=False,
        rich_help_panel=_QUERY,
    ),
    diverse: bool = typer.Option(
        False,
        "--diverse",
        help="Diverse results: the mode's top candidates re-ranked by MMR (relevance vs "
        "similarity to the books already picked, on the learned vectors).",
        rich_help_panel=_QUERY,
    ),
    limit: int = typer.Option(10, "--limit", "-k", min=1, max=1000, help="How many books."),
    exact: bool = typer.Option(False, "--exact", help="Take titles as typed, no matching."),
    model: ModelOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Books most like TITLE, the query books excluded: by the learned vectors (--mode
    dense), by the pages they link to (sparse), or both fused (hybrid, the default).

    Several examples: --like adds books to like, --unlike books to steer away from (Qdrant's
    recommend: the mean of the liked vectors pushed away from the mean of the unliked ones).
    --link PAGE ranks books by the cosine of their vector with the page's: the books the model
    finds most likely to link to it (--model matters only here).

    Examples: bookvec search "Jaws" --genre thriller --limit 5
              bookvec search --like "Dune" --like "Foundation" --unlike "Twilight" --json
              bookvec search --link "science fiction" --year-from 1950 --csv
              bookvec search "Emma" --mode dense --diverse
    """
    from bookvec.indexer import BookFilter
    from bookvec.library.actions import resolve_store_titles

    _check_query(title, like, unlike, link)
    if mode is not None and mode not in ("dense", "sparse", "hybrid"):
        raise typer.BadParameter("use dense, sparse or hybrid", param_hint="'--mode'")
    if all_genres and not genre:
        raise typer.BadParameter("needs at least one --genre", param_hint="'--all-genres'")
    genres = genre_filter_values(genre)
    book_filter = BookFilter(
        genres_any=() if all_genres else genres,
        genres_all=genres if all_genres else (),
        author=author,
        country=country,
        year_from=year_from,
        year_to=year_to,
    )
    positive: list[str] = []
    negative: list[str] = []
    store = open_store(url, api_key, collection, read_only=True)
    try:
        info = store.info()
        store_model = info.model_version if info else None
        mode = mode or default_mode(info)
        how = {"mode": mode, "diverse": diverse}
        if link is not None:
            vector, sparse, link = _link_vector(model, link, exact, store_model)
            hits = store.search(vector, limit=limit, filter=book_filter, sparse=sparse, **how)
        else:
            examples = ([title] if title is not None else []) + list(like)
            resolved = resolve_store_titles(store, [*examples, *unlike], exact=exact)
            positive, negative = resolved[: len(examples)], resolved[len(examples) :]
            if len(positive) == 1 and not negative:
                hits = store.search_like(positive[0], limit=limit, filter=book_filter, **how)
            else:
                hits = store.recommend(positive, negative, limit=limit, filter=book_filter, **how)
    finally:
        store.close()
    manifest = read_manifest_quietly(store_model)
    synthetic = bool(manifest and manifest.corpus.synthetic)
    records = [output.hit_record(hit.title, hit.score, hit.payload) for hit in hits]
    if synthetic:
        for record in records:
            record["corpus"] = "synthetic"
    caption = _caption(positive, negative, link, book_filter)
    if mode != "dense" or diverse:
        caption += f" [{mode}{', diverse' if diverse else ''}]"
    label = {"dense": "cosine", "sparse": "links"}.get(mode, "score")
    caption += " [synthetic corpus]" if synthetic else ""
    output.emit_rows(
        records,
        fmt,
        table=lambda rows: output.books_table(list(rows), title=caption, score_label=label),
        columns=[*output.BOOK_COLUMNS, *(["corpus"] if synthetic else [])],
        empty=f"{caption}: no book matches the filters",
    )
