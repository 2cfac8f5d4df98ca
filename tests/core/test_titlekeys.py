"""The stored title-key index answers exactly as listing and keying every title does, and stays
in step with the Edge store through index, upsert (in place and on a copy) and delete."""

import numpy as np
import pytest

from bookvec.errors import AmbiguousTitleError, TitleNotFoundError
from bookvec.indexer import BookPoint, open_store
from bookvec.library.actions import resolve_store_title, resolve_store_titles
from bookvec.settings import QdrantSettings
from bookvec.titlekeys import FILE
from bookvec.titles import TitleIndex

TITLES = [
    "Jaws (novel)",
    "War and Peace",
    "Dune (novel)",
    "Dune (film)",
    "The Fellowship of the Ring",
    "Les Misérables",
    "Ça",
    "Émile, or On Education",
    "Allingham",
]
QUERIES = [
    "War and Peace",
    "war AND peace!",
    "les miserables",
    "jaws",
    "Dune",
    "fellowship of the ring",
    "Fellowship of the Rings",
    "ca",
    "emile or on education",
    "zzz",
    "",
    "dune (novel)",
]


def points(titles, seed=0):
    rng = np.random.default_rng(seed)
    for title in titles:
        payload = {"genres": ["novel"], "author": "Someone", "year": 1900}
        yield BookPoint(title=title, vector=rng.standard_normal(8), payload=payload)


def outcome(resolve, query, exact=False):
    try:
        return ("ok", resolve(query, exact=exact))
    except (AmbiguousTitleError, TitleNotFoundError) as exc:
        return (type(exc).__name__, str(exc))


@pytest.fixture
def store(tmp_path):
    store = open_store(QdrantSettings(), path=tmp_path)
    store.replace_all(points(TITLES), vector_size=8, model_version="m1")
    yield store
    store.close()


def assert_same_as_listing(store):
    keys = store.title_keys()
    assert keys is not None, "the store should have a current title-key index"
    try:
        listed = TitleIndex(store.titles())
        assert keys.titles() == store.titles()
        for query in QUERIES:
            for exact in (False, True):
                assert outcome(keys.resolve, query, exact) == outcome(listed.resolve, query, exact)
                stored = outcome(lambda q, exact: resolve_store_title(store, q, exact=exact), query)
                assert stored == outcome(listed.resolve, query)
    finally:
        keys.close()


def test_index_writes_keys_that_resolve_as_listing_does(store):
    assert_same_as_listing(store)
    assert resolve_store_titles(store, ["jaws", "War and Peace"]) == [
        "Jaws (novel)",
        "War and Peace",
    ]


def test_upsert_and_delete_keep_the_keys_in_step(store):
    store.upsert(points(["Dune Messiah", "The Hobbit (novel)"], seed=1))
    assert_same_as_listing(store)
    assert resolve_store_title(store, "hobbit") == "The Hobbit (novel)"
    store.delete(["Dune (film)", "Jaws (novel)"])
    assert_same_as_listing(store)
    assert resolve_store_title(store, "dune") == "Dune (novel)"  # no longer ambiguous


def test_a_write_on_a_copy_carries_the_keys(store, tmp_path):
    reader = open_store(QdrantSettings(), path=tmp_path, read_only=True)
    try:
        reader.count()  # holds the live generation open: the writer changes a copy
        store.upsert(points(["Anna Karenina"], seed=2))
        assert_same_as_listing(store)
        assert resolve_store_title(reader, "anna karenina!") == "Anna Karenina"
    finally:
        reader.close()


def test_stale_or_missing_keys_fall_back_to_listing(store):
    generation = store._live.path
    (generation / FILE).unlink()
    assert store.title_keys() is None
    assert resolve_store_title(store, "jaws") == "Jaws (novel)"
    store.upsert(points(["Middlemarch"], seed=3))  # rebuilds the missing index
    assert_same_as_listing(store)
    generation = store._live.path  # every write publishes a new generation (copy-on-write)
    from bookvec.titlekeys import open_keys

    with open_keys(generation / FILE, writable=True) as keys:  # as if a write stopped half-way
        keys.update(["Not In The Store"], [], count=keys.count + 5)
    assert store.title_keys() is None
    assert resolve_store_title(store, "middlemarch") == "Middlemarch"


def test_complete_by_loose_prefix(store):
    with store.title_keys() as keys:
        assert keys.complete("dune") == ["Dune (film)", "Dune (novel)"]
        assert keys.complete("WAR a") == ["War and Peace"]
        assert keys.complete("les mis", limit=1) == ["Les Misérables"]
        assert keys.complete("!!") == []


def test_a_bundle_resolves_through_the_keys_it_was_written_with(trained_home):
    import os

    from bookvec.library.actions import _bundle_title_keys
    from bookvec.model.bundle import open_bundle
    from bookvec.settings import ENV_HOME

    os.environ[ENV_HOME] = str(trained_home)
    try:
        bundle = open_bundle(None)
    finally:
        del os.environ[ENV_HOME]
    for what, names in (("book", bundle.book_titles), ("link", bundle.link_names)):
        keys = _bundle_title_keys(bundle, what, len(names))
        assert keys is not None, f"the bundle should carry its {what} keys"
        listed = TitleIndex(names, what=what)
        queries = [names[0], names[-1].upper() + "!", names[1][:-2], "zzz qqq", names[2][1:]]
        for query in queries:
            for exact in (False, True):
                assert outcome(keys.resolve, query, exact) == outcome(listed.resolve, query, exact)
