"""A read-only BOOKVEC_HOME still reads (issue 12, item 9): search, info, links, score and
upsert --dry-run answer from it, and map says up front that it cannot cache its coordinates.

Tests run as root here, where permission bits do not stop writes: the home is made read-only
with a read-only bind mount when the machine allows it (else, for a non-root user, with
chmod -R a-w; else the tests are skipped, saying why)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import invoke, one_error_line


def _bind_read_only(src: Path, dst: Path) -> bool:
    dst.mkdir()
    for command in (
        ["mount", "--bind", str(src), str(dst)],
        ["mount", "-o", "remount,ro,bind", str(dst)],
    ):
        try:
            done = subprocess.run(command, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            subprocess.run(["umount", str(dst)], capture_output=True, timeout=30)
            return False
    return True


@pytest.fixture(scope="module")
def ro_home(trained_home, tmp_path_factory):
    base = tmp_path_factory.mktemp("ro")
    src = base / "src"
    shutil.copytree(trained_home, src, symlinks=True)
    mounted = base / "home"
    if _bind_read_only(src, mounted):
        yield mounted
        subprocess.run(["umount", str(mounted)], capture_output=True, timeout=30)
        return
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(src)], check=True)
        yield src
        subprocess.run(["chmod", "-R", "u+w", str(src)], check=True)
        return
    pytest.skip("running as root without permission to mount: cannot make a read-only home")


def test_the_home_really_is_read_only(ro_home):
    with pytest.raises(OSError):
        (ro_home / "probe").write_text("x")


def first_title_and_link(home: Path) -> tuple[str, str]:
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=home / "models")
    return bundle.book_titles[0], bundle.link_names[0]


def test_search_info_links_score_work(ro_home):
    title, link = first_title_and_link(ro_home)
    search = invoke(["search", title, "-k", "3", "--json"], ro_home)
    assert search.exit_code == 0, search.output
    assert len(json.loads(search.stdout)) == 3
    info = invoke(["info", "--json"], ro_home)
    assert info.exit_code == 0, info.output
    store = json.loads(info.stdout)["store"]
    assert "error" not in store and store["points"] > 0
    links = invoke(["links", title, "-k", "3", "--json"], ro_home)
    assert links.exit_code == 0, links.output
    score = invoke(["score", title, link, "--json"], ro_home)
    assert score.exit_code == 0, score.output
    assert 0.0 <= json.loads(score.stdout)["probability"] <= 1.0
    assert not [p for p in Path("/tmp").glob("bookvec-ro-*")], "a scratch copy was left behind"


def test_upsert_dry_run_works_and_a_real_upsert_fails_cleanly(ro_home, tmp_path):
    _, link = first_title_and_link(ro_home)
    books = tmp_path / "new.jsonl"
    books.write_text(json.dumps({"title": "A Read-Only Test Book", "links": [link]}) + "\n")
    dry = invoke(["upsert", str(books), "--dry-run", "--json"], ro_home)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["added"] == 1
    real = invoke(["upsert", str(books)], ro_home)
    one_error_line(real, "Read-only file system")


def test_map_says_before_computing_that_it_cannot_cache(ro_home, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import numpy as np

    import bookvec.model.analysis.reduce as reduce

    def fast(vectors, **kwargs):  # UMAP itself is tested in test_maps.py; here: the order
        return np.random.default_rng(0).standard_normal((len(vectors), 2)).astype(np.float32)

    monkeypatch.setattr(reduce, "reduce_2d", fast)
    out = tmp_path / "map.png"
    result = invoke(["map", "--out", str(out), "--seed", "5"], ro_home)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    warned = next(i for i, line in enumerate(lines) if "not cached" in line)
    computing = next(i for i, line in enumerate(lines) if "UMAP of" in line)
    assert lines[warned].startswith("Warning:") and warned < computing
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_map_refuses_an_unwritable_out_before_computing(ro_home, monkeypatch):
    import bookvec.model.analysis.reduce as reduce

    def never(*args, **kwargs):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(reduce, "reduce_2d", never)
    result = invoke(["map", "--out", str(ro_home / "map.png"), "--recompute"], ro_home)
    assert result.exit_code == 1, result.output
    assert "not writable" in result.stderr
