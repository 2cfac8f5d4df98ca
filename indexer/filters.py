"""BookFilter -> each backend's filter, side by side so they stay the same query.

genres_any: one MatchAny on `genres`; genres_all: one MatchValue per genre (a MatchValue on a
list field matches any element); author: MatchValue on `authors` (so co-authors count);
country: MatchValue; years: an inclusive range on the integer `year`. Excluded points are a
`must_not` HasId condition.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import qdrant_edge as edge

from bookvec.indexer.types import BookFilter


def to_edge(flt: BookFilter | None, exclude_ids: Collection[str] = ()) -> edge.Filter | None:
    must: list[Any] = []
    if flt is not None:
        if flt.genres_any:
            must.append(
                edge.FieldCondition(key="genres", match=edge.MatchAny(list(flt.genres_any)))
            )
        for genre in flt.genres_all:
            must.append(edge.FieldCondition(key="genres", match=edge.MatchValue(genre)))
        if flt.author:
            must.append(edge.FieldCondition(key="authors", match=edge.MatchValue(flt.author)))
        if flt.country:
            must.append(edge.FieldCondition(key="country", match=edge.MatchValue(flt.country)))
        if flt.year_from is not None or flt.year_to is not None:
            years = edge.RangeFloat(gte=flt.year_from, lte=flt.year_to)
            must.append(edge.FieldCondition(key="year", range=years))
    must_not = [edge.HasIdCondition(set(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return edge.Filter(must=must or None, must_not=must_not or None)


def to_server(flt: BookFilter | None, exclude_ids: Collection[str] = ()) -> Any:
    from qdrant_client import models  # only the server path pays for importing qdrant_client

    must: list[Any] = []
    if flt is not None:
        if flt.genres_any:
            any_genre = models.MatchAny(any=list(flt.genres_any))
            must.append(models.FieldCondition(key="genres", match=any_genre))
        for genre in flt.genres_all:
            must.append(models.FieldCondition(key="genres", match=models.MatchValue(value=genre)))
        if flt.author:
            author = models.MatchValue(value=flt.author)
            must.append(models.FieldCondition(key="authors", match=author))
        if flt.country:
            country = models.MatchValue(value=flt.country)
            must.append(models.FieldCondition(key="country", match=country))
        if flt.year_from is not None or flt.year_to is not None:
            years = models.Range(gte=flt.year_from, lte=flt.year_to)
            must.append(models.FieldCondition(key="year", range=years))
    must_not = [models.HasIdCondition(has_id=list(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)
