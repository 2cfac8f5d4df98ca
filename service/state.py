"""What one worker holds: the config, an index for reads and one for writes, and the lock that
serialises writes across threads and worker processes (the store itself lets one writer in and
fails the others fast; the server queues them instead, so none is lost).

Reads run on the event loop, one at a time per worker, on their own Index; writes run in the
thread pool on a second Index under the write lock. The embedded store's generations let the
reader answer from the old generation while a write builds the next (indexer/generations.py).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bookvec.errors import BookvecError, DataNotFoundError
from bookvec.service.config import ServeConfig


class Service:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._reader: Any = None
        self._writer: Any = None
        self._why_not: BookvecError | None = None
        self._thread_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self.closed = False

    def _open(self) -> Any:
        import bookvec

        c = self.config
        return bookvec.open_index(
            home=c.home, url=c.url, api_key=c.qdrant_api_key, collection=c.collection, model=c.model
        )

    def start(self) -> None:
        """Open the read index; a home without a model or store yet leaves the server up and
        not ready (503 with the reason) until one appears."""
        try:
            self.reader()
        except BookvecError:
            pass

    def reader(self) -> Any:
        if self._reader is None:
            with self._open_lock:
                if self._reader is None:
                    try:
                        self._reader = self._open()
                        self._why_not = None
                    except BookvecError as exc:
                        self._why_not = exc
                        raise
        return self._reader

    def not_ready(self) -> BookvecError | None:
        """Why reads cannot be answered now, or None."""
        try:
            self.reader()
        except BookvecError as exc:
            return exc
        return None

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """The write index, held by this request alone across every worker of this home."""
        with self._thread_lock, _home_lock(self.config):
            if self._writer is None:
                self._writer = self._open()
            yield self._writer

    def close(self) -> None:
        self.closed = True
        for index in (self._writer, self._reader):
            if index is not None:
                index.close()
        self._writer = self._reader = None


def runtime_dir(config: ServeConfig) -> Path:
    from bookvec import settings

    home = Path(config.home) if config.home else settings.home()
    return home / "serve"


@contextmanager
def _home_lock(config: ServeConfig) -> Iterator[None]:
    """flock on BOOKVEC_HOME/serve/write.lock: blocks until the other workers' writes end."""
    directory = runtime_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / "write.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DataNotFoundError(
            f"cannot create the server's write lock in {directory}: {exc.strerror or exc}",
            hint="make BOOKVEC_HOME writable for the server",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
