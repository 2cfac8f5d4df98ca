"""`bookvec links`, `similar-links` and `explain` on the trained small corpus, checked against
numpy on the bundle; the fallback for bundles without pairs.parquet; no torch on these paths."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import invoke


@pytest.fixture(scope="module")
def bundle(trained_home):
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=trained_home / "models")


@pytest.fixture(scope="module")
def book(bundle) -> str:
    return bundle.books.sort("n_links", descending=True)["title"][0]


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _observed(bundle, title: str) -> set[str]:
    pairs = bundle.pairs
    index = bundle.book_index[title]
    return {bundle.link_names[k] for k in pairs[pairs[:, 0] == index, 1]}


def test_bundle_stores_its_pairs(bundle):
    assert bundle.pairs is not None
    assert bundle.pairs.shape == (bundle.manifest.counts.pairs, 2)
    assert "pairs.parquet" in bundle.manifest.files


def test_links_scores_every_page_and_marks_observed(trained_home, bundle, book):
    from bookvec.model.runtime import Runtime

    rows = _json(invoke(["links", book, "--json", "-k", "15", "--exact"], trained_home))
    assert len(rows) == 15 and set(rows[0]) == {"title", "score", "observed", "books"}
    index = bundle.book_index[book]
    probability = Runtime(bundle.path).score(
        np.full(bundle.n_links, index), np.arange(bundle.n_links)
    )
    expected = [bundle.link_names[k] for k in np.argsort(-probability, kind="stable")[:15]]
    assert [r["title"] for r in rows] == expected
    observed = _observed(bundle, book)
    assert all(r["observed"] == (r["title"] in observed) for r in rows)
    assert sum(r["observed"] for r in rows) >= 5  # the model learned the book's own links


def test_links_missing_and_formats(trained_home, bundle, book):
    rows = _json(invoke(["links", book, "--missing", "--json", "-k", "5"], trained_home))
    assert rows and not any(r["observed"] for r in rows)
    text = invoke(["links", book, "--missing", "--csv", "-k", "5"], trained_home).stdout
    assert [r["title"] for r in csv.DictReader(io.StringIO(text))] == [r["title"] for r in rows]
    lines = invoke(["links", book, "--missing", "--jsonl", "-k", "5"], trained_home).stdout
    assert [json.loads(line) for line in lines.splitlines()] == rows
    table = invoke(["links", book, "-k", "5"], trained_home)
    assert table.exit_code == 0 and "probability" in table.stdout and "✓" in table.stdout


def test_similar_links_is_cosine_over_link_vectors(trained_home, bundle):
    name = bundle.link_names[2]
    rows = _json(invoke(["similar-links", name, "--json", "-k", "6"], trained_home))
    vectors = np.asarray(bundle.link_vectors)
    cosine = vectors @ vectors[2]
    cosine[2] = -np.inf
    assert [r["title"] for r in rows] == [bundle.link_names[k] for k in np.argsort(-cosine)[:6]]
    assert rows[0]["score"] == pytest.approx(float(cosine.max()), abs=1e-5)
    table = invoke(["similar-links", name.title(), "-k", "3"], trained_home)
    assert table.exit_code == 0 and rows[0]["title"] in table.stdout
    text = invoke(["similar-links", name, "--csv", "-k", "3"], trained_home).stdout
    assert text.splitlines()[0] == "title,score,books"


def test_explain_json_shape_and_contributions(trained_home, bundle, book):
    books = np.asarray(bundle.book_vectors, dtype=np.float64)
    a = bundle.book_index[book]
    near = books @ books[a]
    near[a] = -np.inf
    other = bundle.book_titles[int(np.argmax(near))]
    result = _json(invoke(["explain", book, other, "--json", "--exact"], trained_home))
    assert list(result) == ["a", "b", "similarity", "shared_links", "pulling_links"]
    assert (result["a"], result["b"]) == (book, other)
    assert result["similarity"] == pytest.approx(float(near.max()), abs=1e-5)
    links = np.asarray(bundle.link_vectors, dtype=np.float64)
    vb = books[bundle.book_index[other]]
    observed_a, observed_b = _observed(bundle, book), _observed(bundle, other)
    for key, allowed in (
        ("shared_links", observed_a & observed_b),
        ("pulling_links", observed_a | observed_b),
    ):
        rows = result[key]
        assert all(set(row) == {"link", "contribution"} for row in rows)
        assert {row["link"] for row in rows} <= allowed
        values = [row["contribution"] for row in rows]
        assert values == sorted(values, reverse=True)
        for row in rows:
            vector = links[bundle.link_index[row["link"]]]
            expected = (vector @ books[a]) * (vector @ vb)
            assert row["contribution"] == pytest.approx(expected, abs=1e-5)
    assert result["shared_links"], "near neighbours in the planted corpus share pages"
    table = invoke(["explain", book, other], trained_home)
    assert table.exit_code == 0
    assert "cosine similarity" in table.stdout and "contribution" in table.stdout


def test_explain_same_book_is_a_usage_error(trained_home, book):
    assert invoke(["explain", book, book.lower()], trained_home).exit_code == 2


def test_unknown_book_and_link_are_one_line_errors(trained_home, bundle, book):
    for args, start in (
        (["links", book + " zz"], "Error: unknown book"),
        (["explain", book, "No Such Book At All"], "Error: unknown book"),
        (["similar-links", "zzzz no such page"], "Error: unknown link"),
    ):
        result = invoke(args, trained_home)
        assert result.exit_code == 1, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    suggested = invoke(["links", book + " zz"], trained_home).stderr
    assert "did you mean: " in suggested and repr(book) in suggested


def _format_1_bundle(bundle, where: Path) -> Path:
    """A copy of the bundle as a format-1 bookvec wrote it: no pairs, no held-out pairs."""
    copy = where / bundle.model_id
    shutil.copytree(bundle.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name in ("pairs.parquet", "held_out_pairs.npy"):
        (copy / name).unlink()
        del manifest["files"][name]
    manifest["format_version"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_old_bundle_is_one_line_telling_to_retrain(trained_home, bundle, book, tmp_path):
    # format 2 (issue 14) dropped the re-reading of an old bundle's corpus: it says to retrain
    old = _format_1_bundle(bundle, tmp_path)
    result = invoke(["links", book, "--json", "--model", str(old)], trained_home)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bundle format 1" in lines[0], result.stderr
    assert "bookvec train" in lines[0]


def test_query_commands_never_import_torch(trained_home, book, bundle):
    link = bundle.link_names[0]
    commands = [
        ["links", book, "--json"],
        ["similar-links", link, "--json"],
        ["explain", book, bundle.book_titles[1], "--json"],
        ["search", "--link", link, "--json"],
        ["info", "--json"],
        ["config", "--json"],
    ]
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bookvec.cli.main import app\n"
        f"for args in {commands!r}:\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {"BOOKVEC_HOME": str(trained_home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
