"""A raw book's payload: canonical genres, authors split into names, country, language,
publisher and year, cleaned from the infobox strings (``book_payload``)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from bookvec.model.corpus.genres import canonical_genres, strip_markup

if TYPE_CHECKING:
    from bookvec.model.corpus.read import RawBook


_PARENS = re.compile(r"\([^()]*\)")
_YEAR = re.compile(r"(?<!\d)(1\d{3}|20\d{2})(?!\d)")
_YEAR_FIELDS = ("pub_date", "release_date", "published", "first_published")
_COUNTRIES = {
    "us": "United States", "u.s.": "United States", "usa": "United States",
    "u.s.a.": "United States", "united states of america": "United States",
    "u.s": "United States", "uk": "United Kingdom", "u.k.": "United Kingdom",
}  # fmt: skip
# Author lists: groups split on <br>, ";", "&", " with "; inside a group on "," then " and ".
_GROUP_SPLIT = re.compile(r"\n|[;/]|\s*&\s*|\s+with\s+", re.I)
_ET_AL = re.compile(r",?\s+et\.? al\.?$", re.I)
_AND_SPLIT = re.compile(r"\s+and\s+", re.I)
_ROLE_PREFIX = re.compile(
    r"^(?:(?:edited|compiled|completed|translated|illustrated|written|selected|introduced"
    r"|foreword|preface|introduction|based (?:up)?on (?:characters|a story|the novel))\s+by"
    r"|general editor:?|editors?:|eds?\.|and|by)\s+",
    re.I,
)
_ROLE_ONLY = re.compile(
    r"^(?:eds?\.?|editors?|editor-in-chief|foreword|preface|introduction|illustrator"
    r"|translator|compiler|m\.?d\.?|ph\.?d\.?)$",
    re.I,
)
_NAME_SUFFIX = re.compile(r"^(?:jr|sr)\.?$|^i{2,3}$|^iv$", re.I)
_NOT_NAMES = {"others", "et al", "et al.", "divers hands", "various authors"}


def _clean_text(raw: str | None) -> str:
    """An infobox value without markup or parenthesised remarks; ``<br>`` becomes a newline."""
    if not raw:
        return ""
    text = _PARENS.sub(" ", strip_markup(raw, br="\n")).replace('"', " ")
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()


@lru_cache(maxsize=1 << 16)  # countries, languages, publishers recur across a corpus
def _first_value(raw: str | None, separators: str = "\n") -> str | None:
    """The first entry of a cleaned value, split on ``separators`` (a regex character set)."""
    for part in re.split(f"[{separators}]", _clean_text(raw)):
        part = part.strip(" .:,")
        if part:
            return part
    return None


def _split_commas(group: str) -> list[str]:
    """``a, b, Jr., c`` -> names; ``Surname, Given`` pairs are turned round."""
    parts = [p.strip() for p in group.split(",") if p.strip()]
    merged: list[str] = []
    for part in parts:
        if _NAME_SUFFIX.match(part) and merged:
            merged[-1] += f", {part}"
        elif not _ROLE_ONLY.match(part):
            merged.append(part)
    names: list[str] = []
    i = 0
    while i < len(merged):
        part = merged[i]
        nxt = merged[i + 1] if i + 1 < len(merged) else None
        inverted = (
            nxt is not None
            and " " not in part
            and "." not in part
            and not _ROLE_PREFIX.match(nxt)
            and len(nxt.split()) <= 2
        )
        names.append(f"{nxt} {part}" if inverted else part)
        i += 2 if inverted else 1
    return names


def _split_and(name: str) -> list[str]:
    """``A and B`` -> two names; ``Arkady and Boris Strugatsky`` shares the surname."""
    sides = [s for s in _AND_SPLIT.split(name) if s]
    if len(sides) == 2 and " " not in sides[0] and len(sides[1].split()) >= 2:
        return [f"{sides[0]} {sides[1].split()[-1]}", sides[1]]
    return sides


def split_authors(raw: str | None) -> list[str]:
    """The people in an infobox ``author`` value, in order, without markup or roles.

    Separators: ``<br>``, ``;``, ``/``, ``&``, `` with ``, ``,`` and `` and ``. Not split: ``Jr.``,
    ``Sr.``, ``III`` (kept with the name) and roles (``ed.``, ``editors``, ``M.D.``: dropped);
    a one-word part before a comma is a surname (``Stiglitz, Joseph`` -> ``Joseph Stiglitz``).
    Role prefixes (``edited by``, ``foreword by`` ...) are removed, "others" is dropped.
    """
    return list(_split_authors(raw)) if raw else []


@lru_cache(maxsize=1 << 16)
def _split_authors(raw: str) -> tuple[str, ...]:
    out: list[str] = []
    for group in _GROUP_SPLIT.split(_clean_text(raw).replace("[", " ").replace("]", " ")):
        for part in _split_commas(group):
            for name in _split_and(_ROLE_PREFIX.sub("", part.strip())):
                name = _ET_AL.sub("", _ROLE_PREFIX.sub("", name.strip())).strip(" .:,'")
                if name.endswith(("Jr", "Sr")):
                    name += "."
                if name and name.lower() not in _NOT_NAMES and name not in out:
                    out.append(name)
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _year(raw: str | None) -> int | None:
    match = _YEAR.search(_clean_text(raw))
    return int(match.group(1)) if match else None


def book_payload(book: RawBook) -> dict:
    """The searchable metadata of a book: title, canonical genres, author(s), country,
    language, publisher, year (the first year 1000-2099 in pub_date, release_date,
    published or first_published)."""
    box = book.infobox
    if book.genres is not None:
        genres: list[str] = []
        for raw in book.genres:
            genres.extend(g for g in canonical_genres(raw) if g not in genres)
    else:
        genres = canonical_genres(box.get("genre"))
    authors = split_authors(box.get("author") or box.get("authors"))
    country = _first_value(box.get("country"), "\n,;/")
    year = next((y for y in map(_year, map(box.get, _YEAR_FIELDS)) if y is not None), None)
    return {
        "title": book.title,
        "genres": genres,
        "author": authors[0] if authors else None,
        "authors": authors,
        "country": _COUNTRIES.get(country.lower(), country) if country else None,
        "language": _first_value(box.get("language"), "\n,;/"),
        "publisher": _first_value(box.get("publisher")),
        "year": year,
    }
