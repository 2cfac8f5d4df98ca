"""CleaningConfig, clean_link, prepare (the original notebook's cleaning), save/load."""

from __future__ import annotations

import io
import json
import sys
from collections import Counter, OrderedDict
from itertools import chain

import numpy as np
import pytest

from bookvec.errors import ConfigError, DataNotFoundError, InputError
from bookvec.model.corpus.prepare import CleaningConfig, PreparedCorpus, clean_link, prepare
from bookvec.outfiles import sha256_file

P15_BOOKS, P15_LINKS, P15_PAIRS = 1411, 1163, 13302  # checked against original_notebook()


def write_corpus(tmp_path, books: list[tuple[str, list[str]]], name: str = "c.ndjson"):
    path = tmp_path / name
    path.write_text("".join(json.dumps([t, {}, links, [], None, 0]) + "\n" for t, links in books))
    return path


TINY = [
    ("A", ["Science fiction", "science fiction", "X", "Paperback", "X#Plot", "Y"]),
    ("Wikipedia:WikiProject Books", ["X", "Y", "Z"]),
    ("B", ["X", "Y", "Y", "Z", "Hardcover"]),
    ("wikipedia:lower case page", ["X"]),
    ("C", ["x", "Z", "#Plot", "Science Fiction"]),
]


# ---------------------------------------------------------------------------- config


def test_config_validation():
    assert CleaningConfig(remove=["a", "b"]).remove == ("a", "b")
    with pytest.raises(ConfigError, match="min_books"):
        CleaningConfig(min_books=0)
    with pytest.raises(ConfigError, match="min_books"):
        CleaningConfig(min_books=2.5)
    with pytest.raises(ConfigError, match="upper-case"):
        CleaningConfig(remove=("Paperback",))
    assert CleaningConfig(lowercase=False, remove=("Paperback",)).remove == ("Paperback",)
    with pytest.raises(ConfigError, match="list of link names"):
        CleaningConfig(remove="paperback")
    with pytest.raises(ConfigError, match="true or false"):
        CleaningConfig(strip_anchors="yes")


def test_config_dict_round_trip():
    config = CleaningConfig(min_books=2, strip_anchors=True, remove=("a",))
    data = json.loads(json.dumps(config.to_dict()))
    assert CleaningConfig.from_dict(data) == config
    assert CleaningConfig(**data) == config  # lists become tuples
    with pytest.raises(ConfigError, match="unknown cleaning options: colour"):
        CleaningConfig.from_dict({"colour": 1})


def test_clean_link():
    default = CleaningConfig()
    assert clean_link("Science Fiction", default) == "science fiction"
    assert clean_link("Paperback", default) is None
    assert clean_link("Wikipedia:WikiProject Novels", default) is None
    assert clean_link("X#Plot", default) == "x#plot"
    anchors = CleaningConfig(strip_anchors=True)
    assert clean_link("X #Plot", anchors) == "x"
    assert clean_link("#Plot", anchors) is None
    assert clean_link("Paperback#Sales", anchors) is None
    cased = CleaningConfig(lowercase=False, remove=("Paperback",))
    assert clean_link("Science Fiction", cased) == "Science Fiction"
    assert clean_link("paperback", cased) == "paperback"


# ---------------------------------------------------------------------------- prepare


def test_default_cleaning_on_a_tiny_corpus(tmp_path):
    path = write_corpus(tmp_path, TINY)
    prepared = prepare(path, CleaningConfig(min_books=2))
    assert prepared.books["title"].to_list() == ["A", "B", "C"]
    assert prepared.books["index"].to_list() == [0, 1, 2]
    # "science fiction" counts 3: A holds two spellings (counted twice, as the original did);
    # ties in count are ordered by name
    assert prepared.links.rows() == [
        (0, "science fiction", 3),
        (1, "x", 3),
        (2, "y", 2),
        (3, "z", 2),
    ]
    names = prepared.links["name"].to_list()
    pairs = [(b, names[link]) for b, link in prepared.pairs.tolist()]
    assert pairs == [
        (0, "science fiction"), (0, "science fiction"), (0, "x"), (0, "y"),
        (1, "x"), (1, "y"), (1, "y"), (1, "z"),
        (2, "x"), (2, "z"), (2, "science fiction"),
    ]  # fmt: skip
    assert prepared.books["n_links"].to_list() == [4, 4, 3]
    assert prepared.pairs.dtype == np.int32 and prepared.pairs.shape == (11, 2)
    assert prepared.source_sha256 == sha256_file(path)


def test_other_knobs(tmp_path):
    path = write_corpus(tmp_path, TINY)
    config = CleaningConfig(min_books=2, strip_anchors=True, keep_duplicate_pairs=False)
    prepared = prepare(path, config)
    assert prepared.links.rows() == [
        (0, "x", 4),
        (1, "science fiction", 3),
        (2, "y", 2),
        (3, "z", 2),
    ]
    # "X" and "X#Plot" are two spellings in A: x counts 4; pairs de-duplicated per book
    expected = [[0, 1], [0, 0], [0, 2], [1, 0], [1, 2], [1, 3], [2, 0], [2, 3], [2, 1]]
    assert prepared.pairs.tolist() == expected

    keep_all = CleaningConfig(min_books=1, drop_wikipedia_pages=False, lowercase=False, remove=())
    prepared = prepare(path, keep_all)
    assert prepared.books.height == 5
    assert prepared.links.row(0) == (0, "X", 4) and "Paperback" in prepared.links["name"]


def test_nothing_kept_or_no_books(tmp_path):
    with pytest.raises(InputError, match="no link is linked by 4"):
        prepare(write_corpus(tmp_path, TINY))
    with pytest.raises(InputError, match="no books"):
        prepare(write_corpus(tmp_path, [("Wikipedia:About", ["x"])]))


def test_stdin_and_other_formats(tmp_path, monkeypatch):
    path = write_corpus(tmp_path, TINY)
    expected = prepare(path, CleaningConfig(min_books=2))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    from_stdin = prepare("-", CleaningConfig(min_books=2))
    assert np.array_equal(from_stdin.pairs, expected.pairs)
    assert from_stdin.source_sha256 == expected.source_sha256

    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps({"title": t, "links": ls}) + "\n" for t, ls in TINY))
    assert np.array_equal(prepare(jsonl, CleaningConfig(min_books=2)).pairs, expected.pairs)


def test_save_load_round_trip(tmp_path):
    prepared = prepare(write_corpus(tmp_path, TINY), CleaningConfig(min_books=2, remove=("q",)))
    prepared.save(tmp_path / "out")
    loaded = PreparedCorpus.load(tmp_path / "out")
    assert loaded.books.equals(prepared.books) and loaded.links.equals(prepared.links)
    assert loaded.books.schema == prepared.books.schema
    assert np.array_equal(loaded.pairs, prepared.pairs) and loaded.pairs.dtype == np.int32
    assert loaded.cleaning == prepared.cleaning
    assert loaded.source_sha256 == prepared.source_sha256
    with pytest.raises(DataNotFoundError, match="pairs.parquet"):
        (tmp_path / "out" / "pairs.parquet").unlink()
        PreparedCorpus.load(tmp_path / "out")


# ---------------------------------------------------------------------------- real sample


def original_notebook(path):
    """The original notebook's cleaning, written out as it was (slow, list-based), except
    that kept links are returned with counts so that ties can be compared as sets."""
    books = [json.loads(line) for line in open(path, encoding="utf-8")]
    books = [book for book in books if "Wikipedia:" not in book[0]]
    book_index = {book[0]: idx for idx, book in enumerate(books)}
    unique_wikilinks = list(chain(*[list(set(book[2])) for book in books]))
    wikilinks = [link.lower() for link in unique_wikilinks]
    wikilink_counts = OrderedDict(
        sorted(Counter(wikilinks).items(), key=lambda x: x[1], reverse=True)
    )
    to_remove = [
        "hardcover", "paperback", "hardback", "e-book",
        "wikipedia:wikiproject books", "wikipedia:wikiproject novels",
    ]  # fmt: skip
    for t in to_remove:
        wikilinks.remove(t)
        _ = wikilink_counts.pop(t)
    links = [t[0] for t in wikilink_counts.items() if t[1] >= 4]
    pairs = []
    for book in books:
        pairs.extend(
            (book_index[book[0]], link.lower()) for link in book[2] if link.lower() in links
        )
    return books, [(name, wikilink_counts[name]) for name in links], pairs


def test_real_sample_matches_the_original(p15_path):
    prepared = prepare(p15_path)
    books, links, pairs = original_notebook(p15_path)
    assert (prepared.books.height, prepared.links.height, len(prepared.pairs)) == (
        P15_BOOKS,
        P15_LINKS,
        P15_PAIRS,
    )
    assert prepared.books["title"].to_list() == [book[0] for book in books]
    mine = prepared.links.select("name", "count").rows()
    assert sorted(mine) == sorted(links)  # same links, same counts
    assert mine == sorted(links, key=lambda item: (-item[1], item[0]))  # ties by name
    names = prepared.links["name"].to_list()
    assert [(b, names[link]) for b, link in prepared.pairs.tolist()] == pairs
    assert mine[:5] == [
        ("science fiction", 271), ("arkham house", 167), ("english language", 165),
        ("novel", 123), ("united states", 120),
    ]  # fmt: skip
    assert prepared.books["n_links"].sum() == P15_PAIRS
    assert prepared.books.filter(prepared.books["title"] == "The Wealthy Barber").row(0)[2:5] == (
        ["personal finance"],
        "David Chilton",
        ["David Chilton"],
    )
