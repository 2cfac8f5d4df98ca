"""Title resolution: what a person types -> the title bookvec knows.

Tiers, first match wins:

1. the title exactly as typed;
2. ignoring case, accents and punctuation ("war AND peace!" -> "War and Peace");
3. also ignoring a trailing qualifier and a leading article ("jaws" -> "Jaws (novel)",
   "fellowship of the ring" -> "The Fellowship of the Ring").

A tier that matches several titles raises ``AmbiguousTitleError`` listing them; no match raises
``TitleNotFoundError`` with fuzzy suggestions (rapidfuzz). ``exact=True`` keeps tier 1 only.
Used for books and for links (``what="link"``).

``TitleIndex`` builds the loose keys once, so resolving many titles (``score --pairs``) costs a
dict lookup each; ``resolve`` is the one-off form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError

_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")
_ARTICLE = re.compile(r"^(the|a|an) ")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
MAX_CANDIDATES = 10


def loose_key(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title."""
    if title.isascii():  # the same result: NFKD leaves ASCII alone, casefold is lower for it
        return _NON_WORD.sub(" ", title.lower()).strip()
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text.casefold()).strip()


def base_key(title: str) -> str:
    """The loose key without a trailing qualifier or a leading article:
    "The Hobbit (novel)" -> "hobbit"."""
    return _ARTICLE.sub("", loose_key(_QUALIFIER.sub("", title)))


def suggest(
    query: str, titles: Iterable[str], limit: int = 5, *, keys: list[str] | None = None
) -> list[str]:
    """The known titles closest to ``query``, best first (rapidfuzz).

    Compared on base keys (no case, punctuation, qualifier or article): the QRatio edit
    similarity, or 90 when the query's words appear whole inside a title ("allingham" ->
    "margery allingham"). Kept: 60 or more, and within 15 of the best, so a clear match does
    not come with a tail of unrelated titles. ``keys``: the titles' base keys, if known.
    """
    from rapidfuzz import fuzz, process

    titles = list(titles)
    keys = keys if keys is not None else [base_key(t) for t in titles]
    key = base_key(query) or loose_key(query)
    if not key:
        return []
    # below 60 nothing is kept (the floor), so rapidfuzz may skip what cannot reach it
    found = process.extract(key, keys, scorer=fuzz.QRatio, limit=limit * 4, score_cutoff=60)
    scores: dict[int, float] = {i: score for _, score, i in found}
    for i in _holding_words(key, keys):
        scores[i] = max(scores.get(i, 0.0), 90.0)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], len(titles[item[0]]), item[0]))
    if not ranked:
        return []
    floor = max(60.0, ranked[0][1] - 15.0)
    return [titles[i] for i, score in ranked if score >= floor][:limit]


def _holding_words(key: str, keys: list[str]) -> list[int]:
    """The indices of the keys other than ``key`` that hold its words whole (`` key `` inside
    `` other ``), found by str.find over the keys joined (one per line, space-padded) rather
    than one Python test per key: 370k keys in a few ms."""
    padded = f" {key} "
    joined = " " + " \n ".join(keys) + " "
    if "\n" in key or joined.count("\n") != max(len(keys) - 1, 0):  # a key with a line break
        return [i for i, other in enumerate(keys) if padded in f" {other} " and other != key]
    found: list[int] = []
    line, start = 0, 0
    at = joined.find(padded)
    while at >= 0:
        line += joined.count("\n", start, at)
        if keys[line] != key:
            found.append(line)
        start = joined.find("\n", at)
        if start < 0:
            break
        at = joined.find(padded, start)
    return found


def _group(titles: Iterable[str], key) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for title in titles:
        groups.setdefault(key(title), []).append(title)
    return groups


class TitleIndex:
    """Known titles with their loose keys precomputed; ``resolve`` as in the module doc."""

    def __init__(self, titles: Iterable[str], *, what: str = "book") -> None:
        self.titles = list(titles)
        self.what = what
        self._known = set(self.titles)
        self._loose: dict[str, list[str]] | None = None
        self._base: dict[str, list[str]] | None = None
        self._keys: list[str] | None = None

    def __contains__(self, title: object) -> bool:
        return title in self._known

    def __len__(self) -> int:
        return len(self.titles)

    def resolve(self, query: str, *, exact: bool = False) -> str:
        if query in self._known:
            return query
        if not exact:
            if self._loose is None:
                self._loose = _group(self.titles, loose_key)
                self._base = _group(self.titles, base_key)
            for groups, key in ((self._loose, loose_key(query)), (self._base, base_key(query))):
                same = sorted(groups.get(key, ()))
                if len(same) == 1:
                    return same[0]
                if len(same) > 1:
                    raise AmbiguousTitleError(query, same[:MAX_CANDIDATES], what=self.what)
        if self._keys is None:
            self._keys = [base_key(t) for t in self.titles]
        raise TitleNotFoundError(
            query, suggest(query, self.titles, keys=self._keys), what=self.what
        )


def resolve(query: str, titles: Iterable[str], *, exact: bool = False, what: str = "book") -> str:
    """Return the known title ``query`` means, or raise with candidates or suggestions."""
    return TitleIndex(titles, what=what).resolve(query, exact=exact)
