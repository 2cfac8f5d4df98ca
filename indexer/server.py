"""The server backend: a Qdrant server through qdrant-client (tests: `QdrantClient(":memory:")`).

Users name the collection `books`; on the server it is an alias of a physical collection
`books_<time>_<rand>`. A full reindex creates a new physical collection, uploads into it
(`wait=True`), moves the alias in one alias-actions call, then drops the old collection.
The model version and vector size are collection metadata (`metadata=` on create_collection:
Qdrant server >= 1.16, qdrant-client >= 1.16).

ServerStore is put together from its jobs: server.py (here) reads and searches;
server_write.py writes; server_client.py talks to the server (options, `connect`, retried
calls and their errors, collections and aliases).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, NoReturn

from qdrant_client import QdrantClient, models

from bookvec.errors import BookvecError, ModelMismatchError
from bookvec.indexer import filters, hybrid
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
    stored_payload,
)
from bookvec.indexer.retry import Retry
from bookvec.indexer.server_client import (  # noqa: F401 - ServerOptions, connect: for callers
    ENV_GRPC,
    ENV_PARALLEL,
    ENV_TIMEOUT,
    MAX_PARALLEL,
    MAX_TIMEOUT,
    PAGE,
    ServerOptions,
    _search_params,
    _shown,
    connect,
)
from bookvec.indexer.server_write import ServerWrites
from bookvec.indexer.types import BookFilter, CollectionInfo, Hit, IndexOptions, Record


class ServerStore(hybrid.HybridSpec, ServerWrites):
    backend = "server"

    def __init__(
        self,
        client: QdrantClient,
        *,
        collection: str = "books",
        read_only: bool = False,
        options: ServerOptions | None = None,
        owns_client: bool = False,
        retry: Retry | None = None,
    ) -> None:
        self.client = client
        self.alias = collection
        self.read_only = read_only
        self.options = options or ServerOptions()
        o = self.options
        self._retry = retry or Retry(o.retries, o.backoff, o.max_backoff)
        self._owns_client = owns_client
        init = client.init_options
        self.location = _shown(
            str(init.get("url") or init.get("location") or init.get("path") or "")
        )
        # Local mode searches exactly, ignores search params (and warns about them) and is not
        # thread-safe.
        self.local = bool(init.get("path")) or init.get("location") == ":memory:"
        self._size: int | None = None  # the collection's vector size, for checking queries
        self._params: Any = None  # search params of the collection (hnsw_ef, quantization)
        self._sparse: bool | None = None  # whether the collection has sparse vectors

    # --- reading -------------------------------------------------------------------------------
    def info(self, *, count: bool = True) -> CollectionInfo | None:
        physical = self._physical()
        if physical is None:
            return None
        described = self._call("read the collection", self.client.get_collection, physical)
        meta = (described.config.metadata or {}).get("bookvec") or {}
        params = described.config.params
        size = params.vectors.size if isinstance(params.vectors, models.VectorParams) else 0
        options = IndexOptions.from_dict(meta.get("index"))
        self._size = size
        self._sparse = options.has_sparse
        self._learn_weighting(options.sparse_weighting)
        self._params = None if self.local else _search_params(options)
        return CollectionInfo(
            name=physical,
            backend=self.backend,
            model_version=meta.get("model_version"),
            vector_size=size,
            points=self.count() if count else None,
            location=self.location,
            index=options,
            indexed_vectors=described.indexed_vectors_count,
            shards=int(meta.get("shards") or params.shard_number or 1),
            replicas=int(meta.get("replicas") or params.replication_factor or 1),
        )

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
        try:
            query = check_vector(vector, self._vector_size(), what="the query vector")
        except ModelMismatchError:
            self._size = None  # reindexed with another model since we looked? look again
            query = check_vector(vector, self._vector_size(), what="the query vector")
        excluded = [point_id(t) for t in exclude_titles]
        if mode == "dense" and not diverse:
            return self._query(query, limit, filter, excluded)
        pair = None if sparse is None else check_sparse(sparse, what="the sparse query")
        return self._by_mode(mode, query, pair, limit, filter, excluded, diverse)

    def search_like(
        self,
        title: str,
        *,
        limit: int = 10,
        filter: BookFilter | None = None,
        mode: str = "dense",
        diverse: bool = False,
    ) -> list[Hit]:
        if mode != "dense" or diverse:  # both vectors of the example, then the mode's query
            [(dense, sparse)] = self._both_vectors([title])
            return self._by_mode(mode, dense, sparse, limit, filter, [point_id(title)], diverse)
        try:  # query by id: the server uses the stored vector and leaves the example out
            return self._query(point_id(title), limit, filter, ())
        except BookvecError as exc:
            self._raise_missing([title], exc)

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
        if mode != "dense" or diverse:
            vectors = self._both_vectors([*positive, *negative])
            dense, sparse = recommend_both(vectors, positive)
            excluded = list(ids_by_title([*positive, *negative]).values())
            return self._by_mode(mode, dense, sparse, limit, filter, excluded, diverse)
        query = models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[point_id(t) for t in positive],
                negative=[point_id(t) for t in negative] or None,
                strategy=models.RecommendStrategy.AVERAGE_VECTOR,  # what EdgeStore computes
            )
        )
        try:
            return self._query(query, limit, filter, ())
        except BookvecError as exc:
            self._raise_missing([*positive, *negative], exc)

    def get(self, titles: Iterable[str], *, with_vectors: bool = False) -> dict[str, Record]:
        ids = ids_by_title(titles)
        found: dict[str, Any] = {}
        for batch in batched(list(ids.values()), PAGE):
            records = self._call(
                "read points",
                self.client.retrieve,
                self.alias,
                ids=batch,
                with_payload=True,
                with_vectors=with_vectors,
            )
            found.update((str(rec.id), rec) for rec in records)
        return as_records(ids, found, with_vectors)

    def count(self, filter: BookFilter | None = None) -> int:
        flt = filters.to_server(filter)
        result = self._call(
            "count points", self.client.count, self.alias, count_filter=flt, exact=True
        )
        return result.count

    def titles(self) -> list[str]:
        titles: list[str] = []
        offset = None
        while True:
            records, offset = self._call(
                "list titles",
                self.client.scroll,
                self.alias,
                limit=PAGE,
                offset=offset,
                with_payload=["title"],
                with_vectors=False,
            )
            titles.extend(rec.payload["title"] for rec in records)
            if offset is None:
                return sorted(titles)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> ServerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- helpers -------------------------------------------------------------------------------
    def _query(
        self, query: Any, limit: int, flt: BookFilter | None, exclude_ids: Sequence[str]
    ) -> list[Hit]:
        response = self._call(
            "search",
            self.client.query_points,
            collection_name=self.alias,
            query=query,
            query_filter=filters.to_server(flt, exclude_ids),
            search_params=self._search_params(),
            limit=check_limit(limit),
            with_payload=True,
            with_vectors=False,
        )
        return hits(response.points)

    def _has_sparse(self) -> bool:
        if self._sparse is None:
            self.info()
        return bool(self._sparse)

    def _both_vectors(self, titles: Sequence[str]) -> list[Any]:
        """(dense, sparse) of each title, in order; sparse None where the book has none."""
        records = self.get(titles, with_vectors=True)
        missing = first_missing(titles, records.keys())
        if missing is not None:
            raise missing
        return [(records[t].vector, records[t].sparse) for t in titles]

    def _by_mode(
        self,
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
        if not hybrid.searchable(mode, sparse, self._has_sparse, f"collection {self.alias!r}"):
            return []
        server_filter = filters.to_server(flt, exclude_ids)
        has_sparse = sparse is not None and bool(sparse[0])
        if not diverse and mode == "hybrid" and has_sparse and self.hybrid.fusion == "formula":
            return self._fused(list(dense), sparse, check_limit(limit), server_filter)
        top = None
        if mode == "hybrid" and sparse is not None and sparse[0] and self.hybrid.needs_top:
            top = self._sparse_top(sparse, server_filter)
        kwargs = hybrid.server_query(
            mode,
            list(dense),
            sparse,
            limit=check_limit(limit),
            flt=server_filter,
            params=self._search_params(),
            diverse=diverse,
            spec=self.hybrid,
            sparse_top=top,
        )
        response = self._call(
            "search",
            self.client.query_points,
            collection_name=self.alias,
            with_payload=True,
            with_vectors=False,
            **kwargs,
        )
        return hits(response.points)

    def _fused(self, dense: list[float], sparse, limit: int, flt: Any) -> list[Hit]:
        """Hybrid with the formula fusion, as on Edge (edge_read.py): both sides' candidates
        under the filter in one batch, `hybrid.fuse` over them (the vectors of the points only
        the sparse side found, where they could make the list), then the winners' payloads."""
        pool = hybrid.prefetch_limit(self.hybrid, limit, False)
        requests = [
            models.QueryRequest(
                query=dense, filter=flt, params=self._search_params(), limit=pool,
                with_payload=False, with_vector=False,
            ),
            models.QueryRequest(
                query=models.SparseVector(indices=list(sparse[0]), values=list(sparse[1])),
                using=hybrid.SPARSE, filter=flt, limit=pool, with_payload=False,
                with_vector=False,
            ),
        ]  # fmt: skip
        dense_side, sparse_side = self._call(
            "search",
            self.client.query_batch_points,
            collection_name=self.alias,
            requests=requests,
        )
        sides = [{str(p.id): p.score for p in dense_side.points}]
        sides.append({str(p.id): p.score for p in sparse_side.points})

        def vectors(keys: list[str]) -> dict[str, Any]:
            found = self._retrieve(keys, payload=False, vectors=True)
            return {str(rec.id): hybrid.split_vector(rec.vector)[0] for rec in found}

        best = hybrid.fuse(sides, self.hybrid, limit, dense, vectors)
        if not best:
            return []
        records = self._retrieve([key for key, _ in best], payload=True, vectors=False)
        payloads = {str(rec.id): stored_payload(rec.payload) for rec in records}
        return [
            Hit(title=payloads[key]["title"], score=score, payload=payloads[key], id=key)
            for key, score in best
            if key in payloads
        ]

    def _retrieve(self, ids: list[str], *, payload: bool, vectors: bool) -> list[Any]:
        return self._call(
            "search",
            self.client.retrieve,
            collection_name=self.alias,
            ids=ids,
            with_payload=payload,
            with_vectors=vectors,
        )

    def _sparse_top(self, sparse: tuple[list[int], list[float]], flt: Any) -> float | None:
        """The best sparse score under `flt`: the normalised formula's top (hybrid.py)."""
        response = self._call(
            "search",
            self.client.query_points,
            collection_name=self.alias,
            query=models.SparseVector(indices=list(sparse[0]), values=list(sparse[1])),
            using=hybrid.SPARSE,
            query_filter=flt,
            limit=1,
            with_payload=False,
            with_vectors=False,
        )
        return response.points[0].score if response.points else None

    def _search_params(self) -> Any:
        if self.local:
            return None
        if self._params is None:
            self.info()  # reads the collection's settings once per handle
        return self._params

    def _vector_size(self) -> int:
        if self._size is None:
            info = self.info()
            if info is None:
                raise self._no_collection()
            self._size = info.vector_size
        return self._size

    def _raise_missing(self, titles: Sequence[str], exc: BookvecError) -> NoReturn:
        missing = first_missing(titles, self.get(titles).keys())
        if missing is not None:
            raise missing from exc
        raise exc
