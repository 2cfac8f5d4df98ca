"""The records an upsert rejects, streamed: counted, the first few kept for the report, every
one written to `--rejects FILE` as it comes, so 500,000 rejects cost the memory of a few.

The file is written as a hidden temporary beside FILE and renamed over it when the run ends,
so a run that stops half-way never leaves a file that looks complete. Its lines are in input
order: a book the model cannot place is only known once its batch is folded in, so a reader
reject that comes while books of a batch wait is held until that batch is done (at most
HOLD of them; past that they are written as they come).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bookvec import disk
from bookvec.errors import ConfigError
from bookvec.outfiles import check_output, is_stdout
from bookvec.safetext import json_safe

KEEP = 100  # rejects listed in the --json report (the count is always whole)
WARN = 10  # rejects printed as warnings on stderr; then one line with the count
HOLD = 10_000

Reject = tuple[int | None, str | None, str]  # line, title, reason


def as_dict(item: Reject) -> dict[str, Any]:
    line, title, reason = item
    return {"line": line, "title": title, "reason": reason}


class Rejects:
    """A sink for rejected records: ``append`` (one, from the reader), ``extend`` (a folded
    batch's: the batch is done), ``commit`` at the end or ``discard`` on failure."""

    def __init__(self, path: str | None = None) -> None:
        self.count = 0
        self.kept: list[Reject] = []
        self.path = path
        self._held: list[Reject] = []
        self._waiting = False  # books read but not folded in yet
        self._handle = None
        self._tmp: Path | None = None
        if path is not None:
            # symlinks are written through, never replaced; `-`, a FIFO or a character device
            # is written to directly (there is nothing to rename over)
            target = check_output(path, what="--rejects")
            self._target = target
            direct = is_stdout(target) or (target.exists() and not target.is_file())
            try:
                if is_stdout(target):
                    self._handle = open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)
                elif direct:
                    self._handle = open(target, "w", encoding="utf-8")
                else:
                    self._tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                    self._handle = open(self._tmp, "w", encoding="utf-8")
            except OSError as exc:
                raise self._error(exc) from None

    def books(self, books: Iterable[Any]) -> Iterator[Any]:
        """The books, marking that some wait to be folded in (rejects are held meanwhile)."""
        for book in books:
            self._waiting = True
            yield book

    def append(self, item: Reject) -> None:
        if self._waiting:
            self._held.append(item)
            if len(self._held) >= HOLD:
                self._release()
        else:
            self._emit(item)

    def extend(self, items: Iterable[Reject]) -> None:
        """A batch was folded in: its rejects and those held meanwhile, in line order."""
        self._held.extend(items)
        self._waiting = False
        self._release()

    def commit(self) -> None:
        self._release()
        if self._handle is None:
            return
        try:
            with disk.guard(self._target, what=f"writing --rejects {self.path}"):
                self._handle.close()
                if self._tmp is not None:
                    os.replace(self._tmp, self._target)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from None
        except BaseException:
            self.discard()
            raise
        self._handle = None

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def _release(self) -> None:
        held, self._held = self._held, []
        for item in sorted(held, key=lambda r: (r[0] is None, r[0] or 0)):
            self._emit(item)

    def _emit(self, item: Reject) -> None:
        self.count += 1
        if len(self.kept) < KEEP:
            self.kept.append(item)
        if self._handle is not None:
            try:
                with disk.guard(self._target, what=f"writing --rejects {self.path}"):
                    line = json.dumps(as_dict(item), ensure_ascii=False)
                    self._handle.write(json_safe(line) + "\n")
            except OSError as exc:
                self.discard()
                raise self._error(exc) from None
            except BaseException:
                self.discard()
                raise

    def _error(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"--rejects {self.path}: cannot write it: {exc.strerror or exc}",
            hint="give a path in a writable directory",
        )
