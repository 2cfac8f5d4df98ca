"""The embedded store's own machinery: generations, locks across processes, copy-on-write,
garbage collection, and a cheap import path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bookvec.errors import ConfigError, ModelMismatchError, StoreError, StoreLockedError
from bookvec.indexer import BookPoint, open_store
from bookvec.settings import QdrantSettings

DIM = 8


def points(n: int, prefix: str = "Book", seed: int = 0) -> list[BookPoint]:
    rng = np.random.default_rng(seed)
    return [
        BookPoint(f"{prefix} {i}", rng.standard_normal(DIM), {"genres": ["fantasy"]})
        for i in range(n)
    ]


def generations(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "books").iterdir() if p.name.startswith(("g-", ".b")))


@pytest.fixture
def store(tmp_path):
    store = open_store(QdrantSettings(), path=tmp_path)
    store.replace_all(points(10), vector_size=DIM, model_version="a")
    yield store
    store.close()


def start(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def ask(proc: subprocess.Popen) -> str:
    proc.stdin.write("\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


READER = """
    import sys
    from bookvec.indexer import open_store
    from bookvec.settings import QdrantSettings
    store = open_store(QdrantSettings(), path=sys.argv[1], read_only=True)
    for _ in sys.stdin:
        print(store.count(), store.info().model_version, flush=True)
"""

WRITER = """
    import sys
    from pathlib import Path
    from bookvec.indexer.generations import Layout
    with Layout(Path(sys.argv[1])).writing():
        print("locked", flush=True)
        sys.stdin.readline()
"""


def test_a_reader_in_another_process_keeps_answering_until_the_switch(store, tmp_path):
    reader = start(READER, str(tmp_path))
    try:
        assert ask(reader) == "10 a"
        answers = []
        store.replace_all(
            points(25, "New"),
            vector_size=DIM,
            model_version="b",
            progress=lambda n: answers.append(ask(reader)),
        )
        assert answers == ["10 a"]  # while the new generation was being built
        assert ask(reader) == "25 b"  # its next call after the switch
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    store.upsert(points(1, "Later"))  # the next write removes generations nobody has open
    assert len(generations(tmp_path)) == 1


def test_a_second_writer_gets_store_locked_with_the_pid(store, tmp_path):
    writer = start(WRITER, str(tmp_path / "books"))
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=rf"pid {writer.pid}\)"):
            store.upsert(points(1, "Blocked"))
        assert store.count() == 10  # reading is never blocked
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    assert store.upsert(points(1, "Blocked")).added == 1


def test_every_write_is_a_copy_and_readers_keep_their_generation(store, tmp_path):
    # Issue 12: never written in place (a crash mid-write would leave the only copy damaged).
    before = store.info().location
    store.upsert(points(2, "Alone"))
    assert store.info().location != before
    assert not Path(before).exists()  # nobody had it open, and the copy holds as many points
    before = store.info().location

    reader = open_store(QdrantSettings(), path=tmp_path, read_only=True)
    seen = []
    store.upsert(points(3, "Shared"), progress=lambda n: seen.append(reader.count()))
    assert seen == [12]  # the reader kept its generation while the copy was written
    assert store.info().location != before
    assert reader.count() == 15 and reader.info().location == store.info().location
    store.delete(["Shared 0"])
    assert reader.count() == 14
    reader.close()


def test_garbage_collection_spares_open_generations(store, tmp_path):
    reader = open_store(QdrantSettings(), path=tmp_path, read_only=True)
    old = reader.info().location
    store.replace_all(points(4), vector_size=DIM, model_version="a")
    assert Path(old).is_dir()  # the reader has not made its next call yet
    assert reader.count() == 4  # ... now it has, and let go of the old one
    held = reader.info().location
    store.upsert(points(1, "More"))  # copy-on-write: the reader holds the live generation
    assert not Path(old).exists()
    assert generations(tmp_path) == sorted([Path(held).name, Path(store.info().location).name])
    reader.close()
    (tmp_path / "books" / ".build-interrupted").mkdir()
    store.upsert(points(1, "Even more"))  # alone now: a copy, and everything else goes
    assert generations(tmp_path) == [Path(store.info().location).name]


def test_read_only_open_creates_nothing(tmp_path):
    store = open_store(QdrantSettings(), path=tmp_path / "nowhere", read_only=True)
    assert store.info() is None
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(StoreError, match="read-only"):
        store.ensure_collection(vector_size=DIM, model_version="a")


def test_one_shard_only(tmp_path):
    store = open_store(QdrantSettings(), path=tmp_path)
    with pytest.raises(ConfigError, match="BOOKVEC_QDRANT_URL"):
        store.replace_all(points(1), vector_size=DIM, model_version="a", shards=2)
    store.ensure_collection(vector_size=DIM, model_version="a", shards=1, replicas=1)


def test_unreadable_metadata_says_how_to_fix(store, tmp_path):
    Path(store.info().location, "bookvec.json").write_text("{", encoding="utf-8")
    with pytest.raises(StoreError, match="bookvec index"):
        open_store(QdrantSettings(), path=tmp_path)


def test_reopen_and_collection_names(store, tmp_path):
    store.close()
    again = open_store(QdrantSettings(), path=tmp_path)
    assert again.count() == 10
    other = open_store(QdrantSettings(collection="other"), path=tmp_path)
    assert other.info() is None
    again.close()


def test_the_embedded_path_never_imports_qdrant_client(store, tmp_path):
    script = f"""
        import sys
        from bookvec.indexer import BookFilter, open_store
        from bookvec.settings import QdrantSettings
        store = open_store(QdrantSettings(), path={str(tmp_path)!r}, read_only=True)
        store.search_like("Book 1", filter=BookFilter(genres_any=("fantasy",)))
        assert "qdrant_client" not in sys.modules, "qdrant_client was imported"
        assert "torch" not in sys.modules and "onnxruntime" not in sys.modules
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True)


def test_a_missing_generation_says_how_to_fix(store, tmp_path):
    import shutil

    location = store.info().location
    store.close()
    shutil.rmtree(location)
    with pytest.raises(StoreError, match="bookvec index"):
        open_store(QdrantSettings(), path=tmp_path)


def test_hnsw_is_built_above_the_indexing_threshold(tmp_path, monkeypatch):
    """A bulk load that crosses the threshold gets its graph from optimize(); searches then
    walk it with the stored hnsw_ef."""
    from bookvec.indexer import IndexOptions, edge

    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)  # ~32 8-d points
    monkeypatch.setattr(edge, "FULL_SCAN_THRESHOLD_KB", 1)
    assert edge.indexing_threshold(DIM) == 32
    data = points(2000)
    store = open_store(QdrantSettings(), path=tmp_path)
    store.replace_all(data, vector_size=DIM, model_version="a", options=IndexOptions(hnsw_ef=256))
    assert store.info().indexed_vectors == 2000
    unit = np.array([p.vector / np.linalg.norm(p.vector) for p in data])
    rng = np.random.default_rng(5)
    found = total = 0
    for query in rng.standard_normal((30, DIM)):
        truth = {data[i].title for i in np.argsort(-(unit @ query))[:10]}
        found += len(truth & {h.title for h in store.search(query, limit=10)})
        total += 10
    assert found / total >= 0.95
    store.set_hnsw_ef(1)  # a worse graph walk through this handle only ...
    assert store.info().index.hnsw_ef == 256  # ... the stored setting is unchanged
    store.set_hnsw_ef(None)
    store.close()


def test_bulk_load_failing_midway_leaves_the_old_generation(store, tmp_path):
    from bookvec.indexer.points import BATCH

    def stream():
        yield from points(BATCH + 5, "Bulk")
        yield BookPoint("Bad", np.zeros(DIM), {})

    with pytest.raises(StoreError, match="all zeros"):
        store.replace_all(stream(), vector_size=DIM, model_version="b")
    assert store.count() == 10 and store.info().model_version == "a"
    assert len(generations(tmp_path)) == 1


def test_streamed_upsert_stops_at_a_bad_batch(store):
    from bookvec.indexer.points import BATCH

    def stream():
        yield from points(BATCH, "Good")  # the first batch is written ...
        yield BookPoint("Bad", [1.0] * (DIM - 1), {})  # ... the second is refused whole

    with pytest.raises(ModelMismatchError):
        store.upsert(stream())
    assert store.count() == 10 + BATCH
    assert store.upsert(points(BATCH, "Good")).unchanged == BATCH  # running it again: idempotent
