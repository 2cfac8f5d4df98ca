"""Normalised filter keys: `--author` and `--country` as forgiving as titles.

Qdrant's keyword match is exact, so each point also carries the keys of its authors and
country (`author_keys`, `country_key`: keyword-indexed, written by `index` and `upsert` on both
backends) and a filter matches the query's key against them (indexer/filters.py). The key is
`bookvec.titles.loose_key`: case, accents, Unicode normal form, punctuation and surrounding or
repeated spaces do not count ("  j.r.r. TOLKIEN " = "J. R. R. Tolkien").

Countries also fold common aliases into one name: "US", "U.S.", "USA", "United States of
America", "America" -> united states; "UK", "U.K.", "Great Britain", "Britain" -> united
kingdom. England, Scotland, Wales and Northern Ireland stay themselves: infoboxes say
"England" for many British books, and folding it into the United Kingdom would make
`--country England` impossible to ask.

The original `author`, `authors` and `country` stay in the payload as given and are what
results show. The keys are derived data: they are not part of a point's content hash.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bookvec.titles import loose_key

AUTHOR_KEYS = "author_keys"
COUNTRY_KEY = "country_key"

_COUNTRY_ALIASES = {
    "united states": ("us", "u s", "usa", "u s a", "united states of america", "america"),
    "united kingdom": (
        "uk",
        "u k",
        "great britain",
        "britain",
        "united kingdom of great britain and northern ireland",
    ),
    "soviet union": ("ussr", "u s s r", "union of soviet socialist republics"),
    "china": ("people s republic of china", "prc"),
}
_ALIAS = {alias: name for name, aliases in _COUNTRY_ALIASES.items() for alias in aliases}


@lru_cache(maxsize=1 << 16)  # the same few thousand names recur across a corpus
def text_key(value: str) -> str:
    """The loose form of an author (or any keyword) for matching."""
    return loose_key(value)


@lru_cache(maxsize=1 << 12)
def country_key(value: str) -> str:
    """The loose form of a country, with common aliases folded (see the module doc)."""
    key = loose_key(value)
    return _ALIAS.get(key, key)


def add_filter_keys(payload: dict[str, Any]) -> None:
    """Set the payload's keys from its `authors` and `country` (in place; a few strings)."""
    authors = payload.get("authors")
    if authors:
        payload[AUTHOR_KEYS] = [text_key(a) for a in authors if isinstance(a, str)]
    country = payload.get("country")
    if country and isinstance(country, str):
        payload[COUNTRY_KEY] = country_key(country)
