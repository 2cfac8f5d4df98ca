"""Search modes (dense, sparse, hybrid) and MMR, built for each backend side by side so that
they stay the same query (like filters.py).

- dense: nearest by the cosine of the learned vectors (the unnamed vector);
- sparse: nearest by the dot product of the `links` sparse vectors (the store's IDF modifier
  applied to the query when the collection has it);
- hybrid: one prefetch of `prefetch` candidates per side, each with the full filter (the
  sparse side searching with the query's `sparse_terms` heaviest links), then
  dense + w * sparse / top over the candidates, where top is the best sparse score among them
  (the query's own books left out), so that the weight means the same whatever a corpus's
  link counts make of BM25's sums; a candidate only the sparse side found gets its cosine from
  its vector (asked for only where it could make the list), one only the dense side found
  counts 0 sparse.
  Both backends ask for the two sides in one batch and `fuse` applies the formula (also less
  CPU on Edge than its fused query, whose dense prefetch checked the excluded ids point by
  point; edge_read.py). Measured against the raw sum, RRF, DBSF and Qdrant's own formula
  (`benchmarks/modes.py --sweep`, README "Search modes"): RRF kept only part of the author
  signal; the raw sum gave up genre agreement on p15; Qdrant's formula, where a point missing
  from a side counts 0, lost half the author signal on the synthetic corpus (the same-author
  books the dense side does not rank count only their sparse score). `--diverse` and the rrf /
  dbsf fusions are Qdrant's own queries (there a point missing from a side counts 0);
- diverse (MMR): the mode's top candidates re-ranked by Maximal Marginal Relevance over the
  dense vectors. Edge's `lambda_` is the relevance weight, the server's `diversity` is
  1 - lambda_ (checked: the same lists on both).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import qdrant_edge as edge

from bookvec.errors import ConfigError, StoreError

MODES = ("dense", "sparse", "hybrid")
DEFAULT_MODE = "hybrid"  # when the collection has sparse vectors; else dense
SPARSE = "links"  # the sparse vector's name; the dense one stays the unnamed default ""
SPARSE_SCORING = ("none", "dot", "idf")  # IndexOptions.sparse


@dataclass(frozen=True)
class Hybrid:
    """How hybrid and diverse searches are put together (measured; see the docstring)."""

    fusion: str = "formula"  # "formula" | "rrf" | "dbsf"
    # formula: dense + w * sparse / top (normalise) or dense + w * sparse. Genre agreement /
    # same-author recall@10 (p15, 3 seeds; full-shape synthetic, seed 0), README: w 1
    # normalised 0.546 / 0.763 and 0.761 / 0.286; the raw sum (w 1) 0.530 / 0.761 and 0.754 /
    # 0.290; w 0.75 0.548 / 0.760 and 0.763 / 0.281.
    sparse_weight: float = 1.0
    normalise: bool = True
    prefetch: int = 100  # candidates per side
    rrf_k: int = 60
    mmr_lambda: float = 0.5  # relevance weight of MMR
    mmr_candidates: int = 50
    # The query links a hybrid query's sparse side searches with: its heaviest (0: all).
    sparse_terms: int = 0

    def __post_init__(self) -> None:
        if self.fusion not in ("formula", "rrf", "dbsf"):
            raise ConfigError(f"unknown fusion {self.fusion!r}", hint="formula, rrf or dbsf")
        if not self.sparse_weight >= 0:
            raise ConfigError(f"sparse_weight must be >= 0, got {self.sparse_weight!r}")
        if not (isinstance(self.sparse_terms, int) and self.sparse_terms >= 0):
            raise ConfigError(f"sparse_terms must be an integer >= 0, got {self.sparse_terms!r}")

    def query_sparse(
        self, sparse: tuple[list[int], list[float]] | None
    ) -> tuple[list[int], list[float]] | None:
        """A hybrid query's sparse vector as its sparse side searches with it: its
        `sparse_terms` heaviest links (ties: the lower index first), in index order."""
        if not self.sparse_terms or sparse is None or len(sparse[0]) <= self.sparse_terms:
            return sparse
        indices, values = sparse
        order = sorted(range(len(indices)), key=lambda j: (-abs(values[j]), indices[j]))
        kept = sorted(order[: self.sparse_terms], key=lambda j: indices[j])
        return [indices[j] for j in kept], [values[j] for j in kept]

    @property
    def needs_top(self) -> bool:
        """Whether the formula needs the best sparse score first (`formula_weight`)."""
        return self.fusion == "formula" and self.normalise

    def formula_weight(self, top: float | None) -> float:
        """The constant that multiplies the sparse score: w / top when normalised (top: the
        best sparse score among the candidates; none, or not positive: w)."""
        if self.normalise and top is not None and top > 0:
            return self.sparse_weight / top
        return self.sparse_weight


DEFAULT_HYBRID = Hybrid()
# A collection's spec by its sparse weighting, where it is not DEFAULT_HYBRID (README "Search
# modes"). coherent: cosines, its best match in a list near 1 where the others' are lower, so
# weight 0.5 balances genre agreement and same-author recall; its query values carry each
# page's rarity, so its 12 heaviest links (of ~17) leave out the commonest pages, the longest
# posting lists (bm25 and binary queries weigh every link alike: the store applies the IDF),
# and 50 candidates a side do as well as 100, for a faster genre-filtered search.
WEIGHTING_SPECS: dict[str, dict[str, Any]] = {
    "coherent": {"sparse_weight": 0.5, "prefetch": 50, "sparse_terms": 12}
}
FUSE_CHUNK = 16  # sparse-only candidates whose vectors `fuse` asks for at a time


def for_weighting(weighting: str | None) -> Hybrid:
    """The default spec of a collection whose sparse vectors are weighted `weighting`."""
    changes = WEIGHTING_SPECS.get(weighting or "")
    return DEFAULT_HYBRID if changes is None else replace(DEFAULT_HYBRID, **changes)


class HybridSpec:
    """A store's `hybrid` (how its hybrid and diverse queries are built): the collection's
    default (`for_weighting` its sparse weighting, set by the store as it learns it) unless
    a spec is assigned (a measurement trying another)."""

    _hybrid_set: Hybrid | None = None
    _hybrid_default: Hybrid = DEFAULT_HYBRID

    @property
    def hybrid(self) -> Hybrid:
        return self._hybrid_set or self._hybrid_default

    @hybrid.setter
    def hybrid(self, spec: Hybrid | None) -> None:
        self._hybrid_set = spec

    def _learn_weighting(self, weighting: str | None) -> None:
        self._hybrid_default = for_weighting(weighting)


def describe(spec: Hybrid) -> str:
    """The fusion in words (`bookvec info`)."""
    if spec.fusion != "formula":
        return spec.fusion.upper() + (f" (k {spec.rrf_k})" if spec.fusion == "rrf" else "")
    sparse = "sparse / best sparse" if spec.normalise else "sparse"
    cut = f", the query's {spec.sparse_terms} heaviest links" if spec.sparse_terms else ""
    return f"dense + {spec.sparse_weight:g} x {sparse} (prefetch {spec.prefetch} a side{cut})"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}", hint="use " + ", ".join(MODES))
    return mode


def nothing_to_search(mode: str, sparse: tuple[list[int], list[float]] | None) -> bool:
    """A sparse search for a query without links finds nothing (the stores return [])."""
    return mode == "sparse" and not (sparse and sparse[0])


def searchable(
    mode: str,
    sparse: tuple[list[int], list[float]] | None,
    has_sparse: Callable[[], bool],
    where: object,
) -> bool:
    """Whether a search in `mode` has anything to look for (both backends ask this first).
    Raises for an unknown mode, and for a sparse or hybrid search of a store without sparse
    vectors; `has_sparse` is asked only then (on a server it may cost a request)."""
    check_mode(mode)
    if mode != "dense" and not has_sparse():
        raise StoreError(
            f"{where} holds no sparse vectors (it was indexed before they existed, or without)",
            hint="run `bookvec index` to rebuild it, or search with --mode dense",
        )
    return not nothing_to_search(mode, sparse)


def prefetch_limit(spec: Hybrid, limit: int, diverse: bool) -> int:
    return max(spec.prefetch, limit, spec.mmr_candidates if diverse else 0)


# --- Edge -----------------------------------------------------------------------------------


def edge_request(
    mode: str,
    dense: list[float],
    sparse: tuple[list[int], list[float]] | None,
    *,
    limit: int,
    flt: Any,
    params: Any,
    diverse: bool = False,
    spec: Hybrid = DEFAULT_HYBRID,
    sparse_top: float | None = None,
) -> edge.QueryRequest:
    dense_q = edge.Query.Nearest(list(dense))
    sparse_q = None
    if sparse is not None and sparse[0]:
        sparse_q = edge.Query.Nearest(edge.SparseVector(*sparse), using=SPARSE)
    pool = prefetch_limit(spec, limit, diverse)
    query: Any
    prefetches: list[edge.Prefetch] | None = None
    if mode == "dense" or (mode == "hybrid" and sparse_q is None):
        query = dense_q
    elif mode == "sparse":
        query = sparse_q
    else:
        prefetches = [
            edge.Prefetch(limit=pool, query=dense_q, filter=flt, params=params),
            edge.Prefetch(limit=pool, query=sparse_q, filter=flt),
        ]
        query = _edge_fusion(spec, spec.formula_weight(sparse_top))
    if diverse:
        mmr = edge.Mmr(list(dense), lambda_=spec.mmr_lambda, candidates_limit=spec.mmr_candidates)
        if mode != "dense" or prefetches is not None:
            inner = edge.Prefetch(
                limit=spec.mmr_candidates, query=query, prefetches=prefetches, filter=flt
            )
            prefetches = [inner]
        query = mmr
    return edge.QueryRequest(
        limit=limit,
        query=query,
        prefetches=prefetches,
        filter=flt,
        params=params,
        with_payload=True,
        with_vector=False,
    )


def fuse(
    sides: list[dict[Any, float]],
    spec: Hybrid,
    limit: int,
    query: Sequence[float] | None = None,
    vectors: Callable[[list[Any]], dict[Any, Sequence[float]]] | None = None,
) -> list[tuple[Any, float]]:
    """The formula over each side's {id: score} candidates (in rank order): the `limit` best
    by dense + weight * sparse (weight: ``spec.formula_weight`` of the best sparse score), one
    the sparse side did not return counting 0 sparse, summed in double precision and rounded
    to single, as Qdrant's formula scorer does. A point only the sparse side returned gets its
    cosine with `query` from `vectors` (keys -> stored unit vectors; without them it counts 0
    dense), asked only for the points that could still make the list: its cosine is at most
    the dense side's lowest (it was not among the dense side's best), so one whose sparse part
    cannot lift it past the `limit`-th known score is left out. Ties keep the order of first
    appearance (dense ranks first)."""
    import heapq
    from array import array  # float32 rounding without numpy (not imported on a search)

    dense, sparse = sides
    weight = spec.formula_weight(max(sparse.values()) if sparse else None)
    fused = {key: score + weight * sparse.get(key, 0.0) for key, score in dense.items()}
    only = [(key, score) for key, score in sparse.items() if key not in fused]
    if only and query is not None and vectors is not None:
        floor = min(dense.values()) if dense else 1.0
        q = unit(query)
        # In falling sparse order, a chunk at a time: each chunk may raise the bar.
        for start in range(0, len(only), FUSE_CHUNK):
            known = heapq.nlargest(limit, fused.values())
            bar = known[-1] if len(known) >= limit else float("-inf")
            chunk = [
                (k, sc) for k, sc in only[start : start + FUSE_CHUNK] if floor + weight * sc >= bar
            ]
            if not chunk:
                break  # the rest score lower still
            found = vectors([k for k, _ in chunk])
            for key, score in chunk:
                vector = found.get(key)
                if vector:
                    fused[key] = cosine(q, vector) + weight * score
    else:
        for key, score in only:
            fused[key] = weight * score
    rounded = array("f", fused.values()).tolist()
    return heapq.nlargest(limit, zip(fused, rounded, strict=True), key=lambda item: item[1])


def unit(vector: Sequence[float]) -> list[float]:
    """The query as the stores compare it (cosine: their vectors are stored unit-length)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


def cosine(query_unit: Sequence[float], stored: Sequence[float]) -> float:
    """A stored (unit) vector's cosine with the unit query (the sum is rounded to single
    precision with the rest, by `fuse`)."""
    return sum(map(operator.mul, query_unit, stored))


def _edge_fusion(spec: Hybrid, weight: float) -> Any:
    if spec.fusion == "rrf":
        return edge.Fusion.Rrf(k=spec.rrf_k)
    if spec.fusion == "dbsf":
        return edge.Fusion.Dbsf()
    e = edge.Expression
    weighted = e.Mult([e.Constant(weight), e.Variable("$score[1]")])
    return edge.Formula(
        e.Sum([e.Variable("$score[0]"), weighted]), defaults={"$score[0]": 0.0, "$score[1]": 0.0}
    )


# --- server (qdrant-client) -----------------------------------------------------------------


def server_query(
    mode: str,
    dense: list[float],
    sparse: tuple[list[int], list[float]] | None,
    *,
    limit: int,
    flt: Any,
    params: Any,
    diverse: bool = False,
    spec: Hybrid = DEFAULT_HYBRID,
    sparse_top: float | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `client.query_points` (collection name aside)."""
    from qdrant_client import models

    sparse_vec = None
    if sparse is not None and sparse[0]:
        sparse_vec = models.SparseVector(indices=list(sparse[0]), values=list(sparse[1]))
    pool = prefetch_limit(spec, limit, diverse)
    prefetch: list[Any] | None = None
    using: str | None = None
    query: Any
    if mode == "dense" or (mode == "hybrid" and sparse_vec is None):
        query = list(dense)
    elif mode == "sparse":
        query = sparse_vec
        using = SPARSE
    else:
        prefetch = [
            models.Prefetch(query=list(dense), limit=pool, filter=flt, params=params),
            models.Prefetch(query=sparse_vec, using=SPARSE, limit=pool, filter=flt),
        ]
        query = _server_fusion(spec, spec.formula_weight(sparse_top))
    if diverse:
        mmr = models.NearestQuery(
            nearest=list(dense),
            mmr=models.Mmr(diversity=1.0 - spec.mmr_lambda, candidates_limit=spec.mmr_candidates),
        )
        if mode != "dense":
            prefetch = [
                models.Prefetch(
                    query=query,
                    using=using,
                    prefetch=prefetch,
                    limit=spec.mmr_candidates,
                    filter=flt,
                )
            ]
            using = None
        query = mmr
    return {
        "query": query,
        "prefetch": prefetch,
        "using": using,
        "query_filter": flt,
        "search_params": params,
        "limit": limit,
    }


def _server_fusion(spec: Hybrid, weight: float) -> Any:
    from qdrant_client import models

    if spec.fusion == "rrf":
        return models.RrfQuery(rrf=models.Rrf(k=spec.rrf_k))
    if spec.fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    weighted = models.MultExpression(mult=[weight, "$score[1]"])
    return models.FormulaQuery(
        formula=models.SumExpression(sum=["$score[0]", weighted]),
        defaults={"$score[0]": 0.0, "$score[1]": 0.0},
    )


def split_vector(vector: Any) -> tuple[list[float] | None, tuple[list[int], list[float]] | None]:
    """A retrieved point's vectors (a list, or a dict of named ones) -> (dense, sparse)."""
    if vector is None:
        return None, None
    if not isinstance(vector, dict):
        return list(vector), None
    dense = vector.get("")
    sparse = vector.get(SPARSE)
    pair = None
    if sparse is not None:
        pair = (list(sparse.indices), list(sparse.values))
    return (list(dense) if dense is not None else None), pair
