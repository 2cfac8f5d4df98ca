"""`bookvec quickstart`: from nothing to searches. The corpus to use (fetched, or a synthetic
one shaped like it when it cannot be), and the example searches shown at the end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bookvec.errors import DownloadError
from bookvec.library.store import Home, home_of

SYNTHETIC_BOOKS = 37020  # the full corpus's shape
FAMOUS = (
    "War and Peace",
    "The Fellowship of the Ring",
    "Jaws (novel)",
    "The Sea of Monsters",
    "Eclipse (Meyer novel)",
    "My Side of the Mountain",
)


def get_corpus(
    data: Path | None,
    *,
    no_fallback: bool,
    home: Home | None = None,
    progress: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[Path, bool]:
    """The corpus to train on and whether it is synthetic."""
    if data is not None:
        return data, False
    from bookvec.model.corpus import fetch as fetching

    home = home or home_of()
    try:
        return fetching.fetch_corpus(home.data, progress=progress), False
    except DownloadError as exc:
        if no_fallback:
            raise
        warn(f"{exc}")
        warn(
            "the real corpus cannot be fetched here: continuing on a SYNTHETIC corpus "
            "shaped like it (every result below is labelled synthetic)"
        )
    from bookvec.model.corpus.synth import synthesize

    path = home.data / f"synthetic-{SYNTHETIC_BOOKS}-seed0.ndjson"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        synthesize(tmp, n_books=SYNTHETIC_BOOKS, seed=0)
        tmp.replace(path)
        truth = Path(str(tmp) + ".truth.parquet")
        if truth.exists():
            truth.replace(Path(str(path) + ".truth.parquet"))
    return path, True


def example_titles(bundle, count: int = 3) -> list[str]:
    """Famous titles the model knows, else its books with the most links."""
    present = [title for title in FAMOUS if title in bundle.book_index]
    if len(present) < count:
        books = bundle.books.sort(["n_links", "index"], descending=[True, False])
        present += [t for t in books.get_column("title").to_list() if t not in present]
    return present[:count]


def example_searches(index, bundle, *, limit: int) -> list[tuple[str, object]]:
    """(caption, SearchResult) of the quickstart's examples: books like each example title
    (dense), then the same within its first genre."""
    examples = []
    for title in example_titles(bundle):
        found = index.search(title, limit=limit, mode="dense")
        resolved = found.positive[0]
        examples.append((f"Books like {resolved}", found))
        genres = list(index.book(resolved, exact=True).genres)[:1]
        if genres:
            only = index.search(resolved, genres=genres, limit=limit, mode="dense", exact=True)
            examples.append((f"Books like {resolved}, only {genres[0]}", only))
    return examples
