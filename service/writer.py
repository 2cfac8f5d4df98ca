"""Writes (upsert, delete) in a child process of the worker, so that the worker's reads keep
their latency while one runs.

Why a process and not the writer thread: Edge's calls hold the GIL while they run (loading the
copy of the shard, writing a batch of points, optimizing, flushing): during a 10,000-book
upsert at 37k books a thread of the same process was stalled for 0.4 to 1.4 s at a time, five
times, and every read of that worker with it. The child is started on the first write (spawn:
a fork of a process running Edge's threads is not safe), keeps its own Index open, runs at
nice +10 (or BOOKVEC_WRITER_NICE), ignores SIGINT and SIGTERM (the worker decides: it lets a
write in progress finish, as it did in its thread) and dies with the worker
(PR_SET_PDEATHSIG: a `kill -9` of the worker stops the write there, as it stopped the thread;
nothing half-written is ever published).
Errors come back as themselves: type, args and attributes, without calling their __init__.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_INDEX: Any = None  # the child's open Index
_CONFIG: dict[str, Any] = {}


NICE = 10  # the child's niceness unless BOOKVEC_WRITER_NICE says otherwise (0-19)


def writer_nice() -> int:
    """The writer's niceness: BOOKVEC_WRITER_NICE (0-19), or NICE."""
    raw = os.environ.get("BOOKVEC_WRITER_NICE", "").strip()
    if not raw:
        return NICE
    if not raw.isdigit() or int(raw) > 19:
        from bookvec.errors import ConfigError

        raise ConfigError(f"BOOKVEC_WRITER_NICE must be 0-19, not {raw!r}")
    return int(raw)


class WriterProcess:
    """One child process running ``work(index, *args)`` calls, one at a time."""

    def __init__(self, open_kwargs: dict[str, Any]) -> None:
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(open_kwargs, writer_nice()),
        )

    def call(self, work: Callable[..., Any], *args: Any) -> Any:
        status, value = self._pool.submit(_run, work, args).result()
        if status == "ok":
            return value
        raise _rebuilt(*value)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _start(open_kwargs: dict[str, Any], nice: int = NICE) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    try:
        os.nice(nice)
    except OSError:
        pass
    _CONFIG.update(open_kwargs)


def _die_with_parent() -> None:
    """SIGKILL this process when the worker that started it dies (Linux; best effort)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the worker died before the call: go too
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _run(work: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    global _INDEX
    try:
        if _INDEX is None:
            import bookvec

            _INDEX = bookvec.open_index(**_CONFIG)
        return "ok", work(_INDEX, *args)
    except BaseException as exc:  # noqa: BLE001 - sent back to the worker, raised there
        return "error", _described(exc)


def _described(exc: BaseException) -> tuple[type, tuple, dict]:
    state = (type(exc), exc.args, dict(vars(exc)))
    try:
        pickle.dumps(state)
    except Exception:  # noqa: BLE001 - whatever it holds, the worker gets its message
        from bookvec.errors import StoreError

        return StoreError, (str(exc),), {"message": str(exc), "hint": None}
    return state


def _rebuilt(kind: type, args: tuple, state: dict) -> BaseException:
    exc = kind.__new__(kind)
    exc.args = args
    vars(exc).update(state)
    return exc
