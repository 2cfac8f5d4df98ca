"""The API over a Qdrant server (QdrantClient(":memory:") stands in) gives the embedded store's
answers; bookvec.train trains, warm-starts and returns a Model (the one entry with torch)."""

from __future__ import annotations

import shutil

import pytest

import bookvec


def test_server_index_answers_as_edge(trained_home, tmp_path):
    from qdrant_client import QdrantClient

    home = tmp_path / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    client = QdrantClient(":memory:")
    with bookvec.open_index(home=home) as edge, bookvec.open_index(home=home, client=client) as ix:
        report = ix.reindex()
        assert report["backend"] == "server" and report["points"] == len(edge.model.titles)
        book = edge.model.titles[7]
        for mode in ("dense", "sparse", "hybrid"):
            ours, theirs = ix.search(book, mode=mode), edge.search(book, mode=mode)
            assert [h.title for h in ours] == [h.title for h in theirs], mode
            assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-4)
        assert ix.info().to_dict()["store"]["backend"] == "server"
        assert ix.facets() == edge.facets()
        assert ix.complete(book[:5], limit=3) == edge.complete(book[:5], limit=3)
        added = ix.upsert([{"title": "Server Book", "links": edge.model.link_names[:6]}])
        assert added.added == 1 and ix.book("server book").source == "upsert"
        assert ix.delete(["Server Book"]).deleted == 1


def test_train_and_warm_start_return_models(small_corpus, tmp_path):
    home = tmp_path / "home"
    first = bookvec.train(small_corpus, home=home, seed=3, max_epochs=2, evaluate=False)
    assert isinstance(first, bookvec.Model) and len(first.titles) == 600
    assert bookvec.load(home=home).model_id == first.model_id  # the new current model
    warm = bookvec.train(small_corpus, home=home, warm_start=first, evaluate=False)
    summary = warm.summary().to_dict()
    assert summary["warm_start"]["parent"] == first.model_id
    assert summary["books"] == 600 and warm.model_id != first.model_id
