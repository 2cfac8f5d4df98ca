"""`bookvec info` and ``Index.info``: what model and store a home has, and where their files
live. A section that cannot be read holds {"error": ...} instead (info never fails)."""

from __future__ import annotations

from typing import Any

from bookvec.errors import BookvecError
from bookvec.library.results import Info
from bookvec.library.store import (
    Home,
    default_mode,
    fusion_of,
    home_of,
    open_model_bundle,
    open_store,
)


def model_info(model: str | None = None, *, home: Home | None = None) -> dict[str, Any]:
    try:
        bundle = open_model_bundle(model, home=home)
    except BookvecError as exc:
        return {"error": str(exc)}
    manifest = bundle.manifest
    return {
        "id": bundle.model_id,
        "path": str(bundle.path),
        "created": manifest.created,
        "books": bundle.n_books,
        "links": bundle.n_links,
        "pairs": manifest.counts.pairs,
        "dim": bundle.dim,
        "objective": manifest.config.get("objective"),
        "synthetic": bundle.synthetic,
        "corpus": manifest.corpus.path,
        "metrics": dict(manifest.metrics),
    }


def store_info(
    url: str | None = None,
    api_key: str | None = None,
    collection: str | None = None,
    *,
    home: Home | None = None,
    store=None,
) -> dict[str, Any]:
    """The collection's details; ``store``: an open store to ask (else one is opened)."""
    try:
        if store is not None:
            details = store.info()
        else:
            opened = open_store(url, api_key, collection, home=home, read_only=True)
            try:
                details = opened.info()
            finally:
                opened.close()
    except BookvecError as exc:
        return {"error": str(exc)}
    if details is None:
        name = collection or "books"
        return {"error": f"no collection {name!r} yet (run `bookvec index`)"}
    return {
        "backend": details.backend,
        "collection": details.name,
        "model": details.model_version,
        "dim": details.vector_size,
        "points": details.points,
        "location": details.location,
        "sparse": details.index.sparse_weighting if details.index.has_sparse else None,
        "search_mode": default_mode(details),
        "fusion": fusion_of(details),
        "indexed_vectors": details.indexed_vectors,
        "hnsw_ef": details.index.hnsw_ef,
        "hnsw_calibration": details.calibration,
    }


def info(
    model: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    collection: str | None = None,
    *,
    home: Home | None = None,
    store=None,
) -> Info:
    home = home or home_of()
    return Info(
        home=str(home.root),
        model=model_info(model, home=home),
        store=store_info(url, api_key, collection, home=home, store=store),
    )
