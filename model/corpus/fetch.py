"""Download a file over HTTP(S), resumably, and verify it before it is put in place.

The bytes go to ``<dest>.part``; an interrupted download resumes from there with a ``Range``
request. Only a file whose size and sha256 match is moved to ``dest`` (``os.replace``), so
``dest`` never holds a partial or corrupt download. No torch or polars here: the CLI imports
this on every ``fetch``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from bookvec.errors import DownloadError
from bookvec.outfiles import sha256_file

CORPUS_URL = (
    "https://raw.githubusercontent.com/WillKoehrsen/wikipedia-data-science/master/"
    "data/found_books_filtered.ndjson"
)
CORPUS_SIZE = 58_925_764
CORPUS_SHA256 = "0d486159c46313ac3498a76ef4abfc9f2db3f302e564cfe4c5fcec5298ace4b7"
CORPUS_FILENAME = "found_books_filtered.ndjson"

# Wait before retry n (0-based): min(RETRY_BACKOFF_S * 2**n, RETRY_BACKOFF_MAX_S) seconds.
RETRY_BACKOFF_S = 1.0
RETRY_BACKOFF_MAX_S = 10.0

_LOCAL_HINT = "or pass a local file with --data PATH"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class _Progress(Protocol):
    def start(self, total: int | None, completed: int) -> None: ...
    def advance(self, n: int) -> None: ...


class _NoProgress:
    def start(self, total: int | None, completed: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[_Progress]:
    """The download's bar from the installed display (``bookvec.progress``), shown from the
    first answer of the server on, so a host that cannot be reached prints no bar."""
    if not enabled:
        yield _NoProgress()
        return
    from bookvec import progress

    bar = progress.bar("download", label=label)
    try:
        yield bar
    finally:
        bar.stop()


class _Retry(Exception):
    """A transient failure: wait and try again, resuming from what is on disk."""


@dataclass
class _State:
    """What one fetch has learnt so far."""

    kept_old_bytes: bool = False  # the part still holds bytes from before this call
    answered: bool = False  # the server has answered once: later connect errors are transient


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def _mismatch(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Why ``path`` is not the expected file, or None when it is (or nothing is expected)."""
    got = path.stat().st_size
    if size is not None and got != size:
        return f"expected {size:,} bytes, got {got:,}"
    if sha256 is not None:
        digest = sha256_file(path)
        if digest != sha256.lower():
            return f"expected sha256 {sha256.lower()}, got {digest}"
    return None


def _part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def _download(
    client: httpx.Client,
    url: str,
    part: Path,
    size: int | None,
    bar: _Progress,
    retries: int,
) -> bool:
    """Bring ``part`` up to the whole file, retrying transient failures.

    Returns whether the result still holds bytes that were in ``part`` before this call: a
    stale part from another version of the file can only be told apart by its checksum.
    """
    if size is not None and _part_size(part) > size:
        part.unlink()
    state = _State(kept_old_bytes=_part_size(part) > 0)
    if size is not None and part.exists() and _part_size(part) == size:
        return state.kept_old_bytes  # already complete: the caller verifies it, no request

    failures = 0  # consecutive failed attempts that wrote nothing
    while True:
        offset = _part_size(part)
        try:
            _attempt(client, url, part, offset, size, bar, state)
            return state.kept_old_bytes
        except _Retry as exc:
            reason = str(exc)
        except httpx.ConnectError as exc:
            if not state.answered:
                raise DownloadError(
                    f"cannot reach {_netloc(url)}: {exc}; check your network, {_LOCAL_HINT}"
                ) from exc
            reason = f"ConnectError: {exc}"
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if _part_size(part) > offset:
            failures = 0  # progress was made: only stalls use up the retries
        else:
            failures += 1
        if failures > retries and not state.answered:  # e.g. every connect timed out
            raise DownloadError(
                f"cannot reach {_netloc(url)}: {reason}; check your network, {_LOCAL_HINT}"
            )
        if failures > retries:
            raise DownloadError(
                f"downloading {url} failed after {retries} retries: {reason}",
                hint=f"run the command again to resume from byte {_part_size(part):,}, "
                + _LOCAL_HINT,
            )
        time.sleep(min(RETRY_BACKOFF_S * 2 ** max(failures - 1, 0), RETRY_BACKOFF_MAX_S))


def _restart(part: Path, state: _State) -> None:
    part.unlink(missing_ok=True)
    state.kept_old_bytes = False


def _attempt(
    client: httpx.Client,
    url: str,
    part: Path,
    offset: int,
    size: int | None,
    bar: _Progress,
    state: _State,
) -> None:
    """One request that appends to (206) or rewrites (200) the part.

    Raises _Retry for what is worth another try, DownloadError for what is not.
    """
    headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
    with client.stream("GET", url, headers=headers) as response:
        state.answered = True
        status = response.status_code
        if status == 416 and offset > 0:
            total = _content_range(response)[2]
            if total == offset or (total is None and size == offset):
                return  # the part is already the whole file
            _restart(part, state)  # the part is longer than the file: start over
            raise _Retry(f"server has {total} bytes, the part has {offset:,}; starting over")
        if status >= 500 or status == 429:
            raise _Retry(f"server answered {status} {response.reason_phrase}")
        if status not in (200, 206):
            raise DownloadError(
                f"{url}: server answered {status} {response.reason_phrase}",
                hint=f"check the URL, {_LOCAL_HINT}",
            )

        if status == 206:
            start, _, total = _content_range(response)
            if start != offset:
                _restart(part, state)
                raise _Retry(f"server resumed at byte {start}, not {offset:,}; starting over")
            mode, completed = "ab", offset
        else:  # 200: a fresh download, or a server that ignores Range
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            mode, completed = "wb", 0
            state.kept_old_bytes = False
        if size is not None and total is not None and total != size:
            _restart(part, state)
            raise DownloadError(
                f"{url}: the server's file does not match: expected {size:,} bytes, got {total:,}",
                hint=f"the file on the server changed; check the URL, {_LOCAL_HINT}",
            )

        bar.start(size if size is not None else total, completed)
        try:
            with part.open(mode) as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
                    bar.advance(len(chunk))
                    completed += len(chunk)
                    if size is not None and completed > size:
                        break  # more than expected: the size check rejects it
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DownloadError(
                f"cannot write {part}: {exc}",
                hint="free some disk space or choose another data directory, " + _LOCAL_HINT,
            ) from exc


def _content_range(response: httpx.Response) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total) from Content-Range; None for what is absent or '*'."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
    if not match:
        return None, None, None
    first, last, total = match.groups()
    return (
        int(first) if first else None,
        int(last) if last else None,
        int(total) if total and total != "*" else None,
    )


def fetch(
    url: str,
    dest: Path,
    *,
    size: int | None,
    sha256: str | None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 3,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``, verified against ``size`` and ``sha256``.

    A ``dest`` that already verifies is returned without a request. Otherwise the bytes go to
    ``<dest>.part`` (resumed with ``Range`` when it exists) and are moved to ``dest`` only once
    they match. Transient failures (resets, timeouts, 5xx) are retried with bounded backoff,
    resuming from the bytes on disk; ``retries`` counts consecutive attempts that made no
    progress. Raises DownloadError when the host cannot be reached, the server refuses, the
    retries run out, or the file does not match (then the ``.part`` is deleted too).
    """
    dest = Path(dest)
    if dest.is_file() and _mismatch(dest, size, sha256) is None:
        return dest
    # A dest that does not verify is left alone until a verified download replaces it.
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create {dest.parent}: {exc}", hint="choose another data directory"
        ) from exc

    client = httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        # Byte ranges must count the bytes we store, not a compressed encoding of them.
        headers={"Accept-Encoding": "identity", "User-Agent": "bookvec"},
    )
    try:
        with client, _progress(progress, dest.name) as bar:
            used_old_part = _download(client, url, part, size, bar, retries)
            problem = _mismatch(part, size, sha256)
            if problem is not None and used_old_part:
                # The .part left by an earlier run may belong to another version: start over.
                part.unlink()
                _download(client, url, part, size, bar, retries)
                problem = _mismatch(part, size, sha256)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DownloadError(f"cannot download {url!r}: {exc}", hint="check the URL") from exc
    except httpx.HTTPError as exc:  # proxy errors, undecodable bodies, ...
        raise DownloadError(
            f"downloading {url} failed: {type(exc).__name__}: {exc}",
            hint=f"run the command again to resume, {_LOCAL_HINT}",
        ) from exc
    if problem is not None:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: downloaded file does not match: {problem}",
            hint=f"the file on the server changed or was corrupted in transit; "
            f"run the command again, {_LOCAL_HINT}",
        )
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise DownloadError(
            f"cannot move {part} to {dest}: {exc}",
            hint="remove what is in the way, or choose another data directory",
        ) from exc
    return dest


def fetch_corpus(
    data_dir: Path,
    *,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 3,
) -> Path:
    """Download the full Wikipedia book corpus into ``data_dir`` (or return it if already there)."""
    return fetch(
        CORPUS_URL,
        Path(data_dir) / CORPUS_FILENAME,
        size=CORPUS_SIZE,
        sha256=CORPUS_SHA256,
        progress=progress,
        timeout=timeout,
        retries=retries,
    )
