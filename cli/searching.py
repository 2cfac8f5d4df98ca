"""What `bookvec search` does once its command line is parsed, and a fast path to it.

`run` is the command's body (cli/search.py declares the Typer command and calls it). `fast`
parses a plain search command line itself, without importing typer, click or rich (about
0.1 s of a search's start): global `-q`/`--quiet`/`--home`, then `search` with a title and the
options spelt out in full or by their short names, each value as its own word. Anything else
(help, `--opt=value`, `-k5`, `--`, an unknown or repeated-format option, a value that starts
with `-` or does not convert, a usage error, an environment variable that sets an option,
shell completion) returns None and the Typer app parses the line as it always has, so help,
usage errors (exit 2) and their messages come from one place. What it runs and prints is the
same code as the Typer command, with the same error lines and exit codes (cli/failures.py).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bookvec import settings

MODES = ("dense", "sparse", "hybrid")


def usage_problem(
    title: str | None,
    like: list[str],
    unlike: list[str],
    link: str | None,
    mode: str | None,
    genre: list[str],
    all_genres: bool,
) -> tuple[str, str] | None:
    """(message, parameter) of a usage error (exit 2), or None: what makes a query, and what
    does not combine."""
    if link is not None and (title is not None or like or unlike):
        return "a query of its own: give it without TITLE, --like or --unlike", "'--link'"
    if link is None and title is None and not like:
        return "give a book title, --like TITLE (repeatable) or --link PAGE", "'TITLE'"
    if mode is not None and mode not in MODES:
        return "use dense, sparse or hybrid", "'--mode'"
    if all_genres and not genre:
        return "needs at least one --genre", "'--all-genres'"
    return None


def caption(positive, negative, link: str | None, filters) -> str:
    if link is not None:
        text = f"Books most likely to link to {link!r}"
    else:
        text = "Books like " + " and ".join(positive)
        if negative:
            text += ", unlike " + " and ".join(negative)
    conditions = []
    if filters["genres_any"]:
        conditions.append("genre: " + " or ".join(filters["genres_any"]))
    if filters["genres_all"]:
        conditions.append("genres: " + " and ".join(filters["genres_all"]))
    for name in ("author", "country"):
        if filters[name]:
            conditions.append(f"{name}: {filters[name]}")
    if filters["year_from"] is not None or filters["year_to"] is not None:
        conditions.append(f"years: {filters['year_from'] or ''}..{filters['year_to'] or ''}")
    return text + (f" ({'; '.join(conditions)})" if conditions else "")


def run(
    fmt: str,
    title: str | None,
    like: list[str],
    unlike: list[str],
    link: str | None,
    genre: list[str],
    all_genres: bool,
    author: str | None,
    country: str | None,
    year_from: int | None,
    year_to: int | None,
    mode: str | None,
    diverse: bool,
    limit: int,
    exact: bool,
    model: str | None,
    url: str | None,
    api_key: str | None,
    collection: str,
    *,
    exiting: bool = False,
) -> None:
    """Search and print (the arguments already checked by `usage_problem`). `exiting`: the
    process ends next, so the store's reader is abandoned, not closed (`_left_open` says
    whether its shard was: the process must then end with os._exit)."""
    global _left_open
    from bookvec.cli import output
    from bookvec.library.index import open_index

    years = None if year_from is None and year_to is None else (year_from, year_to)
    index = open_index(url=url, api_key=api_key, collection=collection, model=model)
    try:
        result = index.search(
            title,
            like=like,
            unlike=unlike,
            link=link,
            genres=() if all_genres else genre,
            genres_all=genre if all_genres else (),
            author=author,
            country=country,
            years=years,
            limit=limit,
            mode=mode,
            diverse=diverse,
            exact=exact,
        )
    finally:
        if exiting:
            _left_open = index.abandon() or _left_open
        else:
            index.close()
    mode, synthetic = result.mode, result.synthetic
    text = caption(result.positive, result.negative, result.link, result.filters)
    if mode != "dense" or diverse:
        text += f" [{mode}{', diverse' if diverse else ''}]"
    label = {"dense": "cosine", "sparse": "links"}.get(mode, "score")
    text += " [synthetic corpus]" if synthetic else ""
    output.emit_rows(
        result.records(),
        fmt,
        table=lambda rows: output.books_table(list(rows), title=text, score_label=label),
        columns=[*output.BOOK_COLUMNS, *(["corpus"] if synthetic else [])],
        empty=f"{text}: no book matches the filters",
    )


_left_open = False


# --- the fast path -----------------------------------------------------------------------------

# option word -> (parameter, kind): "one" takes a value (the last one given wins, as in
# Click), "many" a value each time (repeatable), "int" an integer, "flag" none
_OPTIONS = {
    "--like": ("like", "many"),
    "--unlike": ("unlike", "many"),
    "--link": ("link", "one"),
    "--genre": ("genre", "many"),
    "-g": ("genre", "many"),
    "--all-genres": ("all_genres", "flag"),
    "--author": ("author", "one"),
    "--country": ("country", "one"),
    "--year-from": ("year_from", "int"),
    "--year-to": ("year_to", "int"),
    "--mode": ("mode", "one"),
    "-m": ("mode", "one"),
    "--diverse": ("diverse", "flag"),
    "--limit": ("limit", "int"),
    "-k": ("limit", "int"),
    "--exact": ("exact", "flag"),
    "--model": ("model", "one"),
    "--url": ("url", "one"),
    "--api-key": ("api_key", "one"),
    "--collection": ("collection", "one"),
    "--json": ("json", "flag"),
    "--jsonl": ("jsonl", "flag"),
    "--csv": ("csv", "flag"),
}
# options Typer would fill from the environment when they are not given
_ENVVARS = {
    "model": settings.ENV_MODEL,
    "url": settings.ENV_QDRANT_URL,
    "api_key": settings.ENV_QDRANT_API_KEY,
    "collection": settings.ENV_COLLECTION,
}


def parse(argv: list[str]) -> tuple[bool, str | None, dict[str, Any]] | None:
    """(quiet, home, the arguments of `run`) for a search command line the fast path takes,
    else None (the Typer app takes it)."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None  # shell completion
    words = list(argv)
    quiet, home = False, None
    while words and words[0] != "search":
        word = words.pop(0)
        if word in ("-q", "--quiet"):
            quiet = True
        elif word == "--home" and words and not words[0].startswith("-"):
            home = words.pop(0)
        else:
            return None
    if not words:
        return None
    words.pop(0)
    args: dict[str, Any] = {
        "title": None,
        "like": [],
        "unlike": [],
        "link": None,
        "genre": [],
        "all_genres": False,
        "author": None,
        "country": None,
        "year_from": None,
        "year_to": None,
        "mode": None,
        "diverse": False,
        "limit": 10,
        "exact": False,
        "model": None,
        "url": None,
        "api_key": None,
        "collection": "books",
    }
    formats: list[str] = []
    given: set[str] = set()
    while words:
        word = words.pop(0)
        if not word.startswith("-"):
            if args["title"] is not None:
                return None  # an extra argument: a usage error
            args["title"] = word
            continue
        if word not in _OPTIONS:
            return None
        name, kind = _OPTIONS[word]
        given.add(name)
        if kind == "flag":
            if name in ("json", "jsonl", "csv"):
                if name not in formats:
                    formats.append(name)
            else:
                args[name] = True
            continue
        if not words or words[0].startswith("-"):
            return None
        value = words.pop(0)
        if kind == "many":
            args[name].append(value)
        elif kind == "int":
            if not (value.isascii() and value.isdigit()):
                return None
            args[name] = int(value)
        else:
            args[name] = value
    if any(name not in given and var in os.environ for name, var in _ENVVARS.items()):
        return None
    if len(formats) > 1 or not 1 <= args["limit"] <= 1000:
        return None
    problem = usage_problem(
        args["title"],
        args["like"],
        args["unlike"],
        args["link"],
        args["mode"],
        args["genre"],
        args["all_genres"],
    )
    if problem is not None:
        return None
    args["fmt"] = formats[0] if formats else "table"
    return quiet, home, args


def fast(argv: list[str]) -> int | None:
    """Run a search command line without the Typer app: its exit code, or None when the line
    is not one `parse` takes (nothing has been done then)."""
    parsed = parse(argv)
    if parsed is None:
        return None
    quiet, home, args = parsed
    import warnings

    from bookvec import progress
    from bookvec.cli import failures, output

    # what the app's callback does (cli/app.py)
    output.set_quiet(quiet)
    progress.install(_rich_display)
    if home:
        os.environ[settings.ENV_HOME] = home

    def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
        failures.echo_err(failures.warning_line(message))

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            run(**args, exiting=True)
        code = 0
    except BrokenPipeError:
        _pacify()  # as Click's main does: nothing more said, exit 1
        code = 1
    except (Exception, KeyboardInterrupt) as exc:
        said = failures.report(exc)
        if said is None:
            raise
        failures.echo_err(said[0])
        code = said[1]
    if _left_open:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process at once: the search left the store's shard open (see `run`); the
    streams are flushed and nothing else on this path needs tearing down (no atexit work)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _rich_display(kind: str, **fields: Any) -> Any:
    from bookvec.cli.progress import rich_display

    return rich_display(kind, **fields)


class _Pacified:
    """A stream whose flush ignores a closed pipe (Click's PacifyFlushWrapper)."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        import errno

        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _pacify() -> None:
    sys.stdout = _Pacified(sys.stdout)
    sys.stderr = _Pacified(sys.stderr)
