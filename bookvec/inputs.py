"""Where user input comes from: a path (a regular file, or a FIFO such as `<(zcat x.gz)` or
/dev/stdin: read once, in order), or `-` for standard input, which may be closed."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from bookvec.errors import InputError

STDIN = "<stdin>"


def stdin_binary() -> BinaryIO:
    """Standard input as bytes; InputError when the process has none (`<&-`)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None or stream.closed:
        raise InputError(
            "standard input is closed",
            path=STDIN,
            hint="pipe the data into it (`cat file | bookvec ...`), or give a path instead of -",
        )
    return stream


def readable(path: str | Path) -> bool:
    """True for something that can be read as input: a regular file, a FIFO or a character
    device. False when nothing is there; InputError for a directory or a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", path=str(path)) from None
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return True
    kind = "a directory" if stat.S_ISDIR(mode) else "a socket or device"
    raise InputError(
        f"not a regular file ({kind})", path=str(path), hint="give the path of a file in it"
    )


def is_pipe(path: str | Path) -> bool:
    """A FIFO or character device: its bytes can be read only once."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)
