"""The key index keeps every title and base key packed in suggestion order, so an unknown title
reads two values, not a row per title; files without the packed values (written before) and
files changed by `update` (which packs an older file) answer the same as keying every title
does."""

import sqlite3

import pytest

from bookvec.errors import TitleNotFoundError
from bookvec.titlekeys import open_keys, write_keys
from bookvec.titles import TitleIndex

TITLES = ["Zed", "Jaws (novel)", "The Hobbit", "Ça", "!!!", "Dune (novel)", "Dune Messiah"]
MISSES = ["Jaw", "hobit", "dun", "zzz", "ca va", "messiah dune", "hobbit days"]


def message(resolve, query):
    with pytest.raises(TitleNotFoundError) as caught:
        resolve(query)
    return str(caught.value)


@pytest.mark.parametrize("ranked", [False, True])
def test_packed_suggestions_are_the_listing_ones(tmp_path, ranked):
    path = tmp_path / "keys.sqlite"
    write_keys(path, TITLES, count=len(TITLES), ranked=ranked)
    listed = TITLES if ranked else sorted(TITLES)  # a store lists its titles sorted
    with open_keys(path) as keys:
        packed = dict(keys._db.execute("SELECT name, value FROM packed"))
        assert set(packed) == {"titles", "bases"}
        for query in MISSES:
            assert message(keys.resolve, query) == message(TitleIndex(listed).resolve, query)


def test_an_update_repacks_and_a_file_without_packed_values_reads_rows(tmp_path):
    path = tmp_path / "keys.sqlite"
    write_keys(path, TITLES, count=len(TITLES))
    with open_keys(path, writable=True) as keys:
        keys.update(["Jawz (film)", "Hobbit Day"], ["Zed"], count=len(TITLES) + 1)
    now = sorted([*TITLES, "Jawz (film)", "Hobbit Day"][1:])
    with open_keys(path) as keys:
        for query in MISSES:
            assert message(keys.resolve, query) == message(TitleIndex(now).resolve, query)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE packed")  # as written before the packed values existed
    db.commit()
    db.close()
    with open_keys(path, writable=True) as keys:
        for query in MISSES:
            assert message(keys.resolve, query) == message(TitleIndex(now).resolve, query)
        keys.update(["Zed"], [], count=len(now) + 1)  # updatable, and packed from now on
        assert "Zed" in keys.titles()
        packed = dict(keys._db.execute("SELECT name, value FROM packed"))
        assert set(packed) == {"titles", "bases"}
        now = sorted([*now, "Zed"])
        for query in MISSES:
            assert message(keys.resolve, query) == message(TitleIndex(now).resolve, query)
