"""Where state lives for one library call (a home given, or BOOKVEC_HOME), how the library opens
a model bundle and the store, and the small rules the query side shares: genre filter values,
the default search mode, finding an upserted book. Imports neither numpy nor qdrant_client at
module level (a search by title needs neither)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookvec import settings


@dataclass(frozen=True)
class Home:
    """The directories of one bookvec home."""

    root: Path

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def data(self) -> Path:
        return self.root / "data"


def home_of(home: str | Path | None = None) -> Home:
    """``home`` as given, else BOOKVEC_HOME (or the platform's data directory)."""
    return Home(Path(home).expanduser() if home is not None else settings.home())


def qdrant_settings(
    url: str | None, api_key: str | None, collection: str | None
) -> settings.QdrantSettings:
    return settings.QdrantSettings(
        url=url or None,
        api_key=api_key or None,
        collection=collection or settings.DEFAULT_COLLECTION,
    )


def open_store(
    url: str | None = None,
    api_key: str | None = None,
    collection: str | None = None,
    *,
    home: Home | None = None,
    **kwargs: Any,
):
    """The store: a Qdrant server when ``url`` is given, else the embedded Edge store under the
    home. A key sent in clear text to another machine is a warning (``warnings.warn``)."""
    from bookvec.indexer import open_store as _open

    home = home or home_of()
    with warnings.catch_warnings():
        # qdrant-client's own warning is two lines with a source line; say it in one instead,
        # and only where it matters (a key in clear text to another machine).
        warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
        store = _open(qdrant_settings(url, api_key, collection), path=home.store, **kwargs)
    if url and api_key and _clear_text_to_another_host(url):
        warnings.warn(f"the API key goes unencrypted to {url}: use an https:// URL", stacklevel=2)
    return store


def _clear_text_to_another_host(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return parts.scheme == "http" and not loopback


def open_model_bundle(model: str | Path | None = None, *, home: Home | None = None):
    """A bundle by directory, id, or (None) the current one of the home."""
    from bookvec.model.bundle import open_bundle

    return open_bundle(model, models_dir=(home or home_of()).models)


def read_manifest_quietly(model_id: str | None, *, home: Home | None = None):
    """The manifest of a model id if it is on this machine (for labels), else None."""
    from bookvec.model.manifest import manifest_of

    return manifest_of(model_id, (home or home_of()).models)


def genre_filter_values(values) -> tuple[str, ...]:
    """What a person types as a genre -> the canonical genre names stored in payloads."""
    from bookvec.model.corpus.genres import canonical_genres

    if isinstance(values, str):
        values = [values]
    canonical: list[str] = []
    for value in values:
        for genre in canonical_genres(value) or [value.strip().casefold()]:
            if genre not in canonical:
                canonical.append(genre)
    return tuple(canonical)


def default_mode(info) -> str:
    """The mode a search uses when none is given: hybrid where the collection has sparse
    vectors (chosen by measurement, README "Search modes"), else dense."""
    from bookvec.indexer.hybrid import DEFAULT_MODE

    return DEFAULT_MODE if info is not None and info.index.has_sparse else "dense"


def fusion_of(info) -> str | None:
    """How the default hybrid search fuses its two sides (None where it is not hybrid)."""
    from bookvec.indexer.hybrid import describe, for_weighting

    if default_mode(info) != "hybrid":
        return None
    return describe(for_weighting(info.index.sparse_weighting))


def upserted_record(store, query: str, *, exact: bool = False):
    """The store's record (with its vector) of an upserted book a title names, or None."""
    from bookvec.errors import BookvecError
    from bookvec.indexer.catalogue import is_upserted
    from bookvec.library.actions import resolve_store_title

    try:
        if store.info() is None:
            return None
        title = resolve_store_title(store, query, exact=exact)
        record = store.get([title], with_vectors=True).get(title)
    except BookvecError:
        return None
    return record if record is not None and is_upserted(record.payload) else None


def find_upserted(query: str, *, exact: bool = False, home: Home | None = None, **where: Any):
    """upserted_record in the store ``where`` names (url, api_key, collection; default: the
    environment's), opened read-only for this one lookup; None when there is no store."""
    from bookvec.errors import BookvecError

    env = settings.QdrantSettings.from_env()
    url = where.get("url", env.url)
    api_key = where.get("api_key", env.api_key)
    collection = where.get("collection", env.collection)
    try:
        store = open_store(url, api_key, collection, home=home, read_only=True)
    except BookvecError:
        return None
    try:
        return upserted_record(store, query, exact=exact)
    finally:
        store.close()
