"""The embedded store's reading side: searches, recommend, get, count and titles on the live
generation's shard (EdgeStore's mixin; edge_live.py finds and opens that shard).

Edge has no query-by-id or server-side recommend by id, so search-like and recommend retrieve
the stored vectors first and exclude the examples with a `must_not` HasId.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import qdrant_edge as edge

from bookvec.indexer import filters, hybrid
from bookvec.indexer import title_index as title_keys
from bookvec.indexer.calibrate import CALIBRATION
from bookvec.indexer.edge_shard import SCROLL_PAGE, dense_indexed
from bookvec.indexer.ids import point_id
from bookvec.indexer.points import (
    as_records,
    batched,
    check_examples,
    check_limit,
    check_sparse,
    check_vector,
    first_missing,
    hits,
    ids_by_title,
    recommend_both,
    recommend_vector,
    stored_payload,
)
from bookvec.indexer.types import BookFilter, CollectionInfo, Hit, IndexOptions, Record

if TYPE_CHECKING:
    from bookvec.indexer.generations import Opened


class EdgeReads:
    """Reads of EdgeStore. What it needs of the store: `_require()` (the live generation and
    its shard, opened), `_follow()`, `_live`, `_shard`, `_params` and `_filtered_params` (the
    search params without and with a payload filter), `root`, `collection`, `backend` and
    `hybrid`."""

    backend: str
    root: Path
    collection: str
    hybrid: hybrid.Hybrid
    _live: Opened | None
    _shard: edge.EdgeShard | None
    _params: edge.SearchParams | None
    _filtered_params: edge.SearchParams | None
    _info_cache: tuple[Opened, CollectionInfo] | None = None  # of the live generation

    if TYPE_CHECKING:  # edge_live.EdgeLive's

        def _follow(self) -> None: ...

        def _require(self) -> tuple[Opened, edge.EdgeShard]: ...

    def info(self, *, count: bool = True) -> CollectionInfo | None:
        self._follow()
        if self._live is None or self._shard is None:
            return None
        cached = self._info_cache
        if cached is None or cached[0] is not self._live:  # a generation is never changed
            shard_info = self._shard.info()
            cached = self._info_cache = (
                self._live,
                CollectionInfo(
                    name=self.collection,
                    backend=self.backend,
                    model_version=self._live.meta.model_version,
                    vector_size=self._live.meta.vector_size,
                    points=None,
                    location=str(self._live.path),
                    index=IndexOptions.from_dict(self._live.meta.index),
                    indexed_vectors=dense_indexed(self._shard, shard_info),
                    calibration=self._live.meta.index.get(CALIBRATION),
                ),
            )
        return replace(cached[1], points=self.count()) if count else cached[1]

    def search(
        self,
        vector: Sequence[float],
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        exclude_titles: Iterable[str] = (),
        sparse: tuple[Sequence[int], Sequence[float]] | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        live, shard = self._require()
        query = check_vector(vector, live.meta.vector_size, what="the query vector")
        excluded = [point_id(t) for t in exclude_titles]
        if mode == "dense" and not diverse:
            return self._nearest(shard, query, limit, filter, excluded)
        pair = None if sparse is None else check_sparse(sparse, what="the sparse query")
        return self._by_mode(shard, mode, query, pair, limit, filter, excluded, diverse)

    def search_like(
        self,
        title: str,
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        _, shard = self._require()
        if mode == "dense" and not diverse:
            vectors = self._vectors(shard, [title])
            return self._nearest(shard, vectors[0], limit, filter, [point_id(title)])
        [(dense, sparse)] = self._both_vectors(shard, [title])
        return self._by_mode(shard, mode, dense, sparse, limit, filter, [point_id(title)], diverse)

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        check_examples(positive, negative)
        _, shard = self._require()
        excluded = list(ids_by_title([*positive, *negative]).values())
        if mode == "dense" and not diverse:
            vectors = self._vectors(shard, [*positive, *negative])
            query = recommend_vector(vectors[: len(positive)], vectors[len(positive) :])
            return self._nearest(shard, query, limit, filter, excluded)
        dense, sparse = recommend_both(self._both_vectors(shard, [*positive, *negative]), positive)
        return self._by_mode(shard, mode, dense, sparse, limit, filter, excluded, diverse)

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]:
        _, shard = self._require()
        ids = ids_by_title(titles)
        found: dict[str, Any] = {}
        for batch in batched(list(ids.values()), SCROLL_PAGE):
            for rec in shard.retrieve(batch, with_payload=True, with_vector=with_vectors):
                found[str(rec.id)] = rec
        return as_records(ids, found, with_vectors)

    def count(self, filter: BookFilter | None = None) -> int:
        _, shard = self._require()
        return shard.count(edge.CountRequest(exact=True, filter=filters.to_edge(filter)))

    def title_keys(self):
        """The live generation's title-key index (bookvec.titlekeys.TitleKeys; the caller
        closes it), or None when it has none that matches the shard."""
        live, shard = self._require()
        return title_keys.open_for(live.path, shard)

    def titles(self) -> list[str]:
        _, shard = self._require()
        titles: list[str] = []
        offset = None
        while True:
            request = edge.ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, with_payload=["title"], with_vector=False
            )
            records, offset = shard.scroll(request)
            titles.extend(rec.payload["title"] for rec in records)
            if offset is None:
                return sorted(titles)

    def _vectors(self, shard: edge.EdgeShard, titles: Sequence[str]) -> list[list[float]]:
        ids = ids_by_title(titles)
        records = shard.retrieve(list(ids.values()), with_payload=False, with_vector=True)
        by_id = {str(rec.id): hybrid.split_vector(rec.vector)[0] for rec in records}
        missing = first_missing(titles, [t for t, pid in ids.items() if pid in by_id])
        if missing is not None:
            raise missing
        return [by_id[point_id(title)] for title in titles]

    def _both_vectors(self, shard: edge.EdgeShard, titles: Sequence[str]) -> list[Any]:
        """(dense, sparse) of each title, in order; sparse None where the book has none."""
        ids = ids_by_title(titles)
        records = shard.retrieve(list(ids.values()), with_payload=False, with_vector=True)
        by_id = {str(rec.id): hybrid.split_vector(rec.vector) for rec in records}
        missing = first_missing(titles, [t for t, pid in ids.items() if pid in by_id])
        if missing is not None:
            raise missing
        return [by_id[point_id(title)] for title in titles]

    def _has_sparse(self) -> bool:
        live, cached = self._live, self._info_cache
        if cached is not None and cached[0] is live:
            return cached[1].index.has_sparse
        return live is not None and IndexOptions.from_dict(live.meta.index).has_sparse

    def _by_mode(
        self,
        shard: edge.EdgeShard,
        mode: str,
        dense: Sequence[float],
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
        flt: BookFilter | None,
        exclude_ids: Sequence[str],
        diverse: bool,
    ) -> list[Hit]:
        """A search in `mode` (hybrid.py builds the query), optionally diversified by MMR."""
        if mode == "hybrid":
            sparse = self.hybrid.query_sparse(sparse)
        if not hybrid.searchable(mode, sparse, self._has_sparse, self.root):
            return []
        limit = check_limit(limit)
        has_sparse = sparse is not None and bool(sparse[0])
        if not diverse and mode == "hybrid" and has_sparse and self.hybrid.fusion == "formula":
            return self._fused(shard, list(dense), sparse, limit, flt, exclude_ids)
        if not diverse and (mode == "dense" or (mode == "hybrid" and not has_sparse)):
            return self._nearest(shard, dense, limit, flt, exclude_ids)
        edge_filter = filters.to_edge(flt, exclude_ids)
        top = None
        if mode == "hybrid" and has_sparse and self.hybrid.needs_top:
            top = _sparse_top(shard, sparse, edge_filter)
        request = hybrid.edge_request(
            mode,
            list(dense),
            sparse,
            limit=limit,
            flt=edge_filter,
            params=self._params_for(flt),
            diverse=diverse,
            spec=self.hybrid,
            sparse_top=top,
        )
        return hits(shard.query(request))

    def _params_for(self, flt: BookFilter | None) -> edge.SearchParams | None:
        """A payload filter's searches as the calibration chose (IndexOptions.filtered_search)."""
        return self._params if flt is None or flt.is_empty else self._filtered_params

    def _nearest(
        self,
        shard: edge.EdgeShard,
        vector: Sequence[float],
        limit: int,
        flt: BookFilter | None,
        exclude_ids: Sequence[str],
    ) -> list[Hit]:
        """The `limit` nearest points under `flt`, the excluded ones left out (`_over_fetch`)."""
        limit = check_limit(limit)
        query = edge.Query.Nearest(list(vector))
        params = self._params_for(flt)
        request, excluded = _over_fetch(query, limit, flt, exclude_ids, params, True)
        return hits(_drop(shard.query(request), excluded, limit))

    def _fused(self, shard, dense, sparse, limit, flt, exclude_ids) -> list[Hit]:
        """Hybrid with the formula fusion, as hybrid.edge_request would ask Edge for it: both
        sides' candidates under the filter in one batch, fused here (hybrid.fuse: Edge's
        formula, the same scores), then the payloads of the winners only."""
        pool = hybrid.prefetch_limit(self.hybrid, limit, False)
        dense_request, excluded = _over_fetch(
            edge.Query.Nearest(dense), pool, flt, exclude_ids, self._params_for(flt), False
        )
        # The sparse side keeps its `must_not` (cheap there): its scores often tie (books
        # with the same pages), and which of the tied ones Edge returns depends on the limit.
        sparse_request = edge.QueryRequest(
            limit=pool,
            query=edge.Query.Nearest(edge.SparseVector(*sparse), using=hybrid.SPARSE),
            filter=filters.to_edge(flt, exclude_ids),
            with_payload=False,
            with_vector=False,
        )
        dense_side, sparse_side = shard.query_batch(
            edge.QueryBatchRequest([dense_request, sparse_request])
        )
        # Each `.id` builds a new uuid.UUID: read once, keyed by its integer (hashing UUIDs
        # in Python cost more than Edge's search).
        uuids: dict[int, UUID] = {}
        sides: list[dict[int, float]] = []
        for side in (dense_side, sparse_side):  # the sparse side has no excluded point
            scores: dict[int, float] = {}
            for point in side:
                pid = point.id
                key = pid.int
                if key not in excluded:
                    uuids[key] = pid
                    scores[key] = point.score
                    if len(scores) == pool:
                        break
            sides.append(scores)

        def vectors(keys: list[int]) -> dict[int, Any]:
            found = shard.retrieve([uuids[k] for k in keys], with_payload=False, with_vector=[""])
            return {rec.id.int: rec.vector for rec in found}

        best = hybrid.fuse(sides, self.hybrid, limit, dense, vectors)
        if not best:
            return []
        records = shard.retrieve([uuids[k] for k, _ in best], with_payload=True, with_vector=False)
        payloads = {}
        for rec in records:
            pid = rec.id
            payloads[pid.int] = (str(pid), stored_payload(rec.payload))
        out = []
        for key, score in best:
            if key in payloads:
                pid, payload = payloads[key]
                out.append(Hit(title=payload["title"], score=score, payload=payload, id=pid))
        return out


def _sparse_top(shard: edge.EdgeShard, sparse, flt) -> float | None:
    """The best sparse score under `flt` (the normalised formula's top; hybrid.py)."""
    request = edge.QueryRequest(
        limit=1,
        query=edge.Query.Nearest(edge.SparseVector(*sparse), using=hybrid.SPARSE),
        filter=flt,
        with_payload=False,
        with_vector=False,
    )
    found = shard.query(request)
    return found[0].score if found else None


def _over_fetch(query, limit, flt, exclude_ids, params, payload) -> tuple[Any, set[int]]:
    """A request for `limit` points plus as many as are excluded, with no `must_not` HasId:
    Edge checks that condition point by point (half of a filtered dense search at 37k books),
    and dropping the excluded ones from the answer (`_drop`) leaves the same points."""
    excluded = {UUID(pid).int for pid in exclude_ids}  # Edge's ids are UUIDs: as integers
    request = edge.QueryRequest(
        limit=limit + len(excluded),
        query=query,
        filter=filters.to_edge(flt),
        params=params,
        with_payload=payload,
        with_vector=False,
    )
    return request, excluded


def _drop(points: list[Any], excluded: set[int], limit: int) -> list[Any]:
    if excluded:  # each `.id` builds a uuid.UUID: compared as integers
        points = [p for p in points if p.id.int not in excluded]
    return points[:limit]
