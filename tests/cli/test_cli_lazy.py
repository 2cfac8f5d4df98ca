"""The root group registers commands lazily: its map names every command in `--help` order,
and a search by title imports neither the other commands nor numpy nor pydantic."""

import importlib
import subprocess
import sys

from typer.testing import CliRunner

from bookvec.cli.app import COMMANDS, app
from bookvec.cli.coercion import _UNTOUCHED, quick_value


def test_the_map_names_every_registered_command():
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"bookvec.cli.{module}")
    from typer.main import get_command, get_command_name

    commands = app.registered_commands
    names = [info.name or get_command_name(info.callback.__name__) for info in commands]
    names += [info.name for info in app.registered_groups]
    assert sorted(names) == sorted(COMMANDS)  # registration order depends on import order
    group = get_command(app)
    assert group.list_commands(None) == list(COMMANDS)  # --help lists them in the map's order


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output


def test_an_unknown_command_still_gets_suggestions():
    result = CliRunner().invoke(app, ["serch"])
    assert result.exit_code == 2
    assert "search" in result.output


def test_search_imports_only_what_it_uses(tmp_path):
    code = (
        "import sys\n"
        "from bookvec.cli.main import main\n"
        f"sys.argv = ['bookvec', '--home', {str(tmp_path)!r}, 'search', 'Some Book', '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('numpy', 'pydantic', 'bookvec.cli.evaluate', 'bookvec.cli.config',"
        " 'torch', 'polars') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert "no books indexed yet" in done.stderr


class Info:
    min = 1
    max = 1000


def test_quick_values_are_typer_values_or_left_to_typer():
    assert quick_value(str, Info, "x") == "x"
    assert quick_value(int, Info, "12") == 12
    assert quick_value(int, Info, 10) == 10
    assert quick_value(bool, Info, True) is True
    assert quick_value(list[str], Info, ("a", "b")) == ["a", "b"]
    for annotation, value in ((int, "0"), (int, "1001"), (int, "abc"), (int, " 5"), (int, "٣")):
        assert quick_value(annotation, Info, value) is _UNTOUCHED
