"""`bookvec explain A B`: why two books are close, in terms of the pages their articles link to."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption, open_model
from bookvec.safetext import printable


def _table(rows: list[dict], *, title: str, marks: dict[str, str], cosines: dict[str, tuple]):
    from rich.table import Table

    table = Table(title=output.cell(title), title_justify="left")
    table.add_column("page", style="bold")
    table.add_column("contribution", justify="right")
    table.add_column("cos A", justify="right", style="dim")
    table.add_column("cos B", justify="right", style="dim")
    table.add_column("linked from", justify="center")
    for row in rows:
        cos_a, cos_b = cosines[row["link"]]
        table.add_row(
            output.cell(row["link"]),
            f"{row['contribution']:+.3f}",
            f"{cos_a:+.2f}",
            f"{cos_b:+.2f}",
            marks.get(row["link"], ""),
        )
    return table


@app.command()
def explain(
    a: str = typer.Argument(..., metavar="A", help="A book title (loose spelling is resolved)."),
    b: str = typer.Argument(..., metavar="B", help="Another book title."),
    limit: int = typer.Option(10, "--limit", "-k", min=1, max=1000, help="Pages per list."),
    exact: bool = typer.Option(False, "--exact", help="Take titles as typed, no matching."),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Why books A and B are close: the pages both articles link to, and the pages that pull
    the two vectors together most, each with its contribution.

    similarity is the cosine of the two book vectors. A page l contributes (a·l)(b·l), the
    product of each book's cosine with the page's vector: high when both books lean towards
    it, negative when one leans away. (Were the page vectors orthonormal, these terms would sum
    to the similarity; there are more pages than dimensions, so they rank rather than split
    it.) Pages considered: every page either article links to.

    --json gives {"a", "b", "similarity", "shared_links": [{"link", "contribution"}, ...],
    "pulling_links": [...]}.

    Example: bookvec explain "The Fashion in Shrouds" "More Work for the Undertaker"
    """
    import numpy as np

    from bookvec.errors import TitleNotFoundError
    from bookvec.library.actions import explain_sides, observed_links, resolve_bundle_book

    bundle = open_model(model)
    from bookvec.model import bundle as files

    bundle.verify((files.BOOK_VECTORS, files.LINK_VECTORS))
    books = np.asarray(bundle.book_vectors, dtype=np.float32)

    def side(query: str) -> tuple:
        """(title, unit vector, link indices, upserted) of a trained or an upserted book."""
        try:
            i = resolve_bundle_book(bundle, query, exact=exact)
        except TitleNotFoundError:
            from bookvec.library.catalogue import find_upserted, record_links

            record = find_upserted(query, exact=exact)  # a book added by upsert
            if record is None:
                raise
            from bookvec.model.linalg import normalise

            vector = normalise(record.vector)
            return record.title, vector, np.asarray(record_links(record, bundle)), True
        return bundle.book_titles[i], books[i], observed_links(bundle, i, log=output.log), False

    sa, sb = side(a), side(b)
    if sa[0] == sb[0]:
        raise typer.BadParameter(f"A and B are the same book ({sa[0]!r})")
    result = explain_sides(bundle, sa[:3], sb[:3], limit=limit)
    for key, s in (("a", sa), ("b", sb)):
        if s[3]:
            result[f"{key}_upserted"] = True
    if json_:
        output.emit_json(result)
        return
    names = {row["link"] for key in ("shared_links", "pulling_links") for row in result[key]}
    in_a = {bundle.link_names[k] for k in sa[2]}
    in_b = {bundle.link_names[k] for k in sb[2]}
    marks = {
        n: "both" if n in in_a and n in in_b else "A" if n in in_a else "B" if n in in_b else ""
        for n in names
    }
    vectors = np.asarray(bundle.link_vectors, dtype=np.float32)
    cosines = {
        name: tuple(float(vectors[bundle.link_index[name]] @ s[1]) for s in (sa, sb))
        for name in names
    }
    links_a, links_b = sa[2], sb[2]
    both = len(np.intersect1d(links_a, links_b))
    either = len(np.union1d(links_a, links_b))
    console = output.stdout
    console.print(
        f"A: {printable(result['a'])}{' (upserted)' if sa[3] else ''}\n"
        f"B: {printable(result['b'])}{' (upserted)' if sb[3] else ''}\n"
        f"cosine similarity {result['similarity']:.3f}; "
        f"they share {both} of the {either} pages either article links to",
        markup=False,
    )
    console.print(
        _table(
            result["pulling_links"],
            title="Pages pulling them together most",
            marks=marks,
            cosines=cosines,
        )
    )
    shown = {row["link"] for row in result["pulling_links"]}
    rest = [row for row in result["shared_links"] if row["link"] not in shown]
    if rest:
        listed = ", ".join(f"{printable(row['link'])} ({row['contribution']:+.3f})" for row in rest)
        console.print(f"Also linked from both: {listed}", markup=False)
