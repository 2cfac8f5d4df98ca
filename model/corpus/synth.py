"""Synthetic Wikipedia-shaped book corpora with a planted answer: ``synthesize``, ``SynthStats``.

``synthesize(path)`` writes ``n_books`` records in the exact 6-field ndjson format of the real
corpus (gzip when ``path`` ends in ``.gz``) plus ``<path>.truth.parquet`` (title,
planted_genre, second_genre, author). Same seed, same bytes. At the default size the default
cleaning gives about the real corpus's figures: 37,020 books, ~41.8k kept links, ~773k pairs,
~300k distinct raw links (most linked by fewer than 4 books).

What is planted:
- 30 real genres with Zipf-like sizes; each book one primary genre, 15% a second one;
- authors with 1-15 books, all in one genre;
- a book's links: mostly from its genre's topical pool (Zipf popularity inside the pool, the
  genre's own page first), some from its author's pool (the author's page, a series page,
  characters), popular pages of every genre ("United States", "English language", publishers,
  a long tail), one-off links, categories ("Category:1974 novels"), the uninformative links at
  the real rates (Paperback, Hardcover, Wikipedia:WikiProject Books ...), case variants
  ("Science fiction" / "science fiction"), ``#anchor`` links and duplicates;
- infoboxes with messy genre strings ("Science fiction novel", "Fantasy, Horror",
  "Historical novel, < br / > German novel"; 24% none), authors (some with "< br / >"
  co-authors), country, language, publisher, pub_date / release_date;
- ~20 ``Wikipedia:`` records that are not books (scaled with ``n_books``).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from bookvec.model.corpus.synth_words import (
    COUNTRIES,
    FIRST_NAMES,
    GENRES,
    GLOBAL_LINKS,
    LANGUAGES,
    MEDIA_LINKS,
    PUBLISHERS,
    _date,
    _genre_strings,
    _name,
    _names,
    _Spelling,
    _title,
    _word,
    below,
)
from bookvec.outfiles import output_file

# Calibration to the full corpus's figures after the default cleaning (see module docstring).
TOPICAL_PER_BOOK = 13.3  # mean draws from the genre pools
POOL_PER_BOOK = 1.45  # topical pool size per book of the genre
POOL_ZIPF = 0.9  # popularity exponent inside a topical pool
SECOND_GENRE_RATE = 0.15
SECOND_GENRE_SHARE = 0.35  # share of a two-genre book's topical links from its second genre
AUTHOR_POOL_PER_BOOK = 1.3
TAIL_PER_BOOK = 2.5  # cross-genre long tail of popular-ish pages
TAIL_POOL_PER_BOOK = 0.12
TAIL_ZIPF = 0.6
GENRE_PAGE_RATE = 0.55
RARE_PER_BOOK = 6.5  # one-off links (most linked by 1-3 books)
RARE_POOL_PER_BOOK = 14.0
DUPLICATE_RATE = 0.12  # occurrences repeated within the same book
FULL_BOOKS = 37020
FULL_WIKIPEDIA_PAGES = 20
WRITE_CHUNK = 20_000  # books built and written at a time


@dataclass
class SynthStats:
    """What ``synthesize`` wrote and the planted truth, book by book (file order of books)."""

    path: Path
    truth_path: Path
    n_books: int
    n_records: int  # books + Wikipedia: pages
    n_link_occurrences: int
    genres: tuple[str, ...]  # canonical genre names; genre_index points into it
    genre_index: np.ndarray  # int (n_books,): planted primary genre
    second_genre_index: np.ndarray  # int (n_books,): -1 when none
    author_index: np.ndarray  # int (n_books,)
    authors: list[str]  # author names; author_index points into it
    titles: list[str]
    seconds: float

    @property
    def planted_genre(self) -> list[str]:
        return [self.genres[g] for g in self.genre_index]

    @property
    def author(self) -> list[str]:
        return [self.authors[a] for a in self.author_index]


def _zipf_cdf(size: int, exponent: float, offset: float = 1.0) -> np.ndarray:
    weights = 1.0 / (np.arange(size) + offset) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw(rng: np.random.Generator, cdf: np.ndarray, count: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(count)), len(cdf) - 1)


class _Links:
    """The link names by id (given lists and runs of made-up ``_name``s, each written out only
    when a chunk of records needs it) and the occurrences (book, link id, block)."""

    def __init__(self) -> None:
        self.given: list[str] = []
        self._starts: list[int] = []  # the first id of each run of names
        self._sources: list[int] = []  # its first index into ``given``, or -1 - its first number
        self.count = 0
        self.parts: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._next_synthetic = 1  # _name(0) would be "Baba Ba"

    def _run(self, count: int, source: int) -> int:
        start = self.count
        if count:
            self._starts.append(start)
            self._sources.append(source)
            self.count += count
        return start

    def add_names(self, names: list[str]) -> int:
        source = len(self.given)
        self.given.extend(names)
        return self._run(len(names), source)

    def add_synthetic(self, count: int) -> int:
        start = self._next_synthetic
        self._next_synthetic += count
        return self._run(count, -1 - start)

    def names(self, ids: np.ndarray) -> list[str]:
        """The names of link ``ids``, in their order."""
        distinct, inverse = np.unique(ids, return_inverse=True)
        starts, sources = np.asarray(self._starts), np.asarray(self._sources)
        run = np.searchsorted(starts, distinct, side="right") - 1
        source, offset = sources[run], distinct - starts[run]
        given = source >= 0
        out = np.empty(len(distinct), dtype=object)
        out[given] = [self.given[i] for i in (source[given] + offset[given]).tolist()]
        out[~given] = _names(-1 - source[~given] + offset[~given])
        return out[inverse].tolist()

    def occur(self, books: np.ndarray, ids: np.ndarray, block: int) -> None:
        self.parts.append((books.astype(np.int32), ids.astype(np.int32), block))


def synthesize(
    path: str | Path,
    *,
    n_books: int = FULL_BOOKS,
    seed: int = 0,
    n_wikipedia_pages: int | None = None,
) -> SynthStats:
    """Write a synthetic corpus of ``n_books`` books to ``path`` (and its truth sidecar)."""
    if n_books < 1:
        raise ValueError("n_books must be >= 1")
    start = time.perf_counter()
    path = Path(path)
    rng = np.random.default_rng(seed)
    n = n_books
    n_genres = len(GENRES)
    books = np.arange(n)

    genre, second, author = _plant(rng, n)
    n_authors = int(author.max()) + 1
    author_size = np.bincount(author, minlength=n_authors)
    author_names = [
        f"{FIRST_NAMES[a % len(FIRST_NAMES)]} {_word(a + 71, 3)}" for a in range(n_authors)
    ]
    length_factor = rng.lognormal(0.0, 0.6, n)
    length_factor /= length_factor.mean()

    links = _Links()
    # Block 0: infobox-ish links (author, publisher, media); 1: body; 2: categories.
    author_page = links.add_names(author_names)
    links.occur(books, author_page + author, 0)
    keep = rng.random(n) < 0.15
    links.occur(books[keep], author_page + author[keep], 1)  # the author named again in the text
    for name, rate in MEDIA_LINKS:
        chosen = books[rng.random(n) < rate]
        links.occur(chosen, np.full(len(chosen), links.add_names([name])), 0)

    publisher_weights = 1.0 / np.arange(1, len(PUBLISHERS) + 1) ** 0.6
    publisher = rng.choice(len(PUBLISHERS), n, p=publisher_weights / publisher_weights.sum())
    first_publisher = links.add_names(list(PUBLISHERS))
    chosen = books[rng.random(n) < 0.3]
    links.occur(chosen, first_publisher + publisher[chosen], 0)

    country_p = np.array([c[2] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), n, p=country_p / country_p.sum())
    language_names = ["English"] + sorted(set(LANGUAGES.values()))
    language = np.array(
        [language_names.index(LANGUAGES.get(COUNTRIES[c][0], "English")) for c in country]
    )
    first_language = links.add_names([f"{lang} language" for lang in language_names])
    chosen = books[rng.random(n) < 0.13]
    links.occur(chosen, first_language + language[chosen], 0)
    first_country = links.add_names([c[0] for c in COUNTRIES])
    chosen = books[rng.random(n) < 0.05]
    links.occur(chosen, first_country + country[chosen], 1)
    for name, rate in GLOBAL_LINKS:
        chosen = books[rng.random(n) < rate]
        links.occur(chosen, np.full(len(chosen), links.add_names([name])), 1)

    # Topical links: the genre's own page, then draws from each genre's pool.
    genre_page = links.add_names([page for _, page, _ in GENRES])
    chosen = books[rng.random(n) < GENRE_PAGE_RATE]
    links.occur(chosen, genre_page + genre[chosen], 0)
    chosen = books[(second >= 0) & (rng.random(n) < GENRE_PAGE_RATE)]
    links.occur(chosen, genre_page + second[chosen], 0)
    draws = np.maximum(rng.poisson(TOPICAL_PER_BOOK * length_factor), 1)
    occ_book = np.repeat(books, draws)
    use_second = (second[occ_book] >= 0) & (rng.random(len(occ_book)) < SECOND_GENRE_SHARE)
    occ_genre = np.where(use_second, second[occ_book], genre[occ_book])
    occ_link = np.empty(len(occ_book), dtype=np.int64)
    books_per_genre = np.bincount(genre, minlength=n_genres)
    for g in range(n_genres):
        at = np.flatnonzero(occ_genre == g)
        pool = max(8, int(round(POOL_PER_BOOK * max(books_per_genre[g], 1))))
        occ_link[at] = links.add_synthetic(pool) + _draw(
            rng, _zipf_cdf(pool, POOL_ZIPF, 4.0), len(at)
        )
    links.occur(occ_book, occ_link, 1)

    # Author pools: a series page for authors of 3+ books, characters and places.
    with_series = np.flatnonzero(author_size >= 3)
    series_page = np.full(n_authors, -1)
    series_page[with_series] = links.add_names(
        [f"{author_names[a].split()[-1]} series" for a in with_series]
    ) + np.arange(len(with_series))
    chosen = books[(series_page[author] >= 0) & (rng.random(n) < 0.6)]
    links.occur(chosen, series_page[author[chosen]], 1)
    pool_size = 1 + author_size  # an item is linked by at most author_size books
    pool_start = links.add_synthetic(int(pool_size.sum())) + np.concatenate(
        ([0], np.cumsum(pool_size)[:-1])
    )
    draws = rng.poisson(AUTHOR_POOL_PER_BOOK * length_factor)
    occ_book = np.repeat(books, draws)
    offset = np.floor(rng.random(len(occ_book)) * pool_size[author[occ_book]]).astype(np.int64)
    links.occur(occ_book, pool_start[author[occ_book]] + offset, 1)

    # Cross-genre tail and one-off links.
    tail_size = max(20, int(TAIL_POOL_PER_BOOK * n))
    tail = links.add_synthetic(tail_size)
    draws = rng.poisson(TAIL_PER_BOOK * length_factor)
    tail_cdf = _zipf_cdf(tail_size, TAIL_ZIPF)
    links.occur(np.repeat(books, draws), tail + _draw(rng, tail_cdf, int(draws.sum())), 1)
    draws = rng.poisson(RARE_PER_BOOK * length_factor)
    rare_ids = rng.integers(0, int(RARE_POOL_PER_BOOK * n), int(draws.sum()))
    used, rare_ids = np.unique(rare_ids, return_inverse=True)
    links.occur(np.repeat(books, draws), links.add_synthetic(len(used)) + rare_ids, 1)

    # Categories.
    year = np.clip(2018 - np.floor(rng.exponential(28.0, n)).astype(np.int64), 1800, 2018)
    first_year = links.add_names([f"Category:{y} novels" for y in range(1800, 2019)])
    chosen = books[rng.random(n) < 0.75]
    links.occur(chosen, first_year + year[chosen] - 1800, 2)
    first_cg = links.add_names(
        [f"Category:{adj} {g} novels" for _, adj, _ in COUNTRIES for g, _, _ in GENRES]
    )
    chosen = books[rng.random(n) < 0.45]
    links.occur(chosen, first_cg + country[chosen] * n_genres + genre[chosen], 2)
    chosen = books[rng.random(n) < 0.04]
    links.occur(
        chosen, np.full(len(chosen), links.add_names(["Category:English-language novels"])), 2
    )
    by_author = links.add_names([f"Category:Novels by {name}" for name in author_names])
    chosen = books[(author_size[author] >= 2) & (rng.random(n) < 0.35)]
    links.occur(chosen, by_author + author[chosen], 2)

    # All occurrences, with duplicates, case variants and anchors; ordered per book. Arrays of
    # all occurrences are built and dropped one at a time, their uniform draws a slice at a time
    # (the same numbers as one draw).
    parts = links.parts
    links.parts = []
    occ_block = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    occ_book = np.concatenate([p[0] for p in parts])
    occ_link = np.concatenate([p[1] for p in parts])
    del parts
    dup = np.flatnonzero((occ_block == 1) & below(rng, len(occ_book), DUPLICATE_RATE))
    # (book, block) as one int32 key: the sort's order is the same as by book, then block.
    key = np.concatenate([occ_book, occ_book[dup]]) * 3
    del occ_book
    key += np.concatenate([occ_block, occ_block[dup]])
    del occ_block
    occ_link = np.concatenate([occ_link, occ_link[dup]])
    del dup
    order = np.lexsort((rng.random(len(key)), key))
    key = key[order]
    occ_link = occ_link[order]
    del order
    is_genre_page = (occ_link >= genre_page) & (occ_link < genre_page + n_genres)
    spelling = _Spelling(rng, is_genre_page, key % 3 == 1)
    del is_genre_page
    occ_book = key // 3
    del key
    bounds = np.searchsorted(occ_book, np.arange(n + 1))
    n_occurrences = len(occ_book)
    del occ_book

    # Records, written a chunk of books at a time (memory flat in n_books).
    titles = [_title(i, rng_value) for i, rng_value in enumerate(rng.random(n).tolist())]
    genre_strings = _genre_strings(rng, genre, second)
    coauthor = rng.random(n)
    pub_style = rng.integers(0, 4, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    timestamp = rng.integers(1_262_304_000, 1_535_760_000, n)  # 2010-01-01 .. 2018-09-01
    length = np.maximum(200, rng.lognormal(8.3, 0.9, n)).astype(np.int64)
    n_external = rng.poisson(3 * length_factor)

    def record(i: int, names: list[str]) -> list:
        box = {"name": titles[i]}
        writer = author_names[author[i]]
        if coauthor[i] < 0.04:
            other = author_names[author[(i + 1) % n]]
            writer += " < br / > " + other if coauthor[i] < 0.03 else " and " + other
        box["author"] = writer
        box["country"] = COUNTRIES[country[i]][0]
        box["language"] = language_names[language[i]]
        if genre_strings[i] is not None:
            box["genre"] = genre_strings[i]
        box["publisher"] = PUBLISHERS[publisher[i]].replace(" (publisher)", "")
        box["release_date" if coauthor[i] > 0.25 else "pub_date"] = _date(
            int(year[i]), pub_style[i], month[i], day[i]
        )
        box["media_type"] = "Print (Hardback & Paperback)"
        box["pages"] = str(100 + (length[i] // 37) % 700)
        external = [
            f"http://www.{_word(i * 7 + k).lower()}.com/books/{i}"
            for k in range(int(n_external[i]))
        ]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(timestamp[i])))
        return [titles[i], box, names, external, stamp, int(length[i])]

    # ``Wikipedia:`` pages: page k goes before book ``at[k]``; pages before the same book in
    # descending k (the order repeated inserts into the list of books gave).
    n_wiki = n_wikipedia_pages
    if n_wiki is None:
        n_wiki = max(1, round(FULL_WIKIPEDIA_PAGES * n / FULL_BOOKS))
    wiki_before: dict[int, list[int]] = {}
    for k, at in enumerate(np.sort(rng.integers(0, n + 1, n_wiki))[::-1].tolist()):
        wiki_before.setdefault(at, []).insert(0, k)

    def wiki_pages(at: int) -> list[list]:
        return [
            [
                f"Wikipedia:WikiProject Books/{_name(k + 999_000)}",
                {},
                ["Wikipedia:WikiProject Books", "Novel", _name(k + 998_000)],
                [],
                "2018-01-01T00:00:00Z",
                500,
            ]
            for k in wiki_before.get(at, ())
        ]

    def chunks() -> Iterator[list[list]]:
        for lo in range(0, n, WRITE_CHUNK):
            hi = min(n, lo + WRITE_CHUNK)
            names = spelling.spell(links.names, occ_link, int(bounds[lo]), int(bounds[hi]))
            base = int(bounds[lo])
            out: list[list] = []
            for i in range(lo, hi):
                out.extend(wiki_pages(i))
                out.append(record(i, names[bounds[i] - base : bounds[i + 1] - base]))
            if hi == n:
                out.extend(wiki_pages(n))
            yield out

    _write_lines(path, chunks())
    truth_path = path.with_name(path.name + ".truth.parquet")
    pl.DataFrame(
        {
            "title": titles,
            "planted_genre": [GENRES[g][0] for g in genre],
            "second_genre": [GENRES[g][0] if g >= 0 else None for g in second],
            "author": [author_names[a] for a in author],
        }
    ).write_parquet(truth_path)
    return SynthStats(
        path=path,
        truth_path=truth_path,
        n_books=n,
        n_records=n + n_wiki,
        n_link_occurrences=n_occurrences,
        genres=tuple(g for g, _, _ in GENRES),
        genre_index=genre,
        second_genre_index=second,
        author_index=author,
        authors=author_names,
        titles=titles,
        seconds=time.perf_counter() - start,
    )


def _plant(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary genre (Zipf-like sizes), second genre (-1: none) and author of each book;
    authors write 1-15 books, all in one genre."""
    n_genres = len(GENRES)
    genre_weights = 1.0 / np.arange(1, n_genres + 1) ** 0.9
    genre = rng.choice(n_genres, n, p=genre_weights / genre_weights.sum())
    has_second = rng.random(n) < SECOND_GENRE_RATE
    second = np.where(has_second, (genre + 1 + rng.integers(0, n_genres - 1, n)) % n_genres, -1)
    size_weights = 1.0 / np.arange(1, 16) ** 1.3
    author = np.empty(n, dtype=np.int64)
    n_authors = 0
    for g in range(n_genres):
        members = np.flatnonzero(genre == g)  # in random order already
        sizes = rng.choice(np.arange(1, 16), len(members), p=size_weights / size_weights.sum())
        ids = np.repeat(np.arange(len(members)), sizes)[: len(members)]
        author[members] = ids + n_authors
        if len(members):
            n_authors += int(ids[-1]) + 1
    return genre, second, author


def _write_lines(path: Path, chunks: Iterable[list[list]]) -> None:
    """One ``json.dumps`` line per record (the real corpus's exact style), gzip for ``.gz``
    with a fixed header (no time stamp, no name) so that the bytes depend on the seed only.
    Written beside ``path`` a chunk at a time, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_file(path, what="synthetic corpus") as tmp, open(tmp, "wb") as raw:
        out: BinaryIO = raw
        if path.name.endswith(".gz"):
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=4)  # type: ignore[assignment]
        with out:
            for records in chunks:
                out.write("".join(json.dumps(r) + "\n" for r in records).encode("ascii"))
