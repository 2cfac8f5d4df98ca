"""`bookvec upsert --skip-invalid --rejects FILE`: the run carries on past bad records and
writes each one, with its line, title and reason, as a JSON line; without --skip-invalid the
first bad record stops the run, one line, and no rejects file is left behind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import invoke


def _known_links(home: Path, n: int = 5) -> list[str]:
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=home / "models").link_names[:n]


def _points(home: Path) -> int:
    return json.loads(invoke(["info", "--json"], home).stdout)["store"]["points"]


def _mixed(home: Path, path: Path) -> None:
    known = _known_links(home)
    lines = [
        json.dumps({"title": "Rejects Good Book", "links": known}),  # 1: stored
        '"not a record"',  # 2: not an object
        json.dumps({"title": "", "links": known}),  # 3: empty title
        "{not json",  # 4
        json.dumps({"title": "Rejects Unplaceable", "links": ["No Such Page At All"]}),  # 5
        json.dumps({"title": "Rejects Bad Links", "links": "Fantasy"}),  # 6: not a list
        json.dumps({"title": "Rejects Second Good", "links": known[:3]}),  # 7: stored
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode())


def test_rejects_file_lists_line_title_and_reason(mutable_home, tmp_path):
    source, rejects = tmp_path / "mixed.jsonl", tmp_path / "rejects.jsonl"
    _mixed(mutable_home, source)
    before = _points(mutable_home)
    args = ["upsert", str(source), "--skip-invalid", "--rejects", str(rejects), "--json"]
    result = invoke(args, mutable_home)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == 2 and report["rejected"] == 5
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert written == report["rejects"]
    assert [r["line"] for r in written] == [2, 3, 4, 5, 6]
    assert all(set(r) == {"line", "title", "reason"} and r["reason"] for r in written)
    by_line = {r["line"]: r for r in written}
    assert by_line[5]["title"] == "Rejects Unplaceable"
    assert "links" in by_line[5]["reason"]  # none of its links is known to the model
    assert "empty title" in by_line[3]["reason"]
    assert "not JSON" in by_line[4]["reason"]
    assert _points(mutable_home) == before + 2
    assert not list(tmp_path.glob(".rejects.jsonl.*"))  # no temporary file left


def test_no_rejects_writes_an_empty_file(mutable_home, tmp_path):
    source, rejects = tmp_path / "good.jsonl", tmp_path / "rejects.jsonl"
    rejects.write_text("stale content from an earlier run\n")
    source.write_text(json.dumps({"title": "Clean Book", "links": _known_links(mutable_home)}))
    result = invoke(["upsert", str(source), "--rejects", str(rejects)], mutable_home)
    assert result.exit_code == 0, result.output
    assert rejects.read_text() == ""


def test_without_skip_invalid_the_first_bad_record_stops_the_run(mutable_home, tmp_path):
    source, rejects = tmp_path / "mixed.jsonl", tmp_path / "rejects.jsonl"
    _mixed(mutable_home, source)
    before = _points(mutable_home)
    result = invoke(["upsert", str(source), "--rejects", str(rejects)], mutable_home)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "mixed.jsonl:2" in lines[0]
    assert not rejects.exists()
    assert _points(mutable_home) == before


def test_a_rejects_file_that_cannot_be_written_stops_before_any_work(trained_home, tmp_path):
    source = tmp_path / "mixed.jsonl"
    _mixed(trained_home, source)
    before = _points(trained_home)
    target = tmp_path / "no such dir" / "rejects.jsonl"
    args = ["upsert", str(source), "--skip-invalid", "--rejects", str(target)]
    result = invoke(args, trained_home)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --rejects "), lines
    assert "does not exist" in lines[0]
    assert _points(trained_home) == before
