"""BookFilter -> each backend's filter, side by side so they stay the same query.

genres_any: one MatchAny on `genres`; genres_all: one MatchValue per genre (a MatchValue on a
list field matches any element); author: the query's loose key on `author_keys` (so co-authors
count; indexer/keys.py), country: its key (aliases folded) on `country_key`; each OR the value as
typed on `authors` / `country`, which is what matches in a store indexed before the keys
existed (exactly, until `bookvec index` rebuilds it). Years: an inclusive range on the integer
`year`. Excluded points are a `must_not` HasId condition.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import qdrant_edge as edge

from bookvec.indexer.keys import AUTHOR_KEYS, COUNTRY_KEY, country_key, text_key
from bookvec.indexer.types import BookFilter


def _keyed(flt: BookFilter) -> list[tuple[str, str, str, str]]:
    """(key field, query key, raw field, raw value) for the author and country conditions."""
    out = []
    if flt.author:
        out.append((AUTHOR_KEYS, text_key(flt.author), "authors", flt.author))
    if flt.country:
        out.append((COUNTRY_KEY, country_key(flt.country), "country", flt.country))
    return out


def to_edge(flt: BookFilter | None, exclude_ids: Collection[str] = ()) -> edge.Filter | None:
    must: list[Any] = []
    if flt is not None:
        if len(flt.genres_any) == 1:  # the same condition; Edge checks it in 60% of the time
            must.append(edge.FieldCondition(key="genres", match=edge.MatchValue(flt.genres_any[0])))
        elif flt.genres_any:
            must.append(
                edge.FieldCondition(key="genres", match=edge.MatchAny(list(flt.genres_any)))
            )
        for genre in flt.genres_all:
            must.append(edge.FieldCondition(key="genres", match=edge.MatchValue(genre)))
        for key_field, key, raw_field, raw in _keyed(flt):
            either = [
                edge.FieldCondition(key=key_field, match=edge.MatchValue(key)),
                edge.FieldCondition(key=raw_field, match=edge.MatchValue(raw)),
            ]
            must.append(edge.Filter(should=either))
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
        for key_field, key, raw_field, raw in _keyed(flt):
            either = [
                models.FieldCondition(key=key_field, match=models.MatchValue(value=key)),
                models.FieldCondition(key=raw_field, match=models.MatchValue(value=raw)),
            ]
            must.append(models.Filter(should=either))
        if flt.year_from is not None or flt.year_to is not None:
            years = models.Range(gte=flt.year_from, lte=flt.year_to)
            must.append(models.FieldCondition(key="year", range=years))
    must_not = [models.HasIdCondition(has_id=list(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)
