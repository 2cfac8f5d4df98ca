"""The score stream writes its records directly; byte for byte what json.dumps of each
record's to_dict() wrote (odd characters, tiny and whole probabilities, upserted books)."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("fastapi")

from bookvec.library.results import PairScore  # noqa: E402
from bookvec.service.routes.score import CHUNK, _stream  # noqa: E402

NAMES = ["Jaws", 'Dune "the" book', "Ünïcödé ✓", "back\\slash", "tab\tand\nline", "\u2028", "😀"]


def by_json_dumps(results, ndjson: bool) -> bytes:
    rows = [r.to_dict() for r in results]
    if ndjson:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    return json.dumps(rows, ensure_ascii=False).encode()


@pytest.mark.parametrize("ndjson", [False, True])
def test_the_stream_is_json_dumps_of_the_records(ndjson):
    rng = random.Random(0)
    values = [0.5, 1e-06, 0.123456, 0.0, 1.0, 5e-05]
    results = [
        PairScore(
            rng.choice(NAMES),
            rng.choice(NAMES),
            rng.choice([*values, round(rng.random(), 6)]),
            rng.random() < 0.1,
        )
        for _ in range(2 * CHUNK + 7)
    ]
    assert b"".join(_stream(results, ndjson)) == by_json_dumps(results, ndjson)
    assert b"".join(_stream([], ndjson)) == by_json_dumps([], ndjson)
