"""`bookvec vectors`: export book or link vectors for other tools (Parquet, NumPy, word2vec)."""

from __future__ import annotations

from pathlib import Path

import typer

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import JsonOption, ModelOption


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
    from bookvec.library import analysis

    result = analysis.export_vectors(out, model=model, links=links, raw=raw, format=format)
    for warning in result.warnings:
        output.warn(warning)
    if json_:
        output.emit_json(result.to_dict())
        return
    where = ", ".join(result.files)
    extra = f" ({result.upserted:,} upserted)" if result.upserted else ""
    kind = "normalised" if result.normalised else "raw"
    output.log(
        f"wrote {result.rows:,} {kind} {result.what[:-1]} vectors{extra} ({result.dim}-d, "
        f"{result.format}) to {where}"
    )
