"""Integrity through the CLI: a bundle file that does not match its manifest's hash is refused
by every command that loads it (and nothing stored changes); `torch.load` only ever with
`weights_only=True`; file-system failures and library warnings are one line, no traceback.

Elsewhere: ONNX index validation in test_runtime.py (test_score_validates_indices,
test_fold_in_validates_indices); downloads verified before use in test_fetch.py
(test_wrong_sha256_leaves_nothing, test_cli_fetch_refuses_a_mismatch_and_leaves_no_file); the
API key and TLS in test_reliability_server.py."""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke, one_error_line

SKIP_DIRS = {".venv", "build", "dist", ".git", "node_modules", "__pycache__"}


def _points(home: Path) -> int:
    return json.loads(invoke(["info", "--json"], home).stdout)["store"]["points"]


def test_tampered_bundle_files_are_refused_by_the_commands_that_load_them(mutable_home, tmp_path):
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=mutable_home / "models")
    book, link = bundle.book_titles[0], bundle.link_names[0]
    new_books = tmp_path / "new.jsonl"
    new_books.write_text(json.dumps({"title": "Tamper Book", "links": bundle.link_names[:5]}))
    cases = [
        ("score.onnx", ["score", book, link]),
        ("score.onnx", ["links", book]),
        ("fold_in.onnx", ["upsert", str(new_books)]),
        ("links.parquet", ["upsert", str(new_books)]),
        ("book_vectors.npy", ["index"]),
        ("books.parquet", ["index"]),
    ]
    before = _points(mutable_home)
    for name, args in cases:
        path = bundle.path / name
        original = path.read_bytes()
        tampered = bytearray(original)
        tampered[len(tampered) // 2] ^= 0xFF  # one flipped byte, same size
        path.write_bytes(bytes(tampered))
        try:
            result = invoke(args, mutable_home)
            one_error_line(result, name, "does not match the hash in its manifest")
        finally:
            path.write_bytes(original)
        assert _points(mutable_home) == before, args  # nothing stored changed
    result = invoke(["score", book, link, "--json"], mutable_home)  # restored: accepted again
    assert result.exit_code == 0, result.output


def _python_files() -> list[Path]:
    return [
        path for path in ROOT.rglob("*.py") if not SKIP_DIRS & set(path.relative_to(ROOT).parts)
    ]


def test_torch_load_is_only_called_with_weights_only_true():
    """An AST scan of every Python file in the repository: `torch.load(...)`, or a `load`
    imported from torch, must pass `weights_only=True` (pickles run code when unpickled)."""
    offenders, scanned = [], 0
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        scanned += 1
        loads = {"torch.load"}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                loads |= {a.asname or a.name for a in node.names if a.name == "load"}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if ast.unparse(node.func) not in loads:
                continue
            safe = any(
                kw.arg == "weights_only"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is True
                for kw in node.keywords
            )
            if not safe:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert scanned > 50  # the scan really saw the repository
    assert offenders == [], f"torch.load without weights_only=True: {offenders}"


def test_the_scan_catches_an_unsafe_torch_load():
    unsafe = "import torch\nstate = torch.load(path)\n"
    tree = ast.parse(unsafe)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [ast.unparse(c.func) for c in calls] == ["torch.load"]
    assert not calls[0].keywords


@pytest.mark.parametrize("args", [["search", "x"], ["index"], ["info"], ["delete", "x"]])
def test_a_file_where_bookvec_home_should_be_is_one_line(tmp_path, args):
    home = tmp_path / "not-a-dir"
    home.write_text("")
    result = invoke(args, home)
    one_error_line(result, "Not a directory", str(home), "BOOKVEC_HOME")


def test_library_warnings_are_one_line(trained_home, monkeypatch):
    from bookvec.model import bundle as bundle_module

    real = bundle_module.open_bundle

    def warning_open_bundle(*args, **kwargs):
        warnings.warn("a library\nsays something", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle_module, "open_bundle", warning_open_bundle)
    result = invoke(["info", "--json"], trained_home)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == ["Warning: a library says something"]
    json.loads(result.stdout)
