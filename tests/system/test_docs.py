"""docs/cli.md is generated from --help; it must match the code (regenerate to fix)."""

from pathlib import Path

from bookvec.cli.helpdoc import render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_matches_the_code():
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/cli.md is out of date: run `python -m bookvec.cli.helpdoc > docs/cli.md`"
    )


def test_every_command_has_an_example():
    text = render()
    for section in text.split("\n## ")[1:]:
        name = section.splitlines()[0]
        if name in ("bookvec", "bookvec data"):
            continue
        assert "Example" in section, f"{name} --help has no example"
