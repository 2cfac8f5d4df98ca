"""`bookvec search`: books like a book (or several, or unlike some), or the books most likely to
link to a page; nearest first, with payload filters. Scores: cosine similarities (dense), sparse
dot products (sparse), or the fused score (hybrid)."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, ModelOption, UrlOption

_FILTERS = "Filters"
_QUERY = "Query"


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


def _caption(positive, negative, link: str | None, filters) -> str:
    if link is not None:
        caption = f"Books most likely to link to {link!r}"
    else:
        caption = "Books like " + " and ".join(positive)
        if negative:
            caption += ", unlike " + " and ".join(negative)
    conditions = []
    if filters["genres_any"]:
        conditions.append("genre: " + " or ".join(filters["genres_any"]))
    if filters["genres_all"]:
        conditions.append("genres: " + " and ".join(filters["genres_all"]))
    for name in ("author", "country"):
        if filters[name]:
            conditions.append(f"{name}: {filters[name]}")
    if filters["year_from"] is not None or filters["year_to"] is not None:
        conditions.append(f"years: {filters['year_from'] or ''}..{filters['year_to'] or ''}")
    return caption + (f" ({'; '.join(conditions)})" if conditions else "")


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
    from bookvec.library.index import open_index

    _check_query(title, like, unlike, link)
    if mode is not None and mode not in ("dense", "sparse", "hybrid"):
        raise typer.BadParameter("use dense, sparse or hybrid", param_hint="'--mode'")
    if all_genres and not genre:
        raise typer.BadParameter("needs at least one --genre", param_hint="'--all-genres'")
    years = None if year_from is None and year_to is None else (year_from, year_to)
    with open_index(url=url, api_key=api_key, collection=collection, model=model) as index:
        result = index.search(
            title,
            like=like,
            unlike=unlike,
            link=link,
            genres=() if all_genres else genre,
            genres_all=genre if all_genres else (),
            author=author,
            country=country,
            years=years,
            limit=limit,
            mode=mode,
            diverse=diverse,
            exact=exact,
        )
    mode, synthetic = result.mode, result.synthetic
    caption = _caption(result.positive, result.negative, result.link, result.filters)
    if mode != "dense" or diverse:
        caption += f" [{mode}{', diverse' if diverse else ''}]"
    label = {"dense": "cosine", "sparse": "links"}.get(mode, "score")
    caption += " [synthetic corpus]" if synthetic else ""
    output.emit_rows(
        result.records(),
        fmt,
        table=lambda rows: output.books_table(list(rows), title=caption, score_label=label),
        columns=[*output.BOOK_COLUMNS, *(["corpus"] if synthetic else [])],
        empty=f"{caption}: no book matches the filters",
    )
