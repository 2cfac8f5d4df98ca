"""Typed errors. The library raises these; only the CLI turns them into one-line messages
and exit codes. Every message says what is wrong, where, and how to fix it."""

from __future__ import annotations


class BookvecError(Exception):
    """Base class: a user or data problem the CLI reports as one line with exit code 1."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(BookvecError):
    """A corpus or input file is malformed. Carries the file and line where it went wrong."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        title: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(f"{path}:{line}" if line is not None else str(path))
        if title:
            where.append(f"title {title!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.path = path
        self.line = line
        self.title = title


class ConfigError(BookvecError):
    """An option or setting has an invalid value."""


class DataNotFoundError(BookvecError):
    """A corpus, bundle or collection that a command needs does not exist yet."""


class DownloadError(BookvecError):
    """A download failed or its content did not match the expected size or checksum."""


class BundleError(BookvecError):
    """A model bundle is missing, incomplete, corrupt or of an unknown format."""


class BundleFormatError(BundleError):
    """A model bundle of another format version (an older bookvec's): train it again."""

    def __init__(self, message: str, *, version: object, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.version = version


class TitleNotFoundError(BookvecError):
    """A title is not known. ``suggestions`` holds the closest known titles."""

    def __init__(self, title: str, suggestions: list[str] | None = None, *, what: str = "book"):
        self.title = title
        self.suggestions = list(suggestions or [])
        hint = (
            "did you mean: " + "; ".join(repr(s) for s in self.suggestions)
            if self.suggestions
            else "check the spelling, or type a shorter part of it"
        )
        super().__init__(f"unknown {what} {title!r}", hint=hint)


class AmbiguousTitleError(BookvecError):
    """A loose title matches several books (or links); ``candidates`` lists them."""

    def __init__(self, title: str, candidates: list[str], *, what: str = "book") -> None:
        self.title = title
        self.candidates = list(candidates)
        super().__init__(
            f"{title!r} matches several {what}s",
            hint="use one of: " + "; ".join(repr(c) for c in self.candidates),
        )


class StoreError(BookvecError):
    """The vector store refused an operation or cannot be reached."""


class StoreLockedError(StoreError):
    """The embedded store is opened by another process."""


class ModelMismatchError(StoreError):
    """The collection holds vectors of another model (or another vector size)."""


class DiskFullError(BookvecError):
    """A write would not fit (or did not fit) on the disk: ``device`` is its mount point."""

    def __init__(self, device: str, need_mb: int, *, what: str | None = None) -> None:
        self.device = device
        self.need_mb = need_mb
        doing = f" ({what})" if what else ""
        super().__init__(f"no space left on {device}{doing}: free {need_mb} MB and retry")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, carrying what had been done when it came (the CLI prints it)."""

    def __init__(self, message: str, *, done: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.done = done
