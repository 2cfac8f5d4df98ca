"""Issue 12, a store that cannot be silently lost (store level, no model): the catalogue of
upserted books on both backends, a broken CURRENT recovered or refused (never read as "no
store"), generations that record their point count and id checksum, garbage collection that
never deletes a generation holding more books than the published one, and a property test:
a kill -9 or an injected write error at a random point of upsert, index (replace_all) or delete
leaves the store at its previous state or its new one.

CLI-level cases (upsert then index keeps every upserted book, `index` rebuilding a damaged
store, names that are not paths): test_reliability_catalogue.py."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookvec.errors import DiskFullError, StoreError
from bookvec.indexer import BookPoint, open_store
from bookvec.indexer.catalogue import encode_links
from bookvec.settings import QdrantSettings

DIM = 8
BACKENDS = ["edge", "server"]


def points(n: int, prefix: str = "Book", seed: int = 0, *, upserted: bool = False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        payload = {"genres": ["fantasy"], "source": "upsert" if upserted else "bundle"}
        if upserted:
            payload["links"] = encode_links([f"link {i}", "shared"])
        out.append(BookPoint(f"{prefix} {i}", rng.standard_normal(DIM), payload))
    return out


def open_backend(kind, tmp_path, client=None):
    if kind == "edge":
        return open_store(QdrantSettings(), path=tmp_path)
    from qdrant_client import QdrantClient

    return open_store(QdrantSettings(), client=client or QdrantClient(":memory:"))


def root(tmp_path: Path) -> Path:
    return tmp_path / "books"


def live(tmp_path: Path) -> Path:
    return root(tmp_path) / (root(tmp_path) / "CURRENT").read_text().strip()


# --- the catalogue: one API, both backends ------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_upserted_books_are_listed_with_links_and_payload_on_both_backends(kind, tmp_path):
    store = open_backend(kind, tmp_path)
    assert store.upserted() == []
    store.replace_all(points(20), vector_size=DIM, model_version="m")
    store.upsert(points(3, "New", upserted=True))
    books = store.upserted()
    assert [b.title for b in books] == ["New 0", "New 1", "New 2"]
    assert books[0].links == ["link 0", "shared"]
    assert books[0].payload["genres"] == ["fantasy"] and "links" not in books[0].payload
    # overwritten by a non-upserted point, or deleted: no longer in the catalogue
    store.upsert([BookPoint("New 1", np.ones(DIM), {"source": "bundle"})])
    assert store.delete(["New 2"]) == 1
    assert [b.title for b in store.upserted()] == ["New 0"]
    # a full replace holds exactly what it was given: the catalogue follows it
    store.replace_all(
        [*points(20), *points(2, "Kept", upserted=True)], vector_size=DIM, model_version="m2"
    )
    assert [b.title for b in store.upserted()] == ["Kept 0", "Kept 1"]
    assert store.count() == 22
    store.close()


def test_the_edge_catalogue_survives_a_shard_that_cannot_be_opened(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(20), vector_size=DIM, model_version="m")
    store.upsert(points(4, "New", upserted=True))
    store.close()
    shutil_rmtree(live(tmp_path) / "shard")
    with pytest.raises(StoreError, match="store damaged"):
        open_backend("edge", tmp_path).count()
    recovering = open_store(QdrantSettings(), path=tmp_path, recover=True)
    assert recovering.info() is None and recovering.damaged
    assert [b.title for b in recovering.upserted()] == [f"New {i}" for i in range(4)]
    # what `bookvec index` does: bundle + catalogue into a new generation
    again = [BookPoint(b.title, np.ones(DIM), {**b.payload, "links": encode_links(b.links)})
             for b in recovering.upserted()]  # fmt: skip
    recovering.replace_all([*points(20), *again], vector_size=DIM, model_version="m")
    assert recovering.count() == 24 and len(recovering.upserted()) == 4
    recovering.close()


def test_a_torn_last_catalogue_line_is_ignored_and_dropped_on_the_next_append(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(5), vector_size=DIM, model_version="m")
    store.upsert(points(2, "New", upserted=True))
    log = root(tmp_path) / "catalogue.jsonl"
    with open(log, "a") as handle:
        handle.write('{"op": "put", "title": "Torn", "payl')  # a crash mid-append
    assert [b.title for b in store.upserted()] == ["New 0", "New 1"]
    store.upsert(points(3, "New", upserted=True))
    assert [b.title for b in store.upserted()] == ["New 0", "New 1", "New 2"]
    assert all(json.loads(line) for line in log.read_text().splitlines())
    store.close()


# --- CURRENT: recovered or refused, never "no store" ---------------------------------------------


@pytest.mark.parametrize("state", ["missing", "empty", "garbled", "dangling"])
def test_a_broken_pointer_recovers_the_newest_complete_generation(tmp_path, state):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(30), vector_size=DIM, model_version="m")
    store.close()
    pointer = root(tmp_path) / "CURRENT"
    if state == "missing":
        pointer.unlink()
    else:
        pointer.write_text(
            {"empty": "", "garbled": "\x00\xff../../etc", "dangling": "g-gone\n"}[state]
        )
    with pytest.warns(RuntimeWarning, match="using its newest complete generation"):
        again = open_backend("edge", tmp_path)
    assert again.count() == 30
    # an ordinary write does not start an empty store: it copies the recovered one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert again.upsert(points(1, "One", upserted=True)).added == 1
        assert again.count() == 31
    again.close()
    assert open_backend("edge", tmp_path).count() == 31  # CURRENT is whole again, no warning


def test_a_pointer_to_nothing_complete_is_store_damaged_and_recover_rebuilds(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(30), vector_size=DIM, model_version="m")
    store.close()
    gen = live(tmp_path)
    shutil_rmtree(gen)
    with pytest.raises(StoreError, match="store damaged"):
        open_backend("edge", tmp_path)
    rebuilt = open_store(QdrantSettings(), path=tmp_path, recover=True)
    rebuilt.replace_all(points(30), vector_size=DIM, model_version="m")
    assert open_backend("edge", tmp_path).count() == 30


# --- counts and checksums -----------------------------------------------------------------------


def test_generations_record_their_count_and_ids_and_a_truncated_shard_is_damaged(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(300), vector_size=DIM, model_version="m")
    store.upsert(points(5, "New", upserted=True))
    store.delete(["Book 0", "Book 1"])
    meta = json.loads((live(tmp_path) / "bookvec.json").read_text())
    assert meta["points"] == 303 and len(meta["ids"]) == 16
    store.close()
    # another process' view of the same files: truncate the id mapping, as the probe did
    damaged = False
    for path in sorted((live(tmp_path) / "shard").rglob("*")):
        if path.is_file() and "id_tracker" in str(path) and path.stat().st_size > 0:
            with open(path, "r+b") as handle:
                handle.truncate(path.stat().st_size // 2)
            damaged = True
    assert damaged, sorted(p.name for p in (live(tmp_path) / "shard").rglob("*"))
    with pytest.raises(StoreError, match="store damaged"):
        open_backend("edge", tmp_path).count()


def test_checksum_mismatch_is_damage(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(50), vector_size=DIM, model_version="m")
    store.close()
    path = live(tmp_path) / "bookvec.json"
    meta = json.loads(path.read_text())
    meta["ids"] = f"{int(meta['ids'], 16) ^ 1:016x}"
    path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="store damaged.*checksum"):
        open_backend("edge", tmp_path)


def test_garbage_collection_keeps_a_generation_holding_more_books(tmp_path):
    store = open_backend("edge", tmp_path)
    store.replace_all(points(40), vector_size=DIM, model_version="m")
    big = live(tmp_path)
    store.close()
    # the probe's case: a second, smaller store published beside the big one (CURRENT lost)
    (root(tmp_path) / "CURRENT").unlink()
    small = root(tmp_path) / "g-00000000T000000-small"
    other = open_store(QdrantSettings(), path=tmp_path / "elsewhere")
    other.replace_all(points(1, "Lonely"), vector_size=DIM, model_version="m")
    src = tmp_path / "elsewhere" / "books"
    os.rename(src / (src / "CURRENT").read_text().strip(), small)
    other.close()
    (root(tmp_path) / "CURRENT").write_text(small.name + "\n")
    store = open_backend("edge", tmp_path)
    assert store.count() == 1
    store.upsert(points(1, "Another", upserted=True))  # publishes 2 points
    assert big.is_dir()  # 40 books: not deleted by a write that publishes 2
    store.close()


# --- the property: kill -9 or a write error anywhere leaves the old state or the new one --------

OP_SCRIPT = """
    import sys, numpy as np
    from bookvec.indexer import BookPoint, open_store
    from bookvec.indexer.catalogue import encode_links
    from bookvec.settings import QdrantSettings
    path, op, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(1)
    store = open_store(QdrantSettings(), path=path, recover=(op == "index"))
    print("ready", flush=True)
    if op == "upsert":
        pts = [BookPoint(f"New {i}", rng.standard_normal(8),
                         {"source": "upsert", "links": encode_links([f"l{i}"])}) for i in range(n)]
        store.upsert(pts)
    elif op == "index":
        pts = [BookPoint(f"Book {i}", rng.standard_normal(8), {}) for i in range(n)]
        store.replace_all(pts, vector_size=8, model_version="m2")
    else:
        store.delete([f"Book {i}" for i in range(n)])
    print("done", flush=True)
"""

BASE = 3000


def _fresh(path: Path) -> None:
    store = open_store(QdrantSettings(), path=path)
    store.replace_all(points(BASE), vector_size=DIM, model_version="m")
    store.close()


def _state(path: Path) -> tuple[int, int, set[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        store = open_store(QdrantSettings(), path=path)
        try:
            return store.count(), len(store.upserted()), set(store.titles())
        finally:
            store.close()


def _expected(op: str, n: int) -> tuple[int, int]:
    return {"upsert": (BASE, BASE + n), "index": (BASE, n), "delete": (BASE, BASE - n)}[op]


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(
    op=st.sampled_from(["upsert", "index", "delete"]),
    n=st.integers(200, 2500),
    delay=st.floats(0.0, 1.0),
)
def test_kill_9_at_a_random_point_leaves_the_old_or_the_new_state(tmp_path_factory, op, n, delay):
    path = tmp_path_factory.mktemp("kill")
    _fresh(path)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OP_SCRIPT), str(path), op, str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    count, catalogued, _ = _state(path)
    assert count in _expected(op, n), (op, n, delay, count)
    if op == "upsert":  # the catalogue is written first: never behind the store
        assert catalogued >= count - BASE


INJECTION_POINTS = ["write", "copy", "publish", "catalogue", "rename"]


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    op=st.sampled_from(["upsert", "index", "delete"]),
    where=st.sampled_from(INJECTION_POINTS),
    after=st.integers(0, 2),
)
def test_an_injected_write_error_leaves_the_old_or_the_new_state(
    tmp_path_factory, op, where, after
):
    import bookvec.indexer.catalogue as catalogue
    import bookvec.indexer.edge as edge_module
    import bookvec.indexer.generations as generations

    path = tmp_path_factory.mktemp("inject")
    _fresh(path)
    n = 5000  # three write batches
    calls = {"n": 0}

    def fail_now() -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")

    originals = {}

    def patch(module, name, wrapper):
        originals[(module, name)] = getattr(module, name)
        setattr(module, name, wrapper(getattr(module, name)))

    def before(fn):
        def wrapped(*args, **kwargs):
            fail_now()
            return fn(*args, **kwargs)

        return wrapped

    if where == "write":

        def failing_write(fn):
            def wrapped(shard, batches, progress, **kwargs):
                def stream():
                    for batch in batches:
                        fail_now()
                        yield batch

                return fn(shard, stream(), progress, **kwargs)

            return wrapped

        patch(edge_module, "_write", failing_write)
    elif where == "copy":
        patch(generations, "_copy_sparse", before)
    elif where == "publish":
        patch(generations, "write_meta", before)
    elif where == "catalogue":
        patch(catalogue.CatalogueLog, "_append", before)
        patch(catalogue.CatalogueLog, "rewrite", before)
    else:
        patch(generations.os, "rename", before)
    store = open_store(QdrantSettings(), path=path)
    rng = np.random.default_rng(2)
    try:
        if op == "upsert":
            store.upsert(
                BookPoint(f"New {i}", rng.standard_normal(DIM), {"source": "upsert", "links": "[]"})
                for i in range(n)
            )
        elif op == "index":
            store.replace_all(points(n, "Other"), vector_size=DIM, model_version="m2")
        else:
            store.delete([f"Book {i}" for i in range(1000)])
    except (OSError, DiskFullError):  # ENOSPC is reported as DiskFullError (bookvec.disk)
        pass
    finally:
        for (module, name), fn in originals.items():
            setattr(module, name, fn)
        store.close()
    count, catalogued, titles = _state(path)
    old, new = _expected(op, 1000 if op == "delete" else n)
    if op == "upsert":
        # whole batches before the error stay stored (re-running completes the upsert),
        # and the catalogue is never behind the store
        assert old <= count <= new and catalogued >= count - old, (where, after, count)
        assert {f"Book {i}" for i in range(BASE)} <= titles
    else:
        assert count in (old, new), (op, where, after, count)


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)
