"""The bulk upsert's batched steps give what the one-book-at-a-time ones gave (issue 15,
item 3): sparse vectors of many books at once are bit for bit `vector`'s, and the link lookup
of the fold-in cleans and finds links exactly as `clean_link` and the bundle's index do."""

from __future__ import annotations

import numpy as np
import pytest

from bookvec.errors import ConfigError
from bookvec.sparse import WEIGHTINGS, link_weights


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_sparse_vectors_of_a_batch_are_bit_for_bit(weighting) -> None:
    rng = np.random.default_rng(0)
    n_links = 300
    pairs = np.stack([rng.integers(0, 50, 2000), rng.integers(0, n_links, 2000)], axis=1)
    weights = link_weights(pairs, 50, n_links, weighting, rng.standard_normal((50, 8)))
    rows = [rng.integers(0, n_links, rng.integers(0, 40)).tolist() for _ in range(200)]
    rows[3] = []
    rows[4] = [7, 7, 7, 2]  # repeats count as tf
    got = weights.vectors(rows)
    assert got == [weights.vector(row) for row in rows]  # exact floats, not approx
    assert weights.vectors([]) == []
    with pytest.raises(ConfigError, match="outside"):
        weights.vectors([[1], [n_links]])


def test_link_lookup_matches_clean_link() -> None:
    from bookvec.library.actions import _LinkLookup
    from bookvec.model.corpus.prepare import CleaningConfig, clean_link

    cleaning = CleaningConfig()
    index = {"fantasy": 0, "j. r. r. tolkien": 1}
    lookup = _LinkLookup(cleaning, index)
    for link in ["Fantasy", "J. R. R. Tolkien", "Hardcover", "Unknown page", "Fantasy"]:
        name, found = lookup.get(link) or lookup.add(link)
        assert name == clean_link(link, cleaning)
        assert found == index.get(name, -1) if name is not None else found == -1
    assert len(lookup) == 4
    lookup.LIMIT = 4  # bounded: full, it starts again
    lookup.add("Another")
    assert len(lookup) == 1


def test_json_lines_read_as_the_json_module_reads_them() -> None:
    """orjson decodes the lines; whatever it reads differently (integers past 64 bits, NaN,
    lone surrogates, a BOM, Unicode spaces) or refuses goes through the json module."""
    import io
    import json

    from bookvec.model.corpus.read import _Bad, _json_lines

    lines = [
        '\ufeff["A", {}, ["x"]]',
        '["B", {"pages": 123456789012345678901234567890}, [], [], null, 12]',
        '["C", {}, ["x"], [], null, NaN]',
        '["D\\ud800", {}, []]',
        "\u00a0[1]\u00a0",
        "   ",
        '{"title": "E", "links": ["y"], "year": 1999, "rating": 4.5}',
        "[1, 2",
    ]
    data = io.BytesIO(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    got = list(_json_lines(data))
    assert [line for line, _ in got] == [1, 2, 3, 4, 5, 7, 8]
    values = [value for _, value in got]
    expected = [json.loads(text.lstrip("\ufeff").strip()) for text in lines[:5] + lines[6:7]]
    assert values[1][1]["pages"] == 123456789012345678901234567890  # an int, as json has it
    assert [json.dumps(v) for v in values[:6]] == [json.dumps(v) for v in expected]
    assert isinstance(values[6], _Bad) and values[6].reason.startswith("not JSON (Expecting")


def test_distinct_is_numpy_unique() -> None:
    from bookvec.sparse import _distinct

    rng = np.random.default_rng(1)
    for keys in (rng.integers(0, 50, 500), np.array([], dtype=np.int64), np.array([3])):
        keys = keys.astype(np.int64)
        distinct, counts = _distinct(keys, counts=True)
        expected, expected_counts = np.unique(keys, return_counts=True)
        assert distinct.tolist() == expected.tolist()
        assert counts.tolist() == expected_counts.tolist()
        assert _distinct(keys).tolist() == expected.tolist()


def test_catalogue_text_is_the_json_modules() -> None:
    """The links string (in the content hash) is byte for byte what json.dumps wrote; a log
    line reads back as the record, orjson or not."""
    import json

    from bookvec.indexer.catalogue import _line, encode_links

    odd = ["a", 'b"c', "\\", "\n\t\b\f\r", "\x00\x1f\x7f", "é中😀", "\u2028", "\ud800"]
    for links in (odd, odd[:-1], [], ["x"]):
        assert encode_links(links) == json.dumps(links, ensure_ascii=False, separators=(",", ":"))
    for record in (
        {"op": "put", "title": "T", "payload": {"links": encode_links(odd[:-1]), "year": 2001}},
        {"op": "put", "title": "Big", "payload": {"n": 1 << 70}},
        {"op": "put", "title": "N", "payload": {"x": float("nan"), "y": None}},
    ):
        line = _line(record)
        assert line.endswith(b"\n")
        back = json.loads(line)
        assert json.dumps(back, sort_keys=True) == json.dumps(record, sort_keys=True)
