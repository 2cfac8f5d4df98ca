"""`bookvec score --pairs`: CSV, JSONL and Parquet from a file or stdin, every output format,
bad rows stopping the run or (--skip-invalid) reported with their reasons."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import invoke


@pytest.fixture(scope="module")
def bundle(trained_home):
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=trained_home / "models")


@pytest.fixture(scope="module")
def pairs(bundle) -> list[tuple[str, str]]:
    return [(bundle.book_titles[i], bundle.link_names[i]) for i in range(4)]


@pytest.fixture(scope="module")
def expected(trained_home, pairs) -> list[dict]:
    rows = []
    for book, link in pairs:
        result = invoke(["score", book, link, "--json", "--exact"], trained_home)
        assert result.exit_code == 0, result.output
        rows.append(json.loads(result.stdout))
    return rows


def _csv(pairs, header: str = "book,link\n") -> str:
    buffer = io.StringIO()
    buffer.write(header)
    csv.writer(buffer, lineterminator="\n").writerows(pairs)
    return buffer.getvalue()


def _jsonl(pairs) -> str:
    return "".join(json.dumps({"book": b, "link": k}) + "\n" for b, k in pairs)


def _parquet(pairs) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"book": [b for b, _ in pairs], "link": [k for _, k in pairs]}).write_parquet(
        buffer
    )
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_each_input_format_from_a_file_and_stdin(
    trained_home, tmp_path: Path, pairs, expected, kind
):
    data = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[kind](pairs)
    path = tmp_path / f"pairs.{kind}"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    from_file = invoke(["score", "--pairs", str(path), "--json"], trained_home)
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.stdout) == expected
    from_stdin = invoke(["score", "--pairs", "-", "--json"], trained_home, input=data)
    assert json.loads(from_stdin.stdout) == expected
    assert "scored 4 pairs" in from_stdin.stderr


def test_format_option_overrides_the_extension(trained_home, tmp_path: Path, pairs, expected):
    path = tmp_path / "pairs.txt"
    path.write_text(_jsonl(pairs))
    result = invoke(["score", "--pairs", str(path), "--format", "jsonl", "--json"], trained_home)
    assert json.loads(result.stdout) == expected
    bad = invoke(["score", "--pairs", str(path), "--format", "xml"], trained_home)
    assert bad.exit_code == 1 and "unknown pairs format 'xml'" in bad.stderr


def test_csv_header_may_swap_columns_or_be_absent(trained_home, pairs, expected):
    swapped = _csv([(k, b) for b, k in pairs], header="link,book\n")
    result = invoke(["score", "--pairs", "-", "--json"], trained_home, input=swapped)
    assert json.loads(result.stdout) == expected
    bare = invoke(["score", "--pairs", "-", "--json"], trained_home, input=_csv(pairs, header=""))
    assert json.loads(bare.stdout) == expected


def test_output_formats(trained_home, pairs, expected):
    data = _csv(pairs)
    jsonl = invoke(["score", "--pairs", "-", "--jsonl"], trained_home, input=data).stdout
    assert [json.loads(line) for line in jsonl.splitlines()] == expected
    text = invoke(["score", "--pairs", "-", "--csv"], trained_home, input=data).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["book"], r["link"], float(r["probability"])) for r in rows] == [
        (e["book"], e["link"], e["probability"]) for e in expected
    ]
    table = invoke(["score", "--pairs", "-"], trained_home, input=data)
    assert table.exit_code == 0 and "probability" in table.stdout
    one = invoke(["score", *pairs[0]], trained_home)
    assert one.stdout.startswith(f"{expected[0]['probability']:.4f}  {pairs[0][0]}  ->")


def test_bad_row_stops_with_its_line(trained_home, pairs):
    data = _csv(pairs) + "only one column\n"
    result = invoke(["score", "--pairs", "-"], trained_home, input=data)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: <stdin>:6: expected two columns: book,link"
    broken = _jsonl(pairs[:1]) + "{not json\n"
    result = invoke(["score", "--pairs", "-", "--format", "jsonl"], trained_home, input=broken)
    assert result.exit_code == 1 and result.stderr.startswith("Error: <stdin>:2: not JSON")


def test_unknown_title_in_pairs_stops_with_its_line_and_suggestions(trained_home, pairs):
    data = _csv([*pairs[:2], (pairs[2][0] + "qq", pairs[2][1])])
    result = invoke(["score", "--pairs", "-"], trained_home, input=data)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: <stdin>:4: unknown book") and "did you mean" in lines[0]


def test_skip_invalid_reports_each_rejected_row(trained_home, pairs, expected):
    rows = [
        pairs[0],
        (pairs[1][0] + " zzq", pairs[1][1]),  # unknown book
        (pairs[2][0], "zzzz no such page zzzz"),  # unknown link
        pairs[3],
    ]
    data = _csv(rows) + "lonely\n"
    result = invoke(["score", "--pairs", "-", "--skip-invalid", "--json"], trained_home, input=data)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [expected[0], expected[3]]
    warnings = result.stderr.strip().splitlines()
    assert warnings[0].startswith("Warning: <stdin>:3: skipped: unknown book")
    assert warnings[1].startswith("Warning: <stdin>:4: skipped: unknown link")
    assert warnings[2] == "Warning: <stdin>:6: skipped: expected two columns: book,link"
    assert warnings[3] == "scored 2 pairs, skipped 3"


def test_usage_and_missing_file_errors(trained_home, tmp_path: Path):
    assert invoke(["score", "only-a-book"], trained_home).exit_code == 2
    assert invoke(["score", "a", "b", "--pairs", "-"], trained_home).exit_code == 2
    missing = invoke(["score", "--pairs", str(tmp_path / "nope.csv")], trained_home)
    assert missing.exit_code == 1
    assert missing.stderr.strip().endswith("no such file (check the path, or use - for stdin)")
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    result = invoke(["score", "--pairs", str(garbage)], trained_home)
    assert result.exit_code == 1 and "not a readable Parquet file" in result.stderr
    assert "Traceback" not in result.output
