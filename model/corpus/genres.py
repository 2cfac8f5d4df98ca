"""Canonical genre names from the free-text ``genre`` field of Wikipedia's book infobox.

``canonical_genres("Historical novel, < br / > German novel")`` -> ``["historical fiction",
"german"]``. The steps, in order, so that the result is predictable:

1. strip wiki markup: HTML comments, ``<ref>`` notes, templates ``{{...}}``, links
   (``[[a|b]]`` -> b), other tags, parenthesised remarks, then stray ``<`` ``>`` ``{`` ``}``;
2. split on ``,`` ``/`` ``;`` ``<br>`` (every spelling), ``[`` ``]``, and a trailing
   " short stories" becomes a genre of its own ("Fantasy, Horror short stories" -> fantasy,
   horror, short stories);
3. each part: lowercase, typographic apostrophes to ``'``, whitespace collapsed, edge
   punctuation dropped; one ``_ALIASES`` lookup, else a trailing " novel(s)", " novella(s)",
   " book(s)" or " literature" is dropped and ``_ALIASES`` looked up again;
4. a part " and " / " & " splits only when every side is a genre in ``KNOWN_GENRES``
   ("Fantasy and Science fiction" splits, "Sword and sorcery" does not);
5. empty parts and placeholders ("none", "various") are dropped, duplicates removed, first
   occurrence wins.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A variant (lowercase, suffix already dropped or not) -> its canonical name.
_ALIASES: dict[str, str] = {
    "sci-fi": "science fiction",
    "scifi": "science fiction",
    "science-fiction": "science fiction",
    "sf": "science fiction",
    "fantasy fiction": "fantasy",
    "horror fiction": "horror",
    "non fiction": "non-fiction",
    "nonfiction": "non-fiction",
    "non-fiction": "non-fiction",
    "young-adult": "young adult",
    "young adult fiction": "young adult",
    "young-adult fiction": "young adult",
    "young adult's": "young adult",
    "ya": "young adult",
    "historical": "historical fiction",
    "historical novel": "historical fiction",
    "crime fiction": "crime",
    "mystery fiction": "mystery",
    "detective": "detective fiction",
    "thriller fiction": "thriller",
    "children's fiction": "children's",
    "children's story": "children's",
    "children": "children's",
    "childrens": "children's",
    "juvenile": "children's",
    "juvenile fiction": "children's",
    "children's picture": "picture book",
    "picture": "picture book",
    "graphic": "graphic novel",
    "comic": "comic book",
    "novels": "novel",
    "novellas": "novella",
    "humor": "humour",
    "fairy tales": "fairy tale",
    "role-playing games": "role-playing game",
    "swords and sorcery": "sword and sorcery",
    "swords & sorcery": "sword and sorcery",
    "sword & sorcery": "sword and sorcery",
    "short story": "short stories",
    "short story collection": "short stories",
    "reference work": "reference",
    "autobiographical": "autobiography",
    "essay": "essays",
    "poem": "poetry",
    "poems": "poetry",
    "travel": "travel literature",
    "travelogue": "travel literature",
    "erotic fiction": "erotica",
    "spy fiction": "spy",
    "war fiction": "war",
    "adventure fiction": "adventure",
    "romance fiction": "romance",
    "gothic fiction": "gothic",
    "political fiction": "political",
    "western fiction": "western",
    "dystopian fiction": "dystopian",
    "dystopia": "dystopian",
}

# Names kept whole although they end in a dropped suffix.
_KEEP_WHOLE = {"graphic novel", "picture book", "comic book", "travel literature", "novel"}

# Canonical genres an " and " / " & " may separate (see step 4 of the module docstring).
KNOWN_GENRES: frozenset[str] = frozenset(
    {
        "adventure", "alternate history", "autobiography", "biography", "children's", "comedy",
        "crime", "cyberpunk", "detective fiction", "drama", "dystopian", "epic fantasy",
        "erotica", "essays", "fairy tale", "fantasy", "fiction", "gothic", "graphic novel",
        "hard science fiction", "high fantasy", "historical fiction", "history", "horror",
        "humour", "literary fiction", "memoir", "mystery", "mythology", "non-fiction", "novel",
        "novella", "paranormal romance", "philosophy", "picture book", "poetry", "political",
        "psychology", "reference", "religion", "romance", "satire", "science", "science fantasy",
        "science fiction", "short stories", "space opera", "speculative fiction", "spy",
        "steampunk", "supernatural fiction", "suspense", "sword and sorcery", "thriller",
        "travel literature", "urban fantasy", "war", "western", "young adult",
    }
)  # fmt: skip

_PLACEHOLDERS = {"", "none", "n/a", "na", "various", "unknown", "-", "—", "?"}

_COMMENT = re.compile(r"<\s*!--.*?--\s*>|<\s*!--.*$", re.S)
_REF = re.compile(r"<\s*ref\b[^>]*?/\s*>|<\s*ref\b[^>]*>.*?<\s*/\s*ref\s*>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_PIPED_LINK = re.compile(r"\[\[[^\[\]|]*\|([^\[\]]*)\]\]")
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_BR = re.compile(r"<\s*br\s*/?\s*>", re.I)
_TAG = re.compile(r"<\s*/?\s*[a-z][^<>]*>", re.I)
_PARENS = re.compile(r"\([^()]*\)")
_SPACE = re.compile(r"\s+")
_MARKUP = re.compile(r"[<>{}\[\]&\n\u00a0]")
# What markup leaves behind that no genre name has: an unclosed or empty tag ("<>", "<3"), a
# lone brace. Spaces, so that "a<b" stays two words.
_DEBRIS = re.compile(r"[<>{}]")


def strip_markup(text: str, *, br: str = ", ") -> str:
    """Wiki/HTML markup out of an infobox value; ``<br>`` (any spelling) becomes ``br``.

    Comments, ``<ref>`` notes and ``{{templates}}`` are removed with their content,
    ``[[a|b]]`` becomes ``b``, ``[[a]]`` becomes ``a``, other tags are dropped, whitespace
    is collapsed within lines and empty lines dropped. Shared with ``bookvec.model.corpus.read``
    for authors, countries, publishers.
    """
    if not _MARKUP.search(text):  # the common case: plain text
        return " ".join(text.split())
    text = _COMMENT.sub(" ", text)
    text = _REF.sub(" ", text)
    while True:
        stripped = _TEMPLATE.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = _PIPED_LINK.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _BR.sub(br, text)
    text = _TAG.sub(" ", text)
    text = text.replace("&nbsp;", " ").replace("\u00a0", " ")
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_SPLIT = re.compile(r"[,/;\[\]\n]")
_SUFFIX = re.compile(r"\s+(?:novels?|novellas?|books?|literature)$")
_SHORT_STORIES = re.compile(r"^(.+?)\s+(short stor(?:y|ies)(?: collections?)?)$")
_AND = re.compile(r"\s+(?:and|&)\s+")


def _normalise(part: str) -> str:
    part = part.lower().replace("\u2019", "'").replace("`", "'")
    part = _SPACE.sub(" ", part).strip(" .:!-–—*'\"")
    return part


def _canonical_one(part: str) -> str:
    """One already-split part -> its canonical name (possibly empty)."""
    part = _normalise(part)
    if part in _ALIASES:
        return _ALIASES[part]
    if part in _KEEP_WHOLE:
        return part
    part = _SUFFIX.sub("", part)
    return _ALIASES.get(part, part)


def _expand(part: str) -> list[str]:
    """A part -> one or more canonical names (steps 3 and 4)."""
    part = _normalise(part)
    match = _SHORT_STORIES.match(part)
    if match:
        return [*_expand(match.group(1)), "short stories"]
    whole = _canonical_one(part)
    sides = _AND.split(part)
    if len(sides) > 1:
        names = [_canonical_one(side) for side in sides]
        if all(name in KNOWN_GENRES for name in names):
            return names
    return [whole]


def canonical_genres(raw: str | None) -> list[str]:
    """The canonical genre names in an infobox ``genre`` value, in order, de-duplicated."""
    if not raw or not isinstance(raw, str):
        return []
    return list(_canonical_genres(raw))


@lru_cache(maxsize=1 << 16)  # the same few thousand strings recur across a corpus
def _canonical_genres(raw: str) -> tuple[str, ...]:
    # one Unicode form, so that a genre typed decomposed (or with a ligature) is the same genre
    text = strip_markup(unicodedata.normalize("NFKC", raw), br=",")
    text = _DEBRIS.sub(" ", _PARENS.sub(" ", text))
    out: list[str] = []
    for part in _SPLIT.split(text):
        for name in _expand(part):
            if name not in _PLACEHOLDERS and name not in out and any(c.isalnum() for c in name):
                out.append(name)
    return tuple(out)
