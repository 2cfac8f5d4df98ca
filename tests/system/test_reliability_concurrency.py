"""Several bookvec processes on one embedded store, through the CLI in real subprocesses: two
upserts at once are serialised or the second is told, in one line, which process holds the
store (never a traceback or a lost book); eight searches while an upsert runs all answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import invoke

pytestmark = pytest.mark.slow

LOCKED = re.compile(r"^Error: .*in use by another bookvec process(?: \(pid (\d+)\))?")


def _bookvec(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    env.pop("BOOKVEC_QDRANT_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bookvec.cli.main", "-q", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _books_file(home: Path, path: Path, prefix: str, count: int) -> list[str]:
    from bookvec.model.bundle import open_bundle

    names = open_bundle(None, models_dir=home / "models").link_names
    titles = [f"{prefix} {i}" for i in range(count)]
    with open(path, "w") as handle:
        for i, title in enumerate(titles):
            links = [names[(i * 11 + j * 17 + len(prefix)) % len(names)] for j in range(6)]
            handle.write(json.dumps({"title": title, "links": links}) + "\n")
    return titles


def _points(home: Path) -> int:
    return json.loads(invoke(["info", "--json"], home).stdout)["store"]["points"]


def test_two_upserts_at_once_are_serialised_or_told_who_holds_the_store(mutable_home, tmp_path):
    home = mutable_home
    base = _points(home)
    outcomes, messages = [], []
    for race in range(2):  # two races, new books each time: each may go either way
        files = {}
        for name in ("first", "second"):
            files[name] = tmp_path / f"{name}{race}.jsonl"
            _books_file(home, files[name], f"Concurrent {name} {race}", 1000)
        procs = {
            name: _bookvec(["upsert", str(path), "--json"], home) for name, path in files.items()
        }
        results = {name: _finish(proc) for name, proc in procs.items()}
        for name, (code, out, err) in results.items():
            assert "Traceback" not in err, err
            if code == 0:
                report = json.loads(out)
                assert report["added"] == 1000 and report["rejected"] == 0, report
                outcomes.append("done")
                continue
            assert code == 1, err
            lines = err.strip().splitlines()
            assert len(lines) == 1, lines
            match = LOCKED.match(lines[0])
            assert match, lines[0]
            other = procs["second" if name == "first" else "first"].pid
            assert match.group(1) in (None, str(other)), lines[0]  # names the other process
            outcomes.append("locked")
            messages.append(lines[0])
            code, out, err = _finish(_bookvec(["upsert", str(files[name]), "--json"], home))
            assert code == 0, err  # the other one is done: running it again completes
            assert json.loads(out)["added"] == 1000
    assert _points(home) == base + 4000  # nothing lost, nothing twice
    titles = ["Concurrent first 0 0", "Concurrent first 1 999", "Concurrent second 1 777"]
    for title in titles:
        result = invoke(["search", title, "--exact", "--limit", "1", "--json"], home)
        assert result.exit_code == 0, result.output
    print("outcomes:", outcomes, messages)


def test_eight_searches_while_an_upsert_runs(mutable_home, tmp_path):
    home = mutable_home
    from bookvec.model.bundle import open_bundle

    query = open_bundle(None, models_dir=home / "models").book_titles[3]
    search = ["search", query, "--exact", "--limit", "5", "--json"]
    before = json.loads(invoke(search, home).stdout)
    new = tmp_path / "new.jsonl"
    _books_file(home, new, "Searched meanwhile", 4000)
    base = _points(home)
    upsert = _bookvec(["upsert", str(new), "--json"], home)
    answers, overlapped = [], 0
    deadline = time.monotonic() + 60
    for _wave in range(4):  # bounded: at most 4 waves of 8, while the upsert runs
        running = upsert.poll() is None
        overlapped += running
        wave = [_bookvec(search, home) for _ in range(8)]
        for proc in wave:
            code, out, err = _finish(proc, timeout=max(1, deadline - time.monotonic()))
            assert code == 0 and "Traceback" not in err, err
            answers.append(json.loads(out))
        if upsert.poll() is not None:
            break
    code, out, err = _finish(upsert)
    assert code == 0, err
    assert json.loads(out)["added"] == 4000
    assert _points(home) == base + 4000
    after = json.loads(invoke(search, home).stdout)
    for answer in answers:  # each answer is from the old index or the new one, never between
        assert answer in (before, after), answer
    assert overlapped >= 1  # at least one wave started while the upsert was running
