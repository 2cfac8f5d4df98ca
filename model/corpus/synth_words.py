"""The words of the synthetic corpus: real genres with their pages and infobox spellings, the
uninformative and popular pages, countries, publishers, made-up names, and how a record's
fields are spelled (messy genre strings, dates, titles). Used by ``synth.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# Calibrated to the real corpus with the rest (``synth.py``): how often a spelling varies.
CASE_RATE = 0.02  # occurrences written with the first letter's case flipped
GENRE_PAGE_CASE_RATE = 0.3
ANCHOR_RATE = 0.007
NO_GENRE_RATE = 0.24


# Canonical genre, its Wikipedia page (a link), infobox spellings ("|"-separated, commonest
# first). Every spelling must give the canonical name back through ``canonical_genres``.
_GENRE_TABLE = (
    ("science fiction", "Science fiction", "Science fiction|Science fiction novel"
     "|science fiction|Science Fiction|Science-fiction|Sci-fi|Science fiction novels"),
    ("fantasy", "Fantasy", "Fantasy|Fantasy novel|fantasy|Fantasy literature|Fantasy Novel"),
    ("non-fiction", "Non-fiction", "Non-fiction|Nonfiction|non-fiction|Non-Fiction|non fiction"),
    ("historical fiction", "Historical novel",
     "Historical novel|Historical fiction|historical fiction|Historical novels"),
    ("crime", "Crime fiction", "Crime novel|Crime fiction|Crime|crime fiction"),
    ("children's", "Children's literature", "Children's novel|Children's literature"
     "|Children's book|Children's|Children's fiction"),
    ("mystery", "Mystery fiction", "Mystery novel|Mystery|mystery"),
    ("young adult", "Young adult fiction", "Young adult novel|Young adult fiction"
     "|young-adult novel|Young adult|Young adult literature"),
    ("horror", "Horror fiction", "Horror novel|Horror|Horror fiction|horror"),
    ("thriller", "Thriller (genre)", "Thriller|Thriller novel|thriller"),
    ("romance", "Romance novel", "Romance novel|Romance|romance"),
    ("biography", "Biography", "Biography|biography"),
    ("poetry", "Poetry", "Poetry|poetry|Poems"),
    ("adventure", "Adventure fiction", "Adventure|Adventure novel|Adventure fiction"),
    ("picture book", "Picture book", "Children's picture book|Picture book|picture book"),
    ("short stories", "Short story", "Short stories|Short story collection|short stories"),
    ("detective fiction", "Detective fiction", "Detective fiction|Detective novel|Detective"),
    ("alternate history", "Alternate history", "Alternate history|Alternate history novel"),
    ("memoir", "Memoir", "Memoir|memoir"),
    ("war", "War novel", "War novel|War"),
    ("spy", "Spy fiction", "Spy novel|Spy fiction"),
    ("dystopian", "Dystopia", "Dystopian novel|Dystopian fiction"),
    ("humour", "Humour", "Humour|Humor"),
    ("western", "Western fiction", "Western novel|Western"),
    ("gothic", "Gothic fiction", "Gothic novel|Gothic fiction"),
    ("satire", "Satire", "Satire|satire"),
    ("philosophy", "Philosophy", "Philosophy|philosophy"),
    ("role-playing game", "Role-playing game", "Role-playing game|Role-playing games"),
    ("literary fiction", "Literary fiction", "Literary fiction|literary fiction"),
    ("fairy tale", "Fairy tale", "Fairy tale|Fairy tales"),
)  # fmt: skip
GENRES: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (name, page, tuple(spellings.split("|"))) for name, page, spellings in _GENRE_TABLE
)

# Uninformative links and their share of books in the real corpus.
MEDIA_LINKS = (
    ("Paperback", 0.236), ("Hardcover", 0.234), ("Wikipedia:WikiProject Books", 0.163),
    ("Wikipedia:WikiProject Novels", 0.162), ("Hardback", 0.035), ("E-book", 0.008),
)  # fmt: skip
# Popular pages of every genre and the share of books linking to them.
GLOBAL_LINKS = (
    ("United States", 0.065), ("Novel", 0.078), ("The New York Times", 0.072),
    ("United Kingdom", 0.045), ("Publishers Weekly", 0.04), ("Kirkus Reviews", 0.035),
    ("The Guardian", 0.03), ("The New York Times Best Seller list", 0.03), ("Audiobook", 0.03),
    ("Film adaptation", 0.025), ("Library Journal", 0.02), ("Booklist", 0.02),
    ("The Washington Post", 0.02), ("Los Angeles Times", 0.015), ("Time (magazine)", 0.012),
    ("New York City", 0.02), ("London", 0.025), ("World War II", 0.02), ("BBC", 0.015),
    ("Author", 0.012), ("Protagonist", 0.015), ("Fiction", 0.02), ("Sequel", 0.02),
    ("Trilogy", 0.012), ("Book series", 0.01), ("Literary award", 0.008),
)  # fmt: skip
COUNTRIES = (
    ("United States", "American", 0.55), ("United Kingdom", "British", 0.22),
    ("Canada", "Canadian", 0.04), ("Australia", "Australian", 0.035), ("France", "French", 0.03),
    ("Germany", "German", 0.025), ("Japan", "Japanese", 0.02), ("Russia", "Russian", 0.015),
    ("Ireland", "Irish", 0.015), ("India", "Indian", 0.015), ("Sweden", "Swedish", 0.01),
    ("Italy", "Italian", 0.01), ("Spain", "Spanish", 0.01), ("New Zealand", "New Zealand", 0.005),
)  # fmt: skip
LANGUAGES = {"France": "French", "Germany": "German", "Japan": "Japanese", "Russia": "Russian",
             "Sweden": "Swedish", "Italy": "Italian", "Spain": "Spanish"}  # fmt: skip
PUBLISHERS = (
    "HarperCollins", "Random House", "Penguin Books", "Doubleday (publisher)", "Simon & Schuster",
    "Tor Books", "Ace Books", "Bantam Books", "Ballantine Books", "Macmillan Publishers",
    "Faber and Faber", "Houghton Mifflin", "Viking Press", "Scholastic Corporation",
    "Little, Brown and Company", "Alfred A. Knopf", "Hodder & Stoughton", "Gollancz",
    "DAW Books", "Del Rey Books", "Orbit Books", "St. Martin's Press", "Bloomsbury Publishing",
    "Oxford University Press", "Jonathan Cape", "Chatto & Windus", "Heinemann (publisher)",
    "Putnam Publishing Group", "Scribner (publisher)", "Farrar, Straus and Giroux",
)  # fmt: skip
FIRST_NAMES = (
    "John", "Mary", "James", "Elizabeth", "Robert", "Patricia", "Michael", "Jennifer", "William",
    "Linda", "David", "Barbara", "Richard", "Susan", "Joseph", "Margaret", "Thomas", "Dorothy",
    "Charles", "Sarah", "Peter", "Anne", "George", "Helen", "Edward", "Ruth", "Henry", "Alice",
    "Arthur", "Emma", "Frank", "Clara", "Paul", "Laura", "Mark", "Grace", "Daniel", "Ursula",
)  # fmt: skip
SECTIONS = ("Plot", "History", "Reception", "Characters", "Background", "Early life", "Works")
QUALIFIERS = ("German novel", "Political novel", "Epistolary novel", "Psychological novel")
SEPARATORS = (", ", ", ", ", ", " / ", ", < br / > ", "; ", " < br > ")

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # CV only: names parse uniquely


def _word(number: int, min_syllables: int = 2) -> str:
    """A pronounceable word, distinct for every number (base-70 syllables)."""
    out = []
    while number or len(out) < min_syllables:
        number, digit = divmod(number, len(_SYLLABLES))
        out.append(_SYLLABLES[digit])
    return "".join(reversed(out)).capitalize()


def _name(number: int) -> str:
    """Two words, distinct for every number below 2**32 (scrambled so that neighbouring
    numbers, e.g. one pool's pages, do not share a word)."""
    number = (number * 0x9E3779B1) & 0xFFFFFFFF  # an odd multiplier: a bijection
    return f"{_word(number % 4900)} {_word(number // 4900, 1)}"


_SLICE = 1 << 22  # uniform draws taken at a time


def _slices(rng: np.random.Generator, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """``rng.random(n)`` a slice at a time (a double per draw: the same numbers, in order)."""
    for lo in range(0, n, _SLICE):
        yield lo, rng.random(min(_SLICE, n - lo))


def below(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """``rng.random(n) < rate``, drawn a slice at a time (no float64 array of ``n``)."""
    out = np.empty(n, dtype=bool)
    for lo, u in _slices(rng, n):
        out[lo : lo + len(u)] = u < rate
    return out


_FIRST_WORDS: list[str] = []


def _names(numbers: np.ndarray) -> list[str]:
    """``_name`` of each of ``numbers`` (the hash vectorised; ``number % 4900`` from a table)."""
    if not _FIRST_WORDS:
        _FIRST_WORDS.extend(_word(k) for k in range(4900))
    hashed = (numbers.astype(np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    rest, first = np.divmod(hashed, np.uint64(4900))
    pairs = zip(first.tolist(), rest.tolist(), strict=True)
    return [f"{_FIRST_WORDS[a]} {_word(b, 1)}" for a, b in pairs]


class _Spelling:
    """How each occurrence is written: its name, sometimes with the first letter's case
    flipped (often for genre pages), sometimes with a ``#section`` anchor (body links only;
    a tenth of those are bare ``#section`` links to the article itself). The random draws are
    taken at once (so the bytes depend on the seed only), the strings a slice at a time (so
    a large corpus never holds all its occurrences as Python strings)."""

    def __init__(
        self, rng: np.random.Generator, is_genre_page: np.ndarray, in_body: np.ndarray
    ) -> None:
        n = len(is_genre_page)
        self.flip = np.empty(n, dtype=bool)
        self.keep_name = np.empty(n, dtype=bool)
        for lo, u in _slices(rng, n):
            hi = lo + len(u)
            self.flip[lo:hi] = u < np.where(is_genre_page[lo:hi], GENRE_PAGE_CASE_RATE, CASE_RATE)
            self.keep_name[lo:hi] = u > 0.1
        self.anchor = in_body & below(rng, n, ANCHOR_RATE)
        self.section = rng.integers(0, len(SECTIONS), n).astype(np.int8)

    def spell(
        self, names: Callable[[np.ndarray], list[str]], occ_link: np.ndarray, lo: int, hi: int
    ) -> list[str]:
        """The written forms of occurrences ``lo:hi`` (``occ_link``: all occurrences' ids;
        ``names``: the names of some ids)."""
        out = names(occ_link[lo:hi])
        for i in np.flatnonzero(self.flip[lo:hi]).tolist():
            s = out[i]
            out[i] = (s[0].lower() if s[0].isupper() else s[0].upper()) + s[1:]
        for i in np.flatnonzero(self.anchor[lo:hi]).tolist():
            name = out[i] if self.keep_name[lo + i] else ""
            out[i] = name + "#" + SECTIONS[self.section[lo + i]]
        return out


def _title(i: int, u: float) -> str:
    words = f"{_word(i // 70 + 343, 2)} {_word(i % 70, 1)}"
    if u < 0.3:
        return f"The {words}"
    if u < 0.45:
        return f"{words} (novel)"
    return words


def _genre_strings(
    rng: np.random.Generator, genre: np.ndarray, second: np.ndarray
) -> list[str | None]:
    n = len(genre)
    none = rng.random(n) < NO_GENRE_RATE
    u = rng.random((n, 4))
    out: list[str | None] = []
    for i in range(n):
        if none[i]:
            out.append(None)
            continue
        variants = GENRES[genre[i]][2]
        text = variants[min(int(u[i, 0] ** 2.5 * len(variants)), len(variants) - 1)]
        if second[i] >= 0 and u[i, 1] < 0.8:
            other = GENRES[second[i]][2]
            sep = SEPARATORS[int(u[i, 2] * len(SEPARATORS))]
            text += sep + other[int(u[i, 3] * len(other))]
        elif u[i, 1] < 0.015:
            text += ", < br / > " + QUALIFIERS[int(u[i, 2] * len(QUALIFIERS))]
        elif u[i, 1] < 0.04:
            text += ", Novel"
        out.append(text)
    return out


def _date(year: int, style: int, month: int, day: int) -> str:
    months = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")  # fmt: skip
    if style == 0:
        return str(year)
    if style == 1:
        return f"{months[month - 1]} {year}"
    if style == 2:
        return f"{year}-{month:02d}-{day:02d}"
    return f"{months[month - 1]} {day}, {year}"
