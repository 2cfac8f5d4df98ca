"""Bad input through the CLI: one line naming file and line, exit 1, no traceback, and nothing
already stored is changed. Fine input in odd clothes (BOM, CRLF, gzip) is read."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import invoke

GOOD = ["Good Book", {"genre": "Fantasy"}, ["Fantasy", "J. R. R. Tolkien"], [], "2018-01-01", 9]


def _line(record) -> bytes:
    return (json.dumps(record) + "\n").encode()


BAD = {
    "truncated.ndjson": (
        _line(GOOD) + _line(GOOD)[:-12].replace(b"Good", b"Next"),
        ":2",
        "not JSON",
    ),
    "not_array.ndjson": (_line(GOOD) + b'"just a string"\n', ":2", "not a JSON array"),
    "links_not_list.ndjson": (_line(GOOD) + _line(["B", {}, "Fantasy", [], None, 1]), ":2", "list"),
    "numbers.ndjson": (_line(GOOD) + _line(["B", {}, [1, 2], [], None, 1]), ":2", "strings"),
    "too_few.ndjson": (_line(GOOD) + _line(["B", {}]), ":2", "too few fields"),
    "nulls.ndjson": (_line(GOOD) + _line([None] * 6), ":2", "no title"),
    "empty_title.ndjson": (_line(GOOD) + _line(["", {}, ["x"], [], None, 1]), ":2", "empty title"),
    "duplicate.ndjson": (_line(GOOD) + _line(GOOD), ":2", "duplicate title"),
    "latin1.ndjson": (_line(GOOD) + '["Café", {}, ["x"]]\n'.encode("latin-1"), ":2", "not UTF-8"),
    "garbage.ndjson": (bytes(range(256)) * 4, ":1", "not JSON"),
    "nested.ndjson": (b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1", "nested too deeply"),
    "nan.ndjson": (_line(GOOD) + b'["N", {}, ["x"], [], null, NaN]\n', ":2", "integer"),
    "object.jsonl": (b'{"title": "T", "links": "not a list"}\n', ":1", "list of strings"),
    "cut.ndjson.gz": (
        gzip.compress(_line(GOOD) * 50)[:-8],
        "cut.ndjson.gz",
        "is the file complete",
    ),
    "bad.parquet": (b"PAR1 not really", "bad.parquet", "parquet"),
}


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("name", sorted(BAD))
def test_train_refuses_bad_corpus_in_one_line(tmp_path, name):
    data, where, what = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = invoke(["train", "--data", str(path)], tmp_path / "home")
    _one_line_error(result, name, where, what)
    assert not (tmp_path / "home" / "models").exists() or not any(
        p.name == "CURRENT" for p in (tmp_path / "home" / "models").iterdir()
    )


@pytest.mark.parametrize("name", sorted(BAD))
def test_upsert_refuses_bad_file_and_stores_nothing(trained_home, tmp_path, name):
    data, where, what = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    before = json.loads(invoke(["info", "--json"], trained_home).stdout)["store"]["points"]
    _one_line_error(invoke(["upsert", str(path)], trained_home), name, where, what)
    after = json.loads(invoke(["info", "--json"], trained_home).stdout)["store"]["points"]
    assert before == after


def test_empty_corpus_is_refused(tmp_path):
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    _one_line_error(invoke(["train", "--data", str(path)], tmp_path / "home"), "empty.ndjson")


def test_missing_file_is_one_line(tmp_path):
    result = invoke(["train", "--data", str(tmp_path / "nope.ndjson")], tmp_path)
    _one_line_error(result, "nope.ndjson")


def test_skip_invalid_carries_on_and_reports_rejects(mutable_home, tmp_path):
    trained_home = mutable_home
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=trained_home / "models")
    known = bundle.link_names[:5]
    good = {"title": "Skip Test Book", "links": known}
    lines = [json.dumps(good), '"not a record"', json.dumps({"title": "", "links": known})]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = invoke(["upsert", str(path), "--skip-invalid", "--json"], trained_home)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] + report["unchanged"] == 1
    assert report["rejected"] == 2
    assert {r["line"] for r in report["rejects"]} == {2, 3}


def test_bom_crlf_and_gzip_are_fine_input(mutable_home, tmp_path):
    trained_home = mutable_home
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=trained_home / "models")
    record = json.dumps(["Crlf Book", {"genre": "Fantasy"}, bundle.link_names[:6], [], None, 5])
    (tmp_path / "bom.ndjson").write_bytes(("\ufeff" + record + "\r\n").encode())
    (tmp_path / "z.ndjson.gz").write_bytes(gzip.compress(record.replace("Crlf", "Gz").encode()))
    for name in ("bom.ndjson", "z.ndjson.gz"):
        result = invoke(["upsert", str(tmp_path / name), "--json"], trained_home)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rejected"] == 0
