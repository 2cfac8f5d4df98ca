"""Whether a `bookvec serve` owns a home's embedded store: a small file it writes when it
starts and removes when it stops (BOOKVEC_HOME/serve/owner.json: pid, address, collection).
A CLI write checks it first and says to go through the server instead (`check_not_served`);
a file left by a server that died is ignored (its pid is gone)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bookvec.errors import StoreLockedError

OWNER = "owner.json"


def owner_path(home: str | Path) -> Path:
    return Path(home) / "serve" / OWNER


def claim(home: str | Path, *, where: str, collection: str) -> Path:
    path = owner_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "url": where, "collection": collection}
    temporary = path.with_name(f".{OWNER}.{os.getpid()}")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temporary, path)
    return path


def release(path: Path) -> None:
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def serving(home: str | Path, collection: str | None = None) -> dict[str, Any] | None:
    """The live server's record for this home (and collection), or None."""
    try:
        record = json.loads(owner_path(home).read_text(encoding="utf-8"))
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None  # this process is the server: its own writes go ahead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    if collection is not None and record.get("collection") not in (None, collection):
        return None
    return record


def check_not_served(home: str | Path, collection: str | None = None) -> None:
    """StoreLockedError naming the server when one owns this home's store."""
    record = serving(home, collection)
    if record is not None:
        url = record.get("url", "the server")
        raise StoreLockedError(
            f"a bookvec server (pid {record['pid']}) owns the store of this home",
            hint=f"write through it instead: POST {url}/api/books (upsert) or "
            f"DELETE {url}/api/books?title=... with the server's API key",
        )
