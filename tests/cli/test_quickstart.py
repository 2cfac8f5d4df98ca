"""quickstart: the two-command promise, on the real sample and when the corpus cannot be fetched."""

from __future__ import annotations

import json

import pytest

from bookvec.errors import DownloadError
from tests.conftest import invoke


@pytest.mark.slow
def test_quickstart_on_p15_gives_sensible_searches(tmp_path, p15_path):
    result = invoke(["quickstart", "--data", str(p15_path)], tmp_path)
    assert result.exit_code == 0, result.output
    assert "Books like Jaws (novel), only thriller" in result.stdout
    assert "synthetic" not in result.stdout
    # books like Jaws, only thrillers: every hit is a thriller
    hits = json.loads(invoke(["search", "Jaws", "--genre", "thriller", "--json"], tmp_path).stdout)
    assert hits and all("thriller" in hit["genres"] for hit in hits)
    # the same series' books are each other's neighbours on the real data
    hits = json.loads(invoke(["search", "The Queen of Attolia", "--json"], tmp_path).stdout)
    assert "The King of Attolia" in [hit["title"] for hit in hits[:5]]


def _unreachable(*args, **kwargs):
    raise DownloadError("cannot reach raw.githubusercontent.com: Name or service not known")


def test_quickstart_without_network_falls_back_to_labelled_synthetic(tmp_path, monkeypatch):
    from bookvec.library import quickstart
    from bookvec.model.corpus import fetch

    monkeypatch.setattr(fetch, "fetch_corpus", _unreachable)
    monkeypatch.setattr(quickstart, "SYNTHETIC_BOOKS", 400)
    result = invoke(["quickstart", "--limit", "3"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "cannot reach" in result.stderr and "SYNTHETIC" in result.stderr
    flat = " ".join(result.stdout.split())  # rich may wrap a long table title
    assert flat.count("Books like") >= 3
    assert flat.count("Books like") == flat.count("[synthetic corpus]")
    corpus = tmp_path / "data" / "synthetic-400-seed0.ndjson"
    title = json.loads(corpus.read_text().splitlines()[0])[0]
    hits = json.loads(invoke(["search", title, "--json"], tmp_path).stdout)
    assert hits and all(hit["corpus"] == "synthetic" for hit in hits)


def test_quickstart_no_fallback_fails_plainly(tmp_path, monkeypatch):
    from bookvec.model.corpus import fetch

    monkeypatch.setattr(fetch, "fetch_corpus", _unreachable)
    result = invoke(["quickstart", "--no-fallback"], tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: cannot reach")
    assert len(result.stderr.strip().splitlines()) == 1
