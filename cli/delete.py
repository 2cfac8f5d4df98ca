"""`bookvec delete`: remove books from the index (the model is unchanged)."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, JsonOption, UrlOption
from bookvec.safetext import printable


@app.command()
def delete(
    titles: list[str] = typer.Argument(..., help="Titles to remove (loose spelling is resolved)."),
    exact: bool = typer.Option(False, "--exact", help="Take the titles as typed, no matching."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show which books would be removed; remove nothing."
    ),
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Remove books from the index. Titles are resolved as `bookvec search` resolves them;
    an unknown or ambiguous title stops the command before anything is removed.

    Example: bookvec delete "Jaws (novel)" "The Deep (novel)"
    """
    from bookvec.cli.common import refuse_if_served
    from bookvec.library.index import open_index

    if not dry_run:
        refuse_if_served(url, collection)
    with open_index(url=url, api_key=api_key, collection=collection) as index:
        result = index.delete(titles, exact=exact, dry_run=dry_run)
    if json_:
        output.emit_json(result.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    deleted = result.deleted
    output.stdout.print(
        f"{verb} {deleted} book{'s' if deleted != 1 else ''}: "
        + "; ".join(printable(title) for title in result.titles)
        + f" ({result.remaining:,} left)",
        markup=False,
    )
