"""Title resolution: what a person types -> the title bookvec knows.

Exact first; then ignoring case, punctuation and a trailing "(novel)"-style qualifier; then fuzzy
suggestions (rapidfuzz). ``exact=True`` turns the help off. Used for books and for links.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError

_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def loose_key(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text.casefold()).strip()


def base_key(title: str) -> str:
    """The loose key without a trailing qualifier: "Jaws (novel)" -> "jaws"."""
    return loose_key(_QUALIFIER.sub("", title))


def suggest(query: str, titles: Iterable[str], limit: int = 5) -> list[str]:
    from rapidfuzz import fuzz, process, utils

    matches = process.extract(
        query, list(titles), scorer=fuzz.WRatio, processor=utils.default_process, limit=limit
    )
    return [title for title, score, _ in matches if score >= 60]


def resolve(query: str, titles: Iterable[str], *, exact: bool = False, what: str = "book") -> str:
    """Return the known title ``query`` means, or raise with candidates or suggestions."""
    titles = titles if isinstance(titles, (list, tuple, set, frozenset)) else list(titles)
    known = titles if isinstance(titles, (set, frozenset)) else set(titles)
    if query in known:
        return query
    if exact:
        raise TitleNotFoundError(query, suggest(query, titles), what=what)
    key = loose_key(query)
    same = sorted(t for t in titles if loose_key(t) == key)
    if len(same) == 1:
        return same[0]
    if len(same) > 1:
        raise AmbiguousTitleError(query, same[:10])
    qualified = sorted(t for t in titles if base_key(t) == key)
    if len(qualified) == 1:
        return qualified[0]
    if len(qualified) > 1:
        raise AmbiguousTitleError(query, qualified[:10])
    raise TitleNotFoundError(query, suggest(query, titles), what=what)
