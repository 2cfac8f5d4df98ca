"""The embedded store's hnsw_ef, chosen by measurement once its HNSW graph exists.

A fixed hnsw_ef that is exact enough at 37k books is not at ten or a hundred times as many
(measured at 370k: recall@10 0.98 with a genre filter at 128). So after a write that built a
graph, the store measures recall@10 on a sample of its own books, each searched for with its
vector and with its vector and first genre as a filter (the filtered search is the one the
graph finds hardest), against Edge's exact search, at rising hnsw_ef; the smallest value that
reaches the target on both is the collection's hnsw_ef, recorded with its figures
(`Calibration`, kept in the generation's index metadata). The sample is the first books in id
order: ids are uuid5 of titles, so that order is unrelated to the vectors.

Then, at the chosen hnsw_ef, how filtered searches go (IndexOptions.filtered_search): the same
books are also searched with a genre drawn from the sample's most common ones, often not theirs
(the filter far from the query, which a graph walk finds hardest), each way (the plain graph
walk, ACORN, exact through the payload index) is timed on both filters, and the fastest whose
recall@10 reaches the target on both is kept (exact always does).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

import qdrant_edge as edge

from bookvec.indexer.points import stored_payload
from bookvec.indexer.types import (
    CALIBRATION,
    DEFAULT_FILTERED_SEARCH,
    FILTERED_SEARCHES,
    IndexOptions,
)

LADDER = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
QUERIES = 200
K = 10


@dataclass(frozen=True)
class Calibration:
    """The chosen hnsw_ef and what was measured to choose it."""

    ef: int
    target: float
    recall_at_10: float  # at `ef`, unfiltered
    filtered_recall_at_10: float | None  # with the book's first genre as a filter (None: no genres)
    queries: int
    reached: bool  # False: even the last value of the ladder fell short (it is used then)
    seconds: float
    # how filtered graph searches are done (types.FILTERED_SEARCHES), and what each way
    # measured: recall@10 with the book's own first genre and with a common genre drawn for it
    # (often not its own), and the mean ms of a filtered search
    filtered_search: str = DEFAULT_FILTERED_SEARCH
    filtered_searches: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def with_target(index: dict[str, Any], target: float | None) -> dict[str, Any]:
    """A new collection's index metadata (IndexOptions.to_dict()) with its recall target."""
    return index if target is None else {**index, CALIBRATION: {"target": target}}


def target_of(index: dict[str, Any]) -> float | None:
    """The recall target a collection's hnsw_ef is chosen for; None: hnsw_ef as given."""
    record = index.get(CALIBRATION)
    return record.get("target") if isinstance(record, dict) else None


def calibrate(
    shard: edge.EdgeShard, options: IndexOptions, target: float, *, queries: int = QUERIES
) -> Calibration:
    """The smallest hnsw_ef of LADDER whose recall@10 reaches `target`, unfiltered and
    genre-filtered, on up to `queries` of the shard's books (see the module docstring)."""
    from bookvec.indexer.edge_shard import _search_params

    began = time.perf_counter()
    request = edge.ScrollRequest(limit=queries, with_payload=True, with_vector=[""])
    records, _ = shard.scroll(request)
    samples, all_genres = [], []
    for record in records:
        vector = record.vector[""] if isinstance(record.vector, dict) else record.vector
        genres = stored_payload(record.payload).get("genres") or []
        genres = [g for g in genres if isinstance(g, str)] if isinstance(genres, list) else []
        all_genres.extend(genres)
        samples.append((record.id, vector, _genre_filter(genres[0] if genres else None)))
    exact = edge.SearchParams(exact=True)
    truth = [_top(shard, v, flt, pid, exact) if flt else [] for pid, v, flt in samples]
    unfiltered = [_top(shard, vector, None, pid, exact) for pid, vector, _ in samples]
    recall = filtered = 0.0
    ef = LADDER[-1]
    plain = replace(options, filtered_search="plain")
    for ef in LADDER:
        params = _search_params(replace(plain, hnsw_ef=ef))
        recall = _recall(shard, samples, unfiltered, params, filtered=False)
        filtered = _recall(shard, samples, truth, params, filtered=True)
        if recall >= target and filtered >= target:
            break
    has_genres = any(flt is not None for _, _, flt in samples)
    strategy, figures = "plain", None
    if has_genres:
        strategy, figures = _filtered_search(
            shard, replace(options, hnsw_ef=ef), samples, truth, all_genres, target
        )
    return Calibration(
        ef=ef,
        target=target,
        recall_at_10=round(recall, 4),
        filtered_recall_at_10=round(filtered, 4) if has_genres else None,
        queries=len(samples),
        reached=recall >= target and filtered >= target,
        seconds=round(time.perf_counter() - began, 2),
        filtered_search=strategy,
        filtered_searches=figures,
    )


def _filtered_search(shard, options, samples, truth, all_genres, target):
    """Of plain, ACORN and exact, the fastest (mean time of a filtered search) whose recall@10
    reaches `target` with the book's own genre and with a common genre drawn for it (seeded);
    exact always does. Also each one's figures: {strategy: {own, any, ms}}."""
    from bookvec.indexer.edge_shard import _search_params

    common = [g for g, _ in Counter(all_genres).most_common(10)]
    draw = random.Random(0)
    others = [(pid, v, _genre_filter(draw.choice(common))) for pid, v, _ in samples]
    exact = edge.SearchParams(exact=True)
    other_truth = [_top(shard, v, flt, pid, exact) for pid, v, flt in others]
    figures: dict[str, dict[str, float]] = {}
    for strategy in FILTERED_SEARCHES:
        params = _search_params(replace(options, filtered_search=strategy), filtered=True)
        began = time.perf_counter()
        own = _recall(shard, samples, truth, params, filtered=True)
        far = _recall(shard, others, other_truth, params, filtered=True)
        searched = sum(flt is not None for _, _, flt in samples) + len(others)
        ms = (time.perf_counter() - began) * 1000 / max(searched, 1)
        figures[strategy] = {"own": round(own, 4), "any": round(far, 4), "ms": round(ms, 3)}
    good = [s for s, f in figures.items() if s == "exact" or min(f["own"], f["any"]) >= target]
    return min(good, key=lambda s: figures[s]["ms"]), figures


def _genre_filter(genre: Any) -> edge.Filter | None:
    if not isinstance(genre, str):
        return None
    return edge.Filter(must=[edge.FieldCondition(key="genres", match=edge.MatchValue(genre))])


def _top(shard, vector, flt, own_id, params) -> list[Any]:
    """The K nearest books but the query's own, by the search `params`."""
    request = edge.QueryRequest(
        limit=K + 1,
        query=edge.Query.Nearest(vector),
        filter=flt,
        params=params,
        with_payload=False,
        with_vector=False,
    )
    return [p.id for p in shard.query(request) if p.id != own_id][:K]


def _recall(shard, samples, truth, params, *, filtered: bool) -> float:
    found = total = 0
    for (pid, vector, flt), expected in zip(samples, truth, strict=True):
        if filtered and flt is None:
            continue
        got = set(_top(shard, vector, flt if filtered else None, pid, params))
        found += len(got.intersection(expected))
        total += len(expected)
    return found / total if total else 1.0
