"""Files the user names for output (map --out, projector, vectors, --rejects): written whole,
and never at the cost of what the name points to.

- a regular file (or a new name) is written beside its target and renamed over it on success;
- a symlink is followed: its target is written (the same way), the link stays a link;
- a character device or a FIFO (``/dev/null``, ``/dev/stdout``, ``>(gzip > f)``) is written
  through, directly: a temporary file renamed over ``/dev/null`` would replace the device;
- a directory, a block device or a socket is refused with a one-line ConfigError;
- ``-`` means standard output, where a command offers it (``is_stdout``).

``check_output`` runs the same checks up front, so a command can refuse a bad target before
it spends time computing (or storing books).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bookvec.errors import ConfigError


def is_stdout(path: str | Path) -> bool:
    return str(path) == "-"


def _through(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_output(path: str | Path, *, what: str = "output") -> Path:
    """The file to write for ``path`` (symlinks resolved), or a ConfigError saying why it
    cannot be written there. ``-`` is returned as is."""
    if is_stdout(path):
        return Path("-")
    target = Path(os.path.realpath(Path(path).expanduser()))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(f"{what} {path}: is a directory", hint="give a file name")
    if mode is not None and not (stat.S_ISREG(mode) or _through(mode)):
        raise ConfigError(
            f"{what} {path}: is not a regular file, a character device or a FIFO",
            hint="give a file name",
        )
    if mode is not None and _through(mode):
        if not os.access(target, os.W_OK):
            raise ConfigError(f"{what} {path}: not writable")
        return target
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{what} {path}: the directory {parent} does not exist",
            hint="create it first, or give another path",
        )
    if not os.access(parent, os.W_OK):
        raise ConfigError(
            f"{what} {path}: the directory {parent} is not writable (read-only?)",
            hint="give a path in a writable directory",
        )
    return target


@contextmanager
def output_file(path: str | Path, *, what: str = "output") -> Iterator[Path]:
    """``with output_file(p) as where``: write the file ``where``; on success it becomes
    ``p``'s content (see the module doc); on an error a partial file is removed."""
    target = check_output(path, what=what)
    if is_stdout(target):
        raise ConfigError(f"{what}: cannot write this to standard output", hint="give a file")
    try:
        through = _through(target.stat().st_mode)
    except FileNotFoundError:
        through = False
    if through:
        yield target
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def check_output_dir(path: str | Path, *, what: str = "output directory") -> Path:
    """A directory to write files into: an existing writable one, or a new name in a writable
    directory; else a ConfigError."""
    target = Path(os.path.realpath(Path(path).expanduser()))
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"{what} {path}: is not a directory", hint="give a directory")
        if not os.access(target, os.W_OK):
            raise ConfigError(f"{what} {path}: not writable (read-only?)")
        return target
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"{what} {path}: cannot create it in {parent} (read-only?)")
    return target


# --- the one atomic write, directory fsync and file hash of the project ----------------------


def write_atomic(path: str | Path, data: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` all at once: written beside it, then renamed over it, so a
    reader sees the old content or the new, never a part. ``durable``: fsync before the rename
    (a manifest, a pointer); off for caches a crash may lose."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries durable (best effort: skipped where it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
