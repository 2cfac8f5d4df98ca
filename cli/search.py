"""`bookvec search`: books like a given book, nearest first, with payload filters."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import (
    ApiKeyOption,
    CollectionOption,
    JsonOption,
    UrlOption,
    open_store,
    read_manifest_quietly,
)


def genre_filter_values(values: list[str]) -> tuple[str, ...]:
    """What a person types as a genre -> the canonical genre names stored in payloads."""
    from bookvec.model.genres import canonical_genres

    canonical: list[str] = []
    for value in values:
        for genre in canonical_genres(value) or [value.strip().lower()]:
            if genre not in canonical:
                canonical.append(genre)
    return tuple(canonical)


@app.command()
def search(
    title: str = typer.Argument(..., help="A book title (loose spelling is resolved)."),
    genre: list[str] = typer.Option(
        [], "--genre", "-g", help="Only books of this genre (repeat: any of them)."
    ),
    author: str | None = typer.Option(None, "--author", help="Only books by this author."),
    country: str | None = typer.Option(None, "--country", help="Only books from this country."),
    year_from: int | None = typer.Option(None, "--year-from", help="Published in or after."),
    year_to: int | None = typer.Option(None, "--year-to", help="Published in or before."),
    limit: int = typer.Option(10, "--limit", "-k", min=1, max=1000, help="How many books."),
    exact: bool = typer.Option(False, "--exact", help="Take the title as typed, no matching."),
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Books most like TITLE (cosine of the learned vectors), the book itself excluded.

    Example: bookvec search "Jaws" --genre thriller --limit 5
    """
    from bookvec.cli.actions import resolve_store_title
    from bookvec.indexer import BookFilter

    book_filter = BookFilter(
        genres_any=genre_filter_values(genre),
        author=author,
        country=country,
        year_from=year_from,
        year_to=year_to,
    )
    store = open_store(url, api_key, collection, read_only=True)
    try:
        resolved = resolve_store_title(store, title, exact=exact)
        hits = store.search_like(resolved, limit=limit, filter=book_filter)
        info = store.info()
    finally:
        store.close()
    manifest = read_manifest_quietly(info.model_version if info else None)
    synthetic = bool(manifest and manifest.get("corpus", {}).get("synthetic"))
    records = [output.hit_record(hit.title, hit.score, hit.payload) for hit in hits]
    if synthetic:
        for record in records:
            record["corpus"] = "synthetic"
    if json_:
        output.emit_json(records)
        return
    label = " [synthetic corpus]" if synthetic else ""
    caption = f"Books like {resolved}{label}"
    if book_filter.genres_any:
        caption += f" (genre: {' or '.join(book_filter.genres_any)})"
    if not records:
        output.log(f"{caption}: no book matches the filters")
        return
    output.stdout.print(output.books_table(records, title=caption))
