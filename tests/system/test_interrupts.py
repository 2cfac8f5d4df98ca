"""kill -9 in the middle of work: the previous model stays usable, a re-run upsert completes
with no duplicates, and searches keep answering from the old index until the new one is in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import invoke

pytestmark = pytest.mark.slow


def _bookvec(args: list[str], home: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "bookvec.cli.main", "-q", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _points(home: Path) -> int:
    return json.loads(invoke(["info", "--json"], home).stdout)["store"]["points"]


def test_kill_during_train_leaves_the_previous_model_usable(mutable_home, tmp_path):
    from bookvec.model.corpus.synth import synthesize

    corpus = tmp_path / "bigger.ndjson"
    synthesize(corpus, n_books=4000, seed=3)
    models = mutable_home / "models"
    before = (models / "CURRENT").read_text()
    proc = _bookvec(["train", "--data", str(corpus)], mutable_home)
    time.sleep(6)  # past start-up (torch import, prepare): the run is training now
    assert proc.poll() is None, "training ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (models / "CURRENT").read_text() == before
    info = json.loads(invoke(["info", "--json"], mutable_home).stdout)
    assert info["model"]["id"] == before.strip()
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=models)
    bundle.verify()
    result = invoke(["score", bundle.book_titles[0], bundle.link_names[0], "--json"], mutable_home)
    assert result.exit_code == 0, result.output
    # the next training run succeeds and becomes current
    result = invoke(["train", "--data", str(corpus), "--epochs", "2"], mutable_home)
    assert result.exit_code == 0, result.output
    assert (models / "CURRENT").read_text() != before


def _new_books_file(home: Path, path: Path, count: int) -> None:
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=home / "models")
    names = bundle.link_names
    with open(path, "w") as handle:
        for i in range(count):
            links = [names[(i * 7 + j * 13) % len(names)] for j in range(6)]
            handle.write(json.dumps({"title": f"Interrupted Book {i}", "links": links}) + "\n")


def test_kill_during_upsert_then_rerun_completes_without_duplicates(mutable_home, tmp_path):
    count = 20000
    path = tmp_path / "new.jsonl"
    _new_books_file(mutable_home, path, count)
    before = _points(mutable_home)
    # time a whole run on a copy, then kill a real run half-way through
    import shutil

    probe_home = tmp_path / "probe"
    shutil.copytree(mutable_home, probe_home, symlinks=True)
    started = time.monotonic()
    assert _bookvec(["upsert", str(path)], probe_home).wait() == 0
    whole = time.monotonic() - started
    proc = _bookvec(["upsert", str(path)], mutable_home)
    time.sleep(whole * 0.6)
    assert proc.poll() is None, "the upsert ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert before <= _points(mutable_home) <= before + count
    rerun = invoke(["upsert", str(path), "--json"], mutable_home)
    assert rerun.exit_code == 0, rerun.output
    report = json.loads(rerun.stdout)
    assert report["added"] + report["updated"] + report["unchanged"] == count
    assert _points(mutable_home) == before + count
    again = json.loads(invoke(["upsert", str(path), "--json"], mutable_home).stdout)
    assert again["unchanged"] == count and again["added"] == 0


def _answer(result) -> list[dict]:
    return json.loads(result.stdout)


def _same(got: list[dict], expected: list[dict]) -> bool:
    """The same hits in the same order; scores equal up to float32 rounding (a rebuilt index
    sums the hybrid score's float32 terms in another order, so the last digit may differ)."""
    strip = [{k: v for k, v in hit.items() if k != "score"} for hit in got]
    return strip == [{k: v for k, v in hit.items() if k != "score"} for hit in expected] and all(
        g["score"] == pytest.approx(e["score"], rel=1e-6)
        for g, e in zip(got, expected, strict=True)
    )


def test_searches_answer_from_the_old_index_while_a_reindex_is_killed(mutable_home):
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=mutable_home / "models")
    title = bundle.book_titles[0]
    expected = _answer(invoke(["search", title, "--json", "--exact"], mutable_home))
    proc = _bookvec(["index"], mutable_home)
    answers = 0
    while proc.poll() is None and answers < 200:
        result = invoke(["search", title, "--json", "--exact"], mutable_home)
        assert result.exit_code == 0, result.output
        assert _same(_answer(result), expected)
        answers += 1
        if answers == 3:
            proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the reindex ended before it could be interrupted"
    result = invoke(["search", title, "--json", "--exact"], mutable_home)
    assert _same(_answer(result), expected)
    assert invoke(["index"], mutable_home).exit_code == 0
    assert _same(_answer(invoke(["search", title, "--json", "--exact"], mutable_home)), expected)
