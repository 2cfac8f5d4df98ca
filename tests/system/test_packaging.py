"""The three folders install as bookvec.cli, bookvec.model, bookvec.indexer — in a real wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_every_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("bookvec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "bookvec/__init__.py",
        "bookvec/errors.py",
        "bookvec/cli/main.py",
        "bookvec/cli/search.py",
        "bookvec/model/bundle.py",
        "bookvec/model/runtime.py",
        "bookvec/model/training/train.py",
        "bookvec/indexer/__init__.py",
        "bookvec/service/app.py",
        "bookvec/service/routes/read.py",
        "bookvec/service/static/index.html",  # the page's assets are package data
        "bookvec/service/static/app.js",
        "bookvec/service/static/app.css",
        "bookvec/cli/serve.py",
    ):
        assert module in names, module
    assert not any(
        name.startswith(("tests/", "cli/", "model/", "indexer/", "service/")) for name in names
    )
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bookvec = bookvec.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_query_commands_never_import_torch():
    code = (
        "import sys\n"
        "import bookvec.cli.main, bookvec.library.actions, bookvec.model.runtime, bookvec.indexer\n"
        "import bookvec.model.bundle, bookvec.model.corpus.read, bookvec.model.corpus.prepare\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
