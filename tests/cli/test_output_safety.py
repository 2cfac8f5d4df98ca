"""Output that cannot be turned against the reader (issue 12, item 6): control characters from
the data neutralised in tables, messages and warnings; rich markup shown as typed; CSV formula
injection and bare CRs; JSON exact; `$` in matplotlib text; output paths that are symlinks,
devices or directories; URLs with credentials masked."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from tests.conftest import invoke, one_error_line

# An OSC title-setter, a colour, a clear-screen, a bare CR, NUL, the 8-bit CSI, a bidi override,
# rich markup and a formula start: everything a hostile Wikipedia title could hold.
HOSTILE = "=HYPERLINK(1)\x1b]0;pwned\x07\x1b[31mred\x1b[2J\rover\x00\x9b31m[bold]b[/bold]\u202eR"
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\x00", "\x9b", "\u202e")


def assert_inert(text: str) -> None:
    for ch in RAW_CONTROLS:
        assert ch not in text, (ch, text)


@pytest.fixture(scope="module")
def home(trained_home, tmp_path_factory) -> Path:
    """A copy of the trained home whose store also holds a book with a hostile title, author
    and genre (planted through the library: no input check stands in the way). It has the
    dense vector of a trained book and no sparse one: the searches below are dense."""
    from bookvec.indexer import BookPoint, open_store
    from bookvec.settings import QdrantSettings

    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(trained_home, home, symlinks=True)
    store = open_store(QdrantSettings(), path=home / "store")
    try:
        near = store.titles()[0]
        vector = store.get([near], with_vectors=True)[near].vector
        payload = {"genres": [HOSTILE], "author": HOSTILE, "authors": [HOSTILE], "year": 2000}
        store.upsert([BookPoint(HOSTILE, vector, payload)])
    finally:
        store.close()
    (home / "near.txt").write_text(near, encoding="utf-8")
    return home


def near(home: Path) -> str:
    return (home / "near.txt").read_text(encoding="utf-8")


def test_tables_show_escapes_not_controls(home):
    result = invoke(["search", near(home), "-k", "3", "--mode", "dense"], home, COLUMNS="400")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert "\\x1b]0;pwned\\x07" in result.stdout  # visible, as an escape
    assert "[bold]b[/bold]" in result.stdout  # markup shown as typed, not applied


def test_json_and_jsonl_keep_the_data_exact_and_the_bytes_inert(home):
    for flag in ("--json", "--jsonl"):
        result = invoke(["search", near(home), "-k", "3", "--mode", "dense", flag], home)
        assert result.exit_code == 0, result.output
        assert_inert(result.stdout)
        text = result.stdout
        rows = (
            json.loads(text) if flag == "--json" else [json.loads(x) for x in text.split("\n") if x]
        )
        assert rows[0]["title"] == HOSTILE and rows[0]["author"] == HOSTILE


def test_csv_neutralises_formulas_and_quotes_carriage_returns(home):
    result = invoke(["search", near(home), "-k", "3", "--mode", "dense", "--csv"], home)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    hostile = next(row for row in rows if "HYPERLINK" in row[0])
    assert hostile[0].startswith("'=HYPERLINK")  # OWASP: a leading quote
    assert "\r" in hostile[0]  # the CR is data, kept inside a quoted field ...
    assert f'"{hostile[0][:5]}' in result.stdout  # ... and the field is quoted
    assert "\x1b" not in result.stdout and "\x00" not in result.stdout
    float(hostile[1])  # the score is still a number


def test_csv_cells_rule():
    from bookvec.cli.output import _cell

    assert [_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "plain")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "plain",
    ]
    assert _cell(-0.5) == "-0.5" and _cell(-3) == "-3"  # numbers stay numbers
    assert _cell(["-a", "b"]) == "'-a; b"


def test_delete_message_and_errors_are_inert(home, tmp_path):
    listed = invoke(["delete", HOSTILE, "--exact", "--dry-run"], home)
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.stdout)
    assert "would remove 1 book" in listed.stdout
    missing = invoke(["upsert", str(tmp_path / "no\x1b[2Jsuch\r.jsonl")], home)
    line = one_error_line(missing)
    assert_inert(line)
    assert "\\x1b[2J" in line


def test_warnings_and_logs_are_inert(capsys):
    from bookvec.cli import output

    output.warn(f"rejected {HOSTILE}")
    output.log(f"wrote {HOSTILE}")
    err = capsys.readouterr().err
    assert_inert(err)
    assert err.count("\n") == 2


def test_every_table_builder_escapes(capsys):
    """The rich tables of every command, given hostile rows."""
    from bookvec.cli import output
    from bookvec.cli.explain import _table
    from bookvec.cli.score import _pairs_table

    record = {"title": HOSTILE, "score": 0.5, "genres": [HOSTILE], "author": HOSTILE, "year": 1}
    tables = [
        output.books_table([record], title=HOSTILE),
        output.links_table([record], title=HOSTILE, score_label="p", caption=HOSTILE),
        _pairs_table([{"book": HOSTILE, "link": HOSTILE, "probability": 0.5}]),
        _table(
            [{"link": HOSTILE, "contribution": 0.1}],
            title=HOSTILE,
            marks={},
            cosines={HOSTILE: (0.1, 0.2)},
        ),
    ]
    console = output.SafeConsole(width=2000, highlight=False)  # what stdout is, wide
    for table in tables:
        with console.capture() as captured:
            console.print(table)
        text = captured.get()
        assert_inert(text)
        assert "[bold]b[/bold]" in text and "\\x1b[31mred" in text


def test_any_string_printed_through_the_consoles_is_inert():
    from bookvec.cli import output

    with output.stdout.capture() as captured:
        output.stdout.print(f"plain {HOSTILE}", markup=False)
    assert_inert(captured.get())


# --- matplotlib -----------------------------------------------------------------------------------


def test_dollars_in_titles_are_not_mathtext(tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from bookvec.model.analysis.plots import Highlight, MapData, draw_png

    names = ["$\\frac{$ broken", "Costs $5 and $6", "plain"]
    data = MapData(
        coords=np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]]),
        names=names,
        groups=["a $x$", None, "a $x$"],
        legend=[("a $x$", 2)],
        highlights=[Highlight(0, [(1, 0.9)])],
        title="bookvec $\\badmacro{ map",
    )
    out = tmp_path / "map.png"
    draw_png(data, out, width=300, height=200)  # mathtext would raise on "$\frac{$"
    assert out.read_bytes()[:4] == b"\x89PNG"


# --- output paths ---------------------------------------------------------------------------------


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    from bookvec.outfiles import output_file

    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with output_file(link) as where:
        Path(where).write_text("new")
    assert link.is_symlink() and real.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_character_device_is_written_through_not_replaced():
    from bookvec.outfiles import output_file

    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    with output_file("/dev/null") as where:
        Path(where).write_text("discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_through(tmp_path):
    from bookvec.outfiles import output_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with output_file(fifo) as where:
        Path(where).write_text("through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_directories_and_missing_folders_are_refused(tmp_path):
    from bookvec.errors import ConfigError
    from bookvec.outfiles import check_output

    with pytest.raises(ConfigError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        check_output(tmp_path / "no" / "file.txt")


def test_vectors_through_a_symlink_keep_the_link(home, tmp_path):
    real = tmp_path / "real.w2v"
    real.write_text("old")
    link = tmp_path / "books.w2v"
    link.symlink_to(real)
    result = invoke(["vectors", str(link)], home)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text().split()[0].isdigit()


def test_rejects_target_is_checked_before_any_book_is_stored(home, tmp_path):
    from tests.cli.test_cli_store import model_links, titles

    before = len(titles(home))
    books = tmp_path / "new.jsonl"
    books.write_text(json.dumps({"title": "A Brand New Book", "links": model_links(home, 5)}))
    result = invoke(["upsert", str(books), "--rejects", str(tmp_path)], home)  # a directory
    one_error_line(result, "--rejects", "is a directory")
    assert len(titles(home)) == before
    to_devnull = invoke(["upsert", str(books), "--rejects", "/dev/null", "--dry-run"], home)
    assert to_devnull.exit_code == 0, to_devnull.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- URLs ---------------------------------------------------------------------------------------

SECRET_URL = "http://bob:hunter2secret@127.0.0.1:9/?api_key=abcdefghijklmnop&x=1"


def test_config_masks_url_credentials(home):
    result = invoke(["config", "--json", "--url", SECRET_URL], home)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.stdout and "abcdefghijkl" not in result.stdout
    shown = json.loads(result.stdout)["qdrant_url"]["value"]
    assert shown == "http://bob:****@127.0.0.1:9/?api_key=****mnop&x=1"


def test_errors_and_info_mask_url_credentials(home):
    env = {"BOOKVEC_QDRANT_TIMEOUT": "1"}
    failed = invoke(["search", "x", "--url", SECRET_URL], home, **env)
    line = one_error_line(failed, "127.0.0.1:9")
    assert "hunter2" not in line and "abcdefghijkl" not in line
    info = invoke(["info", "--json", "--url", SECRET_URL], home, **env)
    assert "hunter2" not in info.stdout and "abcdefghijkl" not in info.stdout


def test_mask_url_cases():
    from bookvec.safetext import mask_url, mask_urls

    assert mask_url("https://token123@h/p") == "https://****@h/p"
    assert mask_url("http://h:6333") == "http://h:6333"
    assert mask_url("http://h/?token=zzzzzzzzzzzzzzzz&k=1") == "http://h/?token=****zzzz&k=1"
    assert mask_urls("at http://a:b@h/, then") == "at http://a:****@h/, then"


def test_html_map_labels_show_tags_as_typed(tmp_path):
    pytest.importorskip("plotly")
    import numpy as np

    from bookvec.model.analysis.plots import Highlight, MapData, write_html

    evil = '<a href="https://evil.example/">click</a><b>bold</b>'
    data = MapData(
        coords=np.array([[0.0, 0.0], [1.0, 1.0]]),
        names=[evil, "plain"],
        groups=[None, None],
        legend=[],
        highlights=[Highlight(0, [(1, 0.9)])],
        title=f"map {evil}",
    )
    out = tmp_path / "map.html"
    write_html(data, out)
    html = out.read_text(encoding="utf-8")
    assert "&lt;a href=" in html and "&lt;b&gt;bold" in html  # labels: tags shown, not read
