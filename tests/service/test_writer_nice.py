"""The serve writer's niceness: BOOKVEC_WRITER_NICE, checked (issue 17's read/write trade-off)."""

from __future__ import annotations

import pytest

from bookvec.errors import ConfigError
from bookvec.service import writer


def test_writer_nice_default_and_override(monkeypatch):
    monkeypatch.delenv("BOOKVEC_WRITER_NICE", raising=False)
    assert writer.writer_nice() == writer.NICE == 10
    monkeypatch.setenv("BOOKVEC_WRITER_NICE", "5")
    assert writer.writer_nice() == 5
    for bad in ("-1", "20", "ten"):
        monkeypatch.setenv("BOOKVEC_WRITER_NICE", bad)
        with pytest.raises(ConfigError, match="BOOKVEC_WRITER_NICE"):
            writer.writer_nice()
