"""A full disk and signals, in real processes where it matters: a write that does not fit ends
with one line ("no space left on DEVICE: free N MB and retry"), never SIGBUS, and the previous
state stays readable; SIGTERM is handled as Ctrl-C; an interrupted upsert says how many books
it stored and leaves no build behind; Ctrl-C during an HNSW build takes effect at once."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import invoke, one_error_line

pytestmark = pytest.mark.slow


def _default_sigint() -> None:
    # a runner started in the background may ignore SIGINT, and children inherit that:
    # give the child the default, as a terminal would (Python then raises KeyboardInterrupt)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _bookvec(args: list[str], home: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "bookvec.cli.main", "-q", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
        **kwargs,
    )


def _points(home: Path) -> int:
    result = invoke(["info", "--json"], home)
    return json.loads(result.stdout)["store"]["points"]


def _books(home: Path, count: int, prefix: str = "Signal Book") -> list[str]:
    from bookvec.model.bundle import open_bundle

    names = open_bundle(None, models_dir=home / "models").link_names
    return [
        json.dumps(
            {
                "title": f"{prefix} {i}",
                "links": [names[(i * 7 + j * 13) % len(names)] for j in (0, 1, 2)],
            }
        )
        + "\n"
        for i in range(count)
    ]


def _builds(home: Path) -> list[str]:
    return [p.name for p in (home / "store" / "books").iterdir() if p.name.startswith(".build-")]


# --- a real, small file system ---------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 1 GB mounted at tmp_path/disk (skipped where mounting is not allowed);
    `shrink(free_mb)` remounts it with only that much room left."""
    mount = tmp_path / "disk"
    mount.mkdir()
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {tried.stderr.strip() or tried.returncode}")

    def shrink(free_mb: int) -> None:
        used = shutil.disk_usage(mount).used
        size = used // (1 << 20) + free_mb
        subprocess.run(["mount", "-o", f"remount,size={size}m", str(mount)], check=True)

    try:
        yield mount, shrink
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_an_upsert_that_does_not_fit_is_one_line_and_the_store_stays_readable(
    trained_home, small_disk, tmp_path
):
    mount, shrink = small_disk
    home = mount / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    before = _points(home)  # opening the store once makes Edge fill its files
    source = tmp_path / "many.jsonl"
    source.write_text("".join(_books(home, 20000)))
    shrink(8)
    proc = _bookvec(["upsert", str(source)], home)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (proc.returncode, err.decode())  # not -SIGBUS
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith(f"Error: no space left on {mount}"), lines
    assert "MB and retry" in lines[0]
    assert _points(home) == before  # readable, as it was
    assert not _builds(home)


def test_an_index_that_does_not_fit_is_one_line_and_the_old_generation_stays(
    trained_home, small_disk
):
    mount, shrink = small_disk
    home = mount / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    before = _points(home)
    shrink(8)
    proc = _bookvec(["index"], home)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (proc.returncode, err.decode())
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: no space left on {mount}"), lines
    assert _points(home) == before
    assert not _builds(home)


# --- injected ENOSPC ---------------------------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_store_write_refused_for_space_changes_nothing(mutable_home, tmp_path, monkeypatch):
    from bookvec import disk

    source = tmp_path / "few.jsonl"
    source.write_text("".join(_books(mutable_home, 10)))
    before = _points(mutable_home)
    monkeypatch.setattr(disk, "free_bytes", lambda path: 3 << 20)  # 3 MB left
    result = invoke(["upsert", str(source)], mutable_home)
    one_error_line(result, "no space left on", "copying the store to change it", "MB and retry")
    monkeypatch.undo()
    assert _points(mutable_home) == before
    assert not _builds(mutable_home)


def test_a_full_disk_while_writing_the_model_is_one_line(trained_home, small_corpus, monkeypatch):
    from bookvec.model import bundle

    home = trained_home.parent / "enospc-train-home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(trained_home, home, symlinks=True)
    current = (home / "models" / "CURRENT").read_text()
    monkeypatch.setattr(bundle, "sha256_of", _enospc)  # commit hashes each file: fail there
    args = ["-q", "train", "--data", str(small_corpus), "--epochs", "1", "--no-evaluate"]
    result = invoke(args, home)
    one_error_line(result, "no space left on", "writing the model", "MB and retry")
    assert (home / "models" / "CURRENT").read_text() == current
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".tmp-")]
    checkpoints = home / "checkpoints"
    assert not checkpoints.exists() or not list(checkpoints.rglob(".*.tmp"))
    shutil.rmtree(home, ignore_errors=True)


def test_a_full_disk_while_saving_a_checkpoint_leaves_no_temporary_file(tmp_path, monkeypatch):
    import torch

    from bookvec.errors import DiskFullError
    from bookvec.model.training.checkpoints import Checkpoints

    checkpoints = Checkpoints(tmp_path / "run")
    checkpoints.save({"epoch": torch.tensor(1)}, is_best=True)
    good = checkpoints.state_path.read_bytes()

    def half_then_full(payload, handle):
        handle.write(b"half a checkpoint")
        _enospc(handle.name)

    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(DiskFullError, match="no space left on .*saving a checkpoint"):
        checkpoints.save({"epoch": torch.tensor(2)}, is_best=True)
    assert checkpoints.state_path.read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "state.pt"]


def test_a_full_disk_while_writing_rejects_removes_the_partial_file(tmp_path):
    from bookvec.errors import DiskFullError
    from bookvec.library.rejects import Rejects

    target = tmp_path / "rejects.jsonl"
    rejects = Rejects(str(target))

    class Full:
        name = str(target)
        closed = False

        def write(self, text):
            _enospc(target)

        def close(self):
            pass

    rejects._handle = Full()
    with pytest.raises(DiskFullError, match="no space left on .*--rejects"):
        rejects.append((1, "T", "bad"))
    assert list(tmp_path.iterdir()) == []


def test_any_write_that_finds_the_disk_full_is_one_line(mutable_home, monkeypatch):
    from bookvec.model.analysis import vectors_io

    monkeypatch.setattr(vectors_io, "write", _enospc)
    result = invoke(["vectors", str(mutable_home / "out.parquet")], mutable_home)
    one_error_line(result, "no space left on", "MB and retry")


# --- signals -----------------------------------------------------------------------------------


def _upsert_from_fifo(home: Path, fifo: Path, lines: list[str]):
    """An upsert reading a FIFO that gets `lines` and is then held open: the run stores every
    whole batch and waits for more."""
    os.mkfifo(fifo)
    proc = _bookvec(["upsert", str(fifo)], home)
    writer = open(fifo, "w")  # noqa: SIM115 - held open on purpose
    writer.write("".join(lines))
    writer.flush()
    return proc, writer


def test_sigterm_during_an_upsert_says_what_was_stored_and_a_rerun_completes(
    mutable_home, tmp_path
):
    before = _points(mutable_home)
    lines = _books(mutable_home, 5000)
    proc, writer = _upsert_from_fifo(mutable_home, tmp_path / "in.fifo", lines)
    time.sleep(8)  # two whole batches of 2,048 folded in and written; the third waits
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    writer.close()
    message = err.decode().strip()
    assert proc.returncode == 143, message
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    assert message.startswith("Interrupted: 4,096 books were stored before the interruption")
    assert "running the same command again completes the rest" in message
    assert _points(mutable_home) == before + 4096
    assert not _builds(mutable_home)
    source = tmp_path / "all.jsonl"
    source.write_text("".join(lines))
    report = json.loads(invoke(["upsert", str(source), "--json"], mutable_home).stdout)
    assert (report["added"], report["unchanged"]) == (5000 - 4096, 4096)
    assert _points(mutable_home) == before + 5000


def test_ctrl_c_during_an_upsert_on_a_copy_removes_the_build(mutable_home, tmp_path):
    from bookvec.indexer import open_store
    from bookvec.settings import QdrantSettings

    before = _points(mutable_home)
    reader = open_store(QdrantSettings(), path=mutable_home / "store", read_only=True)
    try:  # another process has the live generation open: the writer changes a copy
        assert reader.count() == before
        proc, writer = _upsert_from_fifo(
            mutable_home, tmp_path / "in.fifo", _books(mutable_home, 3000)
        )
        time.sleep(6)
        assert proc.poll() is None, proc.communicate()
        assert len(_builds(mutable_home)) == 1  # the copy being written
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
        writer.close()
    finally:
        reader.close()
    message = err.decode().strip()
    assert proc.returncode == 130, message
    # the whole batches written to the copy before Ctrl-C are published with it, and said
    stored = re.match(r"Interrupted: ([\d,]+) books were stored before the interruption", message)
    assert stored or message == "Interrupted: no book was stored; nothing stored was changed."
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert not _builds(mutable_home)
    assert _points(mutable_home) == before + (int(stored[1].replace(",", "")) if stored else 0)


HNSW_BUILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bookvec.indexer import BookPoint, open_store
    from bookvec.settings import QdrantSettings

    n = 60_000  # above Edge's indexing threshold for 50-d vectors (51,200): HNSW is built
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 50)).astype("float32")
    written = 0

    def progress(count):
        global written
        written += count
        if written == n:
            print("written", flush=True)

    store = open_store(QdrantSettings(), path=sys.argv[1])
    try:
        store.replace_all(
            (BookPoint(f"B {i}", vectors[i], {}) for i in range(n)),
            vector_size=50, model_version="m", progress=progress,
        )
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
    """
)


def test_ctrl_c_during_an_hnsw_build_takes_effect_at_once(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HNSW_BUILD, str(tmp_path / "store")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    assert proc.stdout.readline().strip() == "written"
    time.sleep(1.5)  # the optimizer is running (about 20-40 s for 60k points here)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130 and out.strip() == "interrupted", (out, err)
    assert took < 5, took
    root = tmp_path / "store" / "books"
    assert not [p for p in root.iterdir() if p.name.startswith((".build-", "g-"))]


def test_ctrl_c_while_the_live_shard_is_optimized_in_place_says_it_is_finishing():
    from bookvec.indexer import edge

    class Child:
        calls = 0

        def wait(self):
            Child.calls += 1
            if Child.calls == 1:
                raise KeyboardInterrupt

        def poll(self):
            return 0 if Child.calls >= 2 else None

    done = threading.Event()
    with pytest.warns(UserWarning, match="finishing the HNSW index"):
        edge._wait_for(Child(), in_place=True)
        done.set()
    assert done.is_set() and Child.calls == 2
    with pytest.raises(KeyboardInterrupt):
        Child.calls = 0
        edge._wait_for(Child(), in_place=False)
