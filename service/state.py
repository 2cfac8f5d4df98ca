"""What one worker holds: the config, an index for reads and one for writes, and the lock that
serialises writes across threads and worker processes (the store itself lets one writer in and
fails the others fast; the server queues them instead, so none is lost).

Reads run on the event loop, one at a time per worker, on their own Index; writes run one at a
time under the write lock, from one writer thread per worker, in a child process of the worker
at nice +10 (service/writer.py: Edge's calls hold the GIL, so in the worker itself a write
stalled its reads for up to a second at a time). The embedded store's generations let the
reader answer from the old generation while a write builds the next (indexer/generations.py).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bookvec.errors import BookvecError, DataNotFoundError
from bookvec.service.config import ServeConfig

T = TypeVar("T")


class Service:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._reader: Any = None
        self._writer: Any = None
        self._ready = False
        self._cache: dict[str, tuple[float, Any]] = {}
        self._thread_lock = threading.Lock()
        self._writer_thread = ThreadPoolExecutor(
            1, thread_name_prefix="bookvec-writer", initializer=_background_priority
        )
        self._open_lock = threading.Lock()
        self.closed = False

    def _open(self) -> Any:
        import bookvec

        c = self.config
        return bookvec.open_index(
            home=c.home, url=c.url, api_key=c.qdrant_api_key, collection=c.collection, model=c.model
        )

    def start(self) -> None:
        """Open the read index and check it can answer; a home without a model or store yet
        leaves the server up and not ready (503 with the reason) until one appears."""
        self.not_ready()

    def reader(self) -> Any:
        """The read index, once it can answer (DataNotFoundError, BundleError... until then:
        503). Checked until the first success only: a ready server does no extra work."""
        if self._ready:
            return self._reader
        with self._open_lock:
            if self._reader is None:
                self._reader = self._open()
            index = self._reader
            if index.store.info() is None:
                raise DataNotFoundError(
                    f"no collection {self.config.collection!r} in the store yet",
                    hint="run `bookvec index` (the server becomes ready without a restart)",
                )
            index.model.bundle  # noqa: B018 - opens the model: raises if there is none
            self._ready = True
        return index

    def not_ready(self) -> BookvecError | None:
        """Why reads cannot be answered now, or None."""
        try:
            self.reader()
        except BookvecError as exc:
            return exc
        return None

    def cached(self, name: str, compute, ttl: float = 30.0) -> Any:
        """A read answer that costs a scan (facets): kept ``ttl`` seconds, dropped by this
        worker's writes."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = compute()
        self._cache[name] = (now, value)
        return value

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """``work(index, *args)`` in this worker's writer process (service/writer.py: reads
        keep their latency meanwhile), holding the write lock; awaited. ``work`` and ``args``
        are pickled: a function of a module, and plain data."""
        import asyncio

        def run() -> T:
            with self.writing():
                return self._writer_process().call(work, *args)

        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, run)

    def _writer_process(self):
        if self._writer is None:
            from bookvec.service.writer import WriterProcess

            c = self.config
            self._writer = WriterProcess(
                {
                    "home": c.home,
                    "url": c.url,
                    "api_key": c.qdrant_api_key,
                    "collection": c.collection,
                    "model": c.model,
                }
            )
        return self._writer

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held by one write alone across every worker of this home."""
        with self._thread_lock, _home_lock(self.config):
            try:
                yield
            finally:
                self._cache.clear()

    def close(self) -> None:
        self.closed = True
        self._writer_thread.shutdown(wait=True)  # a write in progress completes
        for index in (self._writer, self._reader):
            if index is not None:
                index.close()
        self._writer = self._reader = None


def _background_priority() -> None:
    """The calling thread (and the threads it starts) at nice +10; Linux niceness is per
    thread. Best effort: where it is not allowed, writes run at the normal priority."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
    except (AttributeError, OSError):
        pass


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
