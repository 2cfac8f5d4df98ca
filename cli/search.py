"""`bookvec search`: books like a book (or several, or unlike some), or the books most likely to
link to a page; nearest first, with payload filters. Scores: cosine similarities (dense), sparse
dot products (sparse), or the fused score (hybrid)."""

from __future__ import annotations

import typer

from bookvec.cli import output, searching
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, ModelOption, UrlOption

_FILTERS = "Filters"
_QUERY = "Query"


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
    problem = searching.usage_problem(title, like, unlike, link, mode, genre, all_genres)
    if problem is not None:
        raise typer.BadParameter(problem[0], param_hint=problem[1])
    searching.run(
        fmt,
        title,
        like,
        unlike,
        link,
        genre,
        all_genres,
        author,
        country,
        year_from,
        year_to,
        mode,
        diverse,
        limit,
        exact,
        model,
        url,
        api_key,
        collection,
    )
