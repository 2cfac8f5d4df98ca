"""Free space: check it before a write that may grow memory-mapped files, and turn a full
disk into one DiskFullError line.

Qdrant Edge preallocates its segment files sparsely (a 600-point shard: 97 MB apparent, under
1 MB on disk) and fills them through mmap. On a full disk a page it touches cannot be
allocated and the kernel sends SIGBUS, which no Python code can catch: the process dies, even
a reader (opening a shard on tmpfs touches its files). So the holes of a shard, and the
biggest file it may add next, are checked against the free space before it is opened or
written.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bookvec.errors import DiskFullError

MB = 1 << 20
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
UNKNOWN_NEED = 64 * MB  # what a full disk asks for when the write's size is not known


def existing(path: str | Path) -> Path:
    """`path` or its nearest ancestor that exists (what disk_usage can stat)."""
    current = Path(path).expanduser().absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def mount_point(path: str | Path) -> str:
    current = existing(path)
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def free_bytes(path: str | Path) -> int:
    return shutil.disk_usage(existing(path)).free


def sparse_sizes(root: str | Path) -> tuple[int, int, int]:
    """Of the files under root: (bytes not yet allocated, the biggest one's apparent size,
    their apparent size in all)."""
    holes = biggest = apparent = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                st = os.stat(os.path.join(directory, name))
            except OSError:
                continue
            holes += max(0, st.st_size - st.st_blocks * 512)
            biggest = max(biggest, st.st_size)
            apparent += st.st_size
    return holes, biggest, apparent


def full(path: str | Path, need: int = UNKNOWN_NEED, *, what: str | None = None) -> DiskFullError:
    """The error for a write of `need` bytes under `path` that does not fit."""
    short = need - free_bytes(path)
    if short <= 0:  # the disk said full though it seemed to have room (a quota, a low guess)
        short = need
    return DiskFullError(mount_point(path), max(1, math.ceil(short / MB)), what=what)


def require(path: str | Path, need: int, *, what: str | None = None) -> None:
    """Raise DiskFullError unless `need` bytes are free on the disk holding `path`."""
    if free_bytes(path) < need:
        raise full(path, need, what=what)


def is_full(exc: BaseException) -> bool:
    """An OSError of a full disk, or a Rust-side error that says so (os error 28)."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text


@contextmanager
def guard(path: str | Path, need: int = UNKNOWN_NEED, *, what: str | None = None) -> Iterator[None]:
    """Writes under `path`: a full disk becomes DiskFullError (the caller cleans up)."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_full(exc):
            raise full(path, need, what=what) from None
        raise
