"""`bookvec data ...`: get a corpus — the real one, or a synthetic one shaped like it."""

from __future__ import annotations

from pathlib import Path

import typer

from bookvec import settings
from bookvec.cli import output
from bookvec.cli.app import BookvecGroup, app
from bookvec.cli.common import JsonOption

data_app = typer.Typer(cls=BookvecGroup, help="Get a corpus to train on.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def fetch(
    url: str | None = typer.Option(None, "--url", help="Download from another address."),
    json_: JsonOption = False,
) -> None:
    """Download the full Wikipedia book corpus (37,020 books, 59 MB), resuming a partial one.

    The file is checked against its known size and sha256 before it is kept.

    Example: bookvec data fetch
    """
    from bookvec.model.corpus import fetch as fetching

    if url:
        path = fetching.fetch(
            url,
            settings.data_dir() / fetching.CORPUS_FILENAME,
            size=fetching.CORPUS_SIZE,
            sha256=fetching.CORPUS_SHA256,
            progress=not output.is_quiet(),
        )
    else:
        path = fetching.fetch_corpus(settings.data_dir(), progress=not output.is_quiet())
    if json_:
        output.emit_json({"path": str(path), "bytes": path.stat().st_size})
    else:
        output.stdout.print(str(path), markup=False)


@data_app.command("synth")
def synth(
    out: Path | None = typer.Argument(None, help="Output file (.ndjson or .ndjson.gz)."),
    books: int = typer.Option(37020, "--books", "-n", min=10, help="How many books."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same file)."),
    json_: JsonOption = False,
) -> None:
    """Write a synthetic corpus shaped like Wikipedia's books, with planted genres and authors.

    Example: bookvec data synth --books 5000 synthetic.ndjson
    """
    from bookvec.model.corpus.synth import synthesize

    path = out or settings.data_dir() / f"synthetic-{books}-seed{seed}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = synthesize(path, n_books=books, seed=seed)
    if json_:
        output.emit_json({"path": str(path), "books": stats.n_books})
    else:
        output.stdout.print(str(path), markup=False)
