"""Cases found by the adversarial probe of issue 12 after items 1-9 landed, kept so that they
stay fixed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import invoke
from tests.system.test_read_only_home import ro_home  # noqa: F401, F811  (the fixture)

# Click escapes C0/C1 controls in what it echoes, not bidi overrides or line separators.
TYPED = ["\x1b[31m", "\x1b]0;pwned\x07", "\u202e", "\u2028", "\x9b2J"]


@pytest.mark.parametrize(
    "args",
    [
        lambda t: ["search", "x", f"--{t}x"],  # a subcommand's unknown option
        lambda t: [f"--{t}x"],  # the root group's unknown option
        lambda t: [f"sea{t}rch"],  # an unknown command
        lambda t: ["map", "--method", t],  # a choice
        lambda t: ["search", "x", "y", t],  # extra arguments
    ],
)
def test_usage_errors_show_typed_controls_as_escapes(args, tmp_path) -> None:
    for typed in TYPED:
        result = invoke(args(typed), tmp_path)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\u2028"):
            assert ch not in result.output, (typed, result.output)
        assert "Usage: bookvec" in result.output  # Click's own display stays


def test_usage_error_in_a_real_process_is_inert(tmp_path) -> None:
    cmd = [sys.executable, "-m", "bookvec.cli.main", "search", "x", "--\u202e\x1b[31mx"]
    env = {"BOOKVEC_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert done.returncode == 2
    assert b"\x1b" not in done.stderr and "\u202e".encode() not in done.stderr
    assert b"No such option: --\\u202e\\x1b[31mx" in done.stderr


def _points(home) -> int:
    import json

    result = invoke(["info", "--json"], home)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["store"]["points"]


def test_a_pointer_of_bad_utf8_is_garbled_not_a_traceback(mutable_home, tmp_path) -> None:
    before = _points(mutable_home)
    (mutable_home / "store" / "books" / "CURRENT").write_bytes(b"\xff\x00garbage\n")
    new = tmp_path / "one.jsonl"
    new.write_text('{"title": "Probe Utf8 Book", "links": ["x"]}\n', encoding="utf-8")
    info = invoke(["info", "--json"], mutable_home)  # a traceback raises here
    assert info.exit_code == 0, info.output
    assert "newest complete generation" in info.stderr  # recovered, and said so
    result = invoke(["upsert", str(new), "--skip-invalid"], mutable_home)
    assert "Traceback" not in result.output
    assert _points(mutable_home) >= before  # nothing lost


@pytest.mark.parametrize("pointer", ["../../etc", "/etc", ".hidden"])
def test_models_current_naming_a_path_is_refused(
    mutable_home, pointer, tmp_path, monkeypatch
) -> None:
    from tests.conftest import one_error_line

    monkeypatch.chdir(tmp_path)  # a path relative to the working directory must not be tried
    (tmp_path / "etc").mkdir()
    (mutable_home / "models" / "CURRENT").write_text(pointer + "\n", encoding="utf-8")
    result = invoke(["links", "anything"], mutable_home)
    one_error_line(result, "models/CURRENT holds no model id", repr(pointer))


@pytest.mark.parametrize("command", [["upsert", "{new}"], ["index"], ["delete", "anything"]])
def test_a_write_on_a_read_only_home_says_read_only(ro_home, tmp_path, command) -> None:  # noqa: F811
    """Not "cannot open ... rebuild it with `bookvec index`", and `index` does not take the
    read-only store for a damaged one to rebuild."""
    from tests.conftest import one_error_line

    new = tmp_path / "new.jsonl"
    new.write_text('{"title": "Read Only Probe", "links": ["x"]}\n', encoding="utf-8")
    args = [str(new) if part == "{new}" else part for part in command]
    line = one_error_line(invoke(args, ro_home), "is read-only")
    assert "rebuild" not in line


def test_a_disk_too_full_for_the_shards_holes_still_reads(
    trained_home, tmp_path, monkeypatch
) -> None:
    """Reading maps the shard read-write (its holes may be touched): on a disk without room
    for them, reads go through a private copy elsewhere instead of refusing; writes refuse."""
    import json

    from bookvec import disk

    mutable_home = tmp_path / "home"  # a sparse copy: the shard keeps its preallocated holes
    subprocess.run(
        ["cp", "-a", "--sparse=always", str(trained_home), str(mutable_home)], check=True
    )
    shards = list((mutable_home / "store" / "books").glob("g-*/shard"))
    assert shards and disk.sparse_sizes(shards[0])[0] > 0
    real = disk.free_bytes
    home = str(mutable_home)

    def free(path) -> int:  # the home's disk nearly full, the temporary directory's not
        return 0 if str(path).startswith(home) else real(path)

    monkeypatch.setattr(disk, "free_bytes", free)
    info = invoke(["info", "--json"], mutable_home)
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["store"]["points"] > 0
    search = invoke(["search", "x", "--json"], mutable_home)  # the store opened to resolve
    assert "no space left" not in search.output, search.output
    write = invoke(["index"], mutable_home)
    assert write.exit_code == 1 and "no space left" in write.stderr, write.output
