"""Fixtures of the store tests."""

from __future__ import annotations

import pytest

from bookvec.indexer import edge as edge_store


@pytest.fixture
def graph_everywhere(monkeypatch):
    """Thresholds lowered so that a few thousand 16-d points get a graph, and a genre-filtered
    search walks it (instead of scoring the genre's points exactly)."""
    monkeypatch.setattr(edge_store, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(edge_store, "FULL_SCAN_THRESHOLD_KB", 1)
