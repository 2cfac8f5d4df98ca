"""`bookvec explain A B`: why two books are close, in terms of the pages their articles link to."""

from __future__ import annotations

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption
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
    from bookvec.library.model import SameBookError, load

    try:
        result = load(model).explain(a, b, topn=limit, exact=exact, log=output.log)
    except SameBookError as exc:
        raise typer.BadParameter(exc.message) from None  # the same book twice: a usage error
    if json_:
        output.emit_json(result.to_dict())
        return
    names = {c.link for c in (*result.shared_links, *result.pulling_links)}
    in_a, in_b = result.a_links, result.b_links
    marks = {
        n: "both" if n in in_a and n in in_b else "A" if n in in_a else "B" if n in in_b else ""
        for n in names
    }
    rows = [c.to_dict() for c in result.pulling_links]
    both, either = len(in_a & in_b), len(in_a | in_b)
    console = output.stdout
    console.print(
        f"A: {printable(result.a)}{' (upserted)' if result.a_upserted else ''}\n"
        f"B: {printable(result.b)}{' (upserted)' if result.b_upserted else ''}\n"
        f"cosine similarity {result.similarity:.3f}; "
        f"they share {both} of the {either} pages either article links to",
        markup=False,
    )
    console.print(
        _table(rows, title="Pages pulling them together most", marks=marks, cosines=result.cosines)
    )
    shown = {row["link"] for row in rows}
    rest = [c for c in result.shared_links if c.link not in shown]
    if rest:
        listed = ", ".join(f"{printable(c.link)} ({c.contribution:+.3f})" for c in rest)
        console.print(f"Also linked from both: {listed}", markup=False)
