"""docs/contracts.md keeps the code's figures: the config defaults (TrainConfig, CleaningConfig),
the auto rules' bounds, the bundle's file names and its format version."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from bookvec.model import bundle
from bookvec.model.corpus.prepare import CleaningConfig
from bookvec.model.training import config as training_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def documented_defaults(doc: str, cls: str) -> dict[str, object]:
    """``name: type = value`` lines of ``class <cls>`` in the doc's code blocks (a value may
    run over several lines while its brackets are open), the values as Python literals."""
    lines = doc[doc.index(f"class {cls}") :].splitlines()[1:]
    found: dict[str, object] = {}
    pending = ""
    for line in lines:
        if not line.startswith("    ") and not pending:
            break  # the class body ended
        text = (pending + " " + line.strip()) if pending else line
        if text.count("(") > text.count(")") or text.count("[") > text.count("]"):
            pending = text
            continue
        pending = ""
        match = re.match(r"\s*(\w+): [^=]+ = (.+?)(\s+#.*)?$", text)
        if match:
            found[match.group(1)] = ast.literal_eval(match.group(2).strip())
    return found


def code_defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


def test_train_config_defaults_are_the_code_s(doc):
    assert documented_defaults(doc, "TrainConfig") == code_defaults(training_config.TrainConfig)


def test_cleaning_config_defaults_are_the_code_s(doc):
    assert documented_defaults(doc, "CleaningConfig") == code_defaults(CleaningConfig)


def test_the_auto_rules_figures_are_the_code_s(doc):
    c = training_config
    batch = re.search(r"auto_batch_size.*n_pairs/(\d+), within \[(\d+), (\d+)\]", doc)
    assert batch and tuple(map(int, batch.groups())) == (
        c.MIN_STEPS_PER_EPOCH, c.MIN_AUTO_BATCH, c.MAX_AUTO_BATCH,
    )  # fmt: skip
    patience = re.search(r"auto_patience.*# (\d+) below (\d+) training pairs, else (\d+)", doc)
    assert patience and tuple(map(int, patience.groups())) == (
        c.SMALL_CORPUS_PATIENCE, c.SMALL_CORPUS_PAIRS, c.PATIENCE,
    )  # fmt: skip


def test_bundle_file_names_and_format_version_are_the_code_s(doc):
    section = doc[doc.index("## Bundle") : doc.index("## Runtime")]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| `([^`]+)` \|", section, flags=re.M))
    constants = {
        name: getattr(bundle, name)
        for name in dir(bundle)
        if name.isupper()
        and isinstance(getattr(bundle, name), str)
        and "." in getattr(bundle, name)
    }
    assert rows == constants
    required = {name for name, file in rows.items() if file in bundle.REQUIRED_FILES}
    documented_required = set(re.findall(r"^\| `([A-Z_]+)` \|[^|]+\| required", section, re.M))
    assert documented_required == required
    version = re.search(r"Bundle\s+format (\d+) \(`FORMAT_VERSION`\)", section)
    assert version and int(version.group(1)) == bundle.FORMAT_VERSION
    assert f"format_version: int = {bundle.FORMAT_VERSION}" in section
