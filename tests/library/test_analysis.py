"""bookvec.library.analysis: the same answers as `bookvec evaluate / similarity / vectors
--json`, typed frozen results, no torch; on planted vectors with a known answer."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from bookvec.errors import BundleError, ConfigError, TitleNotFoundError
from bookvec.library import analysis
from tests.conftest import invoke
from tests.model.analysis.test_evaluate import planted, write_bundle


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    corpus = planted(n_books=300, seed=5)
    home = tmp_path_factory.mktemp("analysis")
    write_bundle(
        home, corpus.books, corpus.book_vectors, corpus.link_vectors,
        pairs=corpus.pairs, held_out=corpus.held_out,
    )  # fmt: skip
    return home


@pytest.fixture
def models(home, monkeypatch):
    monkeypatch.setenv("BOOKVEC_HOME", str(home))
    return home


def _timeless(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "seconds"}


def test_evaluate_equals_the_cli_json_and_finds_the_planted_structure(models):
    evaluation = analysis.evaluate(
        baselines=("random",), probe=False, queries=200, ranked=200, search_queries=0
    )
    assert isinstance(evaluation, analysis.Evaluation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evaluation.model = None
    assert evaluation.split.note == "held_out_pairs.npy in the bundle" and not evaluation.warnings
    args = ["evaluate", "--json", "--no-probe", "--queries", "200", "--ranked", "200"]
    cli = invoke([*args, "--search-queries", "0", "--no-baselines"], models)
    assert cli.exit_code == 0, cli.output
    mine = analysis.evaluate(baselines=False, probe=False, queries=200, ranked=200)
    reference = analysis.evaluate(
        baselines=False, probe=False, queries=200, ranked=200, search_queries=0
    )
    assert _timeless(reference.to_dict()) == _timeless(json.loads(cli.stdout))
    assert "search" in mine.metrics  # search modes on by default, as the command
    report = evaluation.to_dict()
    assert report["link_prediction"]["bookvec"]["auc"] > 0.9
    agreement = {name: row["genre_agreement@10"] for name, row in report["neighbours"].items()}
    assert agreement["bookvec"] > 0.9 > agreement["random"] * 2


def test_evaluate_with_the_wrong_corpus_file_says_so(models, tmp_path):
    from bookvec.model.corpus.synth import synthesize

    other = tmp_path / "other.ndjson"
    synthesize(other, n_books=120, seed=1)
    evaluation = analysis.evaluate(data=other, baselines=False, probe=False, search_queries=0)
    assert evaluation.corpus.available is False and evaluation.metrics["link_prediction"] == {}
    assert any("skipped" in warning for warning in evaluation.warnings)


def test_similarity_equals_the_cli_json(models):
    result = analysis.similarity(["book 1", "Book 2", "Book 100"])
    assert result.titles == ("Book 1", "Book 2", "Book 100")
    cli = invoke(["similarity", "book 1", "Book 2", "Book 100", "--json"], models)
    assert result.to_dict() == json.loads(cli.stdout)
    matrix = np.array(result.matrix)
    assert matrix[0, 1] > 0.8 > matrix[0, 2]  # same planted genre, then another genre
    assert analysis.similarity(["Book 1", "Book 2"], one_hot=True).matrix == ((1, 0), (0, 1))
    with pytest.raises(ConfigError):
        analysis.similarity(["Book 1"])
    with pytest.raises(TitleNotFoundError):
        analysis.similarity(["Book 1", "Zzzq nothing"])


def test_export_vectors_equals_the_cli_json(models, tmp_path):
    out = tmp_path / "books.parquet"
    result = analysis.export_vectors(out)
    cli = invoke(["vectors", str(out), "--json"], models)
    assert result.to_dict() == json.loads(cli.stdout)
    assert result.rows == 300 and result.normalised and result.what == "books"


def test_an_old_bundle_is_a_typed_error(models, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(models / "models" / "planted", old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="bundle format 1"):
        analysis.evaluate(old)


def test_evaluate_never_imports_torch(home):
    code = (
        "import sys\n"
        "from bookvec.library import analysis\n"
        "analysis.evaluate(baselines=False, probe=False, queries=50, search_queries=0)\n"
        "analysis.similarity(['Book 1', 'Book 2'])\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    env = {"BOOKVEC_HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_draw_map_and_projector_equal_the_cli_json(tmp_path, monkeypatch):
    from tests.model.analysis.test_maps import HAS_EXTRA, build_planted_bundle

    if not HAS_EXTRA:
        pytest.skip("the maps extra is not installed")
    build_planted_bundle(tmp_path / "models")
    out = tmp_path / "map.html"
    args = ["map", "--out", str(out), "-H", "Poetry Book 036", "--json"]
    invoke(args, tmp_path)  # computes and caches the coordinates
    cli = json.loads(invoke(args, tmp_path).stdout)
    cli_projector = invoke(["projector", str(tmp_path / "projector"), "--json"], tmp_path)
    monkeypatch.setenv("BOOKVEC_HOME", str(tmp_path))
    report = analysis.draw_map(out, highlight=["Poetry Book 036"])
    assert report.to_dict() == cli and report.cached
    projected = analysis.projector(tmp_path / "projector")
    assert projected.to_dict() == json.loads(cli_projector.stdout)
    # planted: the highlighted book's neighbours share its planted genre
    assert all(title.startswith("Poetry") for title, _ in report.highlights[0][1])
