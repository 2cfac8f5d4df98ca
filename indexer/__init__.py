"""The vector store: book vectors + payloads in Qdrant, embedded (Edge) or on a server.

Import cost stays low: qdrant_edge is cheap; qdrant_client is imported only when a server
store is opened. See docs/contracts.md ("Store") for the interface.
"""

from bookvec.indexer.catalogue import UpsertedBook
from bookvec.indexer.ids import content_hash, point_id
from bookvec.indexer.store import open_store
from bookvec.indexer.types import (
    BookFilter,
    BookPoint,
    BookStore,
    CollectionInfo,
    Hit,
    IndexOptions,
    Progress,
    Record,
    UpsertReport,
)

__all__ = [
    "BookFilter",
    "BookPoint",
    "BookStore",
    "CollectionInfo",
    "Hit",
    "IndexOptions",
    "Progress",
    "Record",
    "UpsertReport",
    "UpsertedBook",
    "content_hash",
    "open_store",
    "point_id",
]
