"""Reopening an Edge generation: the id census (a scroll of every point id) runs once per
generation's files; later opens check the count and the shard's file fingerprint
(generations.verified.json) instead, and any change to the files or the recorded ids makes the
census run again, so damage is still found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bookvec.errors import StoreError
from bookvec.indexer import BookPoint, edge_shard, open_store
from bookvec.indexer.generations import VERIFIED
from bookvec.settings import QdrantSettings

DIM = 8


def points(n: int, prefix: str = "Book", seed: int = 0):
    rng = np.random.default_rng(seed)
    return [
        BookPoint(f"{prefix} {i}", rng.standard_normal(DIM), {"genres": ["fantasy"]})
        for i in range(n)
    ]


def live(path: Path) -> Path:
    root = path / "books"
    return root / (root / "CURRENT").read_text().strip()


@pytest.fixture
def censuses(monkeypatch) -> list[int]:
    """How many id censuses the opens below run."""
    calls: list[int] = []
    real = edge_shard._census

    def counted(shard):
        calls.append(1)
        return real(shard)

    monkeypatch.setattr(edge_shard, "_census", counted)
    return calls


def _open(path: Path, **kwargs):
    return open_store(QdrantSettings(), path=path, **kwargs)


def test_a_reindexed_generation_opens_without_a_census(tmp_path, monkeypatch):
    store = _open(tmp_path)
    store.replace_all(points(120), vector_size=DIM, model_version="m")
    store.close()
    assert (live(tmp_path) / VERIFIED).is_file()
    calls: list[int] = []
    real = edge_shard._census
    monkeypatch.setattr(edge_shard, "_census", lambda s: calls.append(1) or real(s))
    for read_only in (True, False, True):
        store = _open(tmp_path, read_only=read_only)
        assert store.count() == 120
        store.close()
    assert calls == []


def test_an_upserted_generation_is_censused_once_then_trusted(tmp_path, censuses):
    store = _open(tmp_path)
    store.replace_all(points(50), vector_size=DIM, model_version="m")
    before = len(censuses)
    store.upsert(points(3, "New", seed=1))  # publishes a copy, then follows it: one census
    store.close()
    assert len(censuses) == before + 1
    assert (live(tmp_path) / VERIFIED).is_file()
    for _ in range(3):
        store = _open(tmp_path, read_only=True)
        assert store.count() == 53
        store.close()
    assert len(censuses) == before + 1


def test_a_stale_fingerprint_or_record_means_a_census(tmp_path, censuses):
    store = _open(tmp_path)
    store.replace_all(points(40), vector_size=DIM, model_version="m")
    store.close()
    path = live(tmp_path) / VERIFIED
    for field, value in (("files", "0" * 32), ("points", 39), ("ids", "0" * 16)):
        record = json.loads(path.read_text())
        record[field] = value
        path.write_text(json.dumps(record))
        before = len(censuses)
        _open(tmp_path, read_only=True).close()
        assert len(censuses) == before + 1, field
        assert json.loads(path.read_text())[field] != value  # recorded again, as it is


def test_another_shard_under_the_same_record_is_still_damage(tmp_path):
    store = _open(tmp_path / "a")
    store.replace_all(points(30), vector_size=DIM, model_version="m")
    store.close()
    other = _open(tmp_path / "b")
    other.replace_all(points(30, "Other", seed=2), vector_size=DIM, model_version="m")
    other.close()
    target = live(tmp_path / "a") / "shard"
    shutil.rmtree(target)
    shutil.copytree(live(tmp_path / "b") / "shard", target)  # same count, other ids
    with pytest.raises(StoreError, match="store damaged.*checksum"):
        _open(tmp_path / "a")
