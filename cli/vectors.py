"""`bookvec vectors`: export book or link vectors for other tools (Parquet, NumPy, word2vec)."""

from __future__ import annotations

from pathlib import Path

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption, open_model


@app.command()
def vectors(
    out: Path = typer.Argument(
        ..., help="Output file: .parquet, .npy (+ OUT.index.tsv), .txt/.w2v/.vec (word2vec)."
    ),
    links: bool = typer.Option(False, "--links/--books", help="Export link vectors, not books."),
    raw: bool = typer.Option(
        False,
        "--raw/--normalised",
        help="Vectors before L2 normalisation (only if the model stores them).",
    ),
    format: str | None = typer.Option(
        None, "--format", "-f", help="parquet, npy or word2vec (default: by OUT's extension)."
    ),
    model: ModelOption = None,
    json_: JsonOption = False,
) -> None:
    """Write the model's vectors with their titles and metadata to OUT.

    word2vec tokens are titles with "%" and whitespace percent-encoded (a space is %20);
    urllib.parse.unquote(token) gives the title back.

    Example: bookvec vectors books.w2v   (then gensim's KeyedVectors.load_word2vec_format)
    """
    from bookvec.model.analysis import vectors_io

    fmt = vectors_io.format_for(out, format)
    bundle = open_model(model)
    table = vectors_io.bundle_table(bundle, links=links, raw=raw)
    upserted = 0
    if not links and not raw:  # upserted books have folded-in (unit) vectors only
        from bookvec.library.catalogue import with_upserted

        table, upserted, note = with_upserted(table, bundle)
        if note:
            output.warn(f"upserted books not exported: {note}")
    files = vectors_io.write(table, out, fmt)
    n, dim = table.vectors.shape
    what = "link" if links else "book"
    kind = "raw" if raw else "normalised"
    summary = {
        "files": [str(path) for path in files],
        "format": fmt,
        "what": f"{what}s",
        "rows": n,
        "upserted": upserted,
        "dim": dim,
        "normalised": not raw,
        "model": bundle.model_id,
    }
    if json_:
        output.emit_json(summary)
        return
    where = ", ".join(summary["files"])
    extra = f" ({upserted:,} upserted)" if upserted else ""
    output.log(f"wrote {n:,} {kind} {what} vectors{extra} ({dim}-d, {fmt}) to {where}")
