"""`bookvec links BOOK` (the pages the model predicts the book links to) and
`bookvec similar-links PAGE` (the pages nearest a page). Bundle + ONNX Runtime; no store."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ModelOption


@app.command()
@output.output_options
def links(
    fmt: str,
    book: str = typer.Argument(
        ..., metavar="BOOK", help="A book title (loose spelling is resolved)."
    ),
    limit: int = typer.Option(20, "--limit", "-k", min=1, max=10000, help="How many pages."),
    missing: bool = typer.Option(
        False, "--missing", help="Only pages the article does not link to yet (suggestions)."
    ),
    exact: bool = typer.Option(False, "--exact", help="Take the title as typed, no matching."),
    model: ModelOption = None,
) -> None:
    """The pages BOOK's article most likely links to, by the model (its score graph, through ONNX
    Runtime, over every page in one batch). Pages the article really links to are marked.

    score is the probability; observed is true for the article's own links; books is how many
    books link to the page.

    Examples: bookvec links "The Fashion in Shrouds" --limit 10
              bookvec links "Hawk of May" --missing --json
    """
    from bookvec.library.model import load

    found = load(model).links(book, missing=missing, topn=limit, exact=exact, log=output.log)
    title = f"{found.title} (upserted)" if found.upserted else found.title
    records = found.records()
    has = found.observed
    caption = None
    if fmt == "table":
        caption = f"✓ observed: the article links there ({has} of its links are in the model)"
    output.emit_rows(
        records,
        fmt,
        table=lambda rows: output.links_table(
            rows,
            title=f"Pages {title} most likely links to",
            score_label="probability",
            extra=("observed", "books"),
            caption=caption,
        ),
        columns=("title", "score", "observed", "books"),
        empty=f"{title}: no page left to suggest",
    )


@app.command("similar-links")
@output.output_options
def similar_links(
    fmt: str,
    link: str = typer.Argument(
        ..., metavar="PAGE", help="A page that books link to (loose spelling is resolved)."
    ),
    limit: int = typer.Option(10, "--limit", "-k", min=1, max=10000, help="How many pages."),
    exact: bool = typer.Option(False, "--exact", help="Take the name as typed, no matching."),
    model: ModelOption = None,
) -> None:
    """The pages nearest PAGE: cosine of the learned link vectors (pages linked from the same
    kind of books end up close). books is how many books link to each page.

    Examples: bookvec similar-links "science fiction"
              bookvec similar-links "Agatha Christie" --limit 5 --csv
    """
    from bookvec.library.model import load

    m = load(model)
    name = m.link_names[m.link_index(link, exact=exact)]
    records = [hit.to_dict() for hit in m.similar_links(link, topn=limit, exact=exact)]
    output.emit_rows(
        records,
        fmt,
        table=lambda rows: output.links_table(
            rows, title=f"Pages like {name}", score_label="cosine", extra=("books",)
        ),
        columns=("title", "score", "books"),
        empty=f"{name}: the model knows no other page",
    )
