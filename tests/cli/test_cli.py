"""The CLI end to end on a small planted corpus: train -> index -> search / upsert / score."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import invoke


@pytest.fixture(scope="module")
def truth(small_corpus) -> pl.DataFrame:
    return pl.read_parquet(str(small_corpus) + ".truth.parquet")


@pytest.fixture(scope="module")
def corpus_rows(small_corpus) -> list[list]:
    return [json.loads(line) for line in Path(small_corpus).read_text().splitlines() if line]


def _planted(truth: pl.DataFrame) -> dict[str, str]:
    return dict(zip(truth["title"].to_list(), truth["planted_genre"].to_list(), strict=True))


def _a_book_with_genre(home: Path, corpus_rows) -> tuple[str, str]:
    for row in corpus_rows:
        result = invoke(["search", row[0], "--limit", "1", "--json", "--exact"], home)
        if result.exit_code != 0:
            continue
        genres = json.loads(invoke(["search", row[0], "--json", "--exact"], home).stdout)
        if genres:
            from bookvec.model.corpus.genres import canonical_genres

            mine = canonical_genres(row[1].get("genre"))
            if mine:
                return row[0], mine[0]
    raise AssertionError("no book with a genre in the small corpus")


def test_search_json_shape_and_self_excluded(trained_home, corpus_rows):
    title = corpus_rows[0][0]
    result = invoke(["search", title, "--json", "--limit", "7"], trained_home)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 7
    assert title not in [h["title"] for h in hits]
    assert {"title", "score", "genres", "author"} <= set(hits[0])
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_neighbours_share_the_planted_genre(trained_home, truth):
    planted = _planted(truth)
    agree = total = 0
    for title in truth["title"].to_list()[:40]:
        result = invoke(["search", title, "--json", "--limit", "5", "--exact"], trained_home)
        if result.exit_code != 0:  # a book whose links were all dropped by cleaning
            continue
        for hit in json.loads(result.stdout):
            agree += planted.get(hit["title"]) == planted[title]
            total += 1
    assert total > 100
    assert agree / total > 0.7, agree / total


def test_genre_filter_returns_only_that_genre(trained_home, corpus_rows):
    title, genre = _a_book_with_genre(trained_home, corpus_rows)
    result = invoke(["search", title, "--genre", genre, "--json", "--limit", "20"], trained_home)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits
    assert all(genre in hit["genres"] for hit in hits)


def test_unknown_title_is_one_line_exit_1_with_suggestions(trained_home, corpus_rows):
    title = corpus_rows[3][0]
    result = invoke(["search", title[:-2] + "zz"], trained_home)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: unknown book")
    assert "Traceback" not in result.output


def test_upserted_book_lands_among_its_genre(mutable_home, truth, corpus_rows):
    trained_home = mutable_home
    planted = _planted(truth)
    genre = Counter(planted.values()).most_common(1)[0][0]
    donors = [row for row in corpus_rows if planted.get(row[0]) == genre][:3]
    links = sorted({link for row in donors for link in row[2]})
    record = {"title": "A Brand New Book", "links": links, "genres": [genre], "author": "Nobody"}
    payload = json.dumps(record) + "\n"
    first = invoke(["upsert", "-", "--json"], trained_home, input=payload)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["added"] == 1
    again = invoke(["upsert", "-", "--json"], trained_home, input=payload)
    assert json.loads(again.stdout)["unchanged"] == 1
    result = invoke(["search", "A Brand New Book", "--json", "--limit", "10"], trained_home)
    hits = json.loads(result.stdout)
    share = sum(planted.get(h["title"]) == genre for h in hits) / len(hits)
    assert share >= 0.8, hits


def test_observed_pair_scores_above_unobserved(trained_home):
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=trained_home / "models")
    books = bundle.books
    title = books.sort("n_links", descending=True)["title"][0]
    row = invoke(["score", title, bundle.link_names[0], "--json", "--exact"], trained_home)
    assert row.exit_code == 0, row.output
    from bookvec.model.corpus.prepare import PreparedCorpus  # noqa: F401  (import check only)

    # observed links of the book: score them all, and as many unobserved ones
    corpus_path = Path(bundle.manifest.corpus.path)
    record = next(
        json.loads(line) for line in corpus_path.read_text().splitlines() if f'"{title}"' in line
    )
    observed = {link.lower() for link in record[2]} & set(bundle.link_names)
    unobserved = [name for name in bundle.link_names if name not in observed][: len(observed)]
    lines = "book,link\n" + "".join(f'"{title}","{name}"\n' for name in [*observed, *unobserved])
    result = invoke(["score", "--pairs", "-", "--json", "--exact"], trained_home, input=lines)
    assert result.exit_code == 0, result.output
    probs = {r["link"]: r["probability"] for r in json.loads(result.stdout)}
    wins = sum(probs[o] > probs[u] for o in observed for u in unobserved)
    assert wins / (len(observed) * len(unobserved)) > 0.85  # an AUC over this book's pairs


def test_score_unknown_link_suggests(trained_home):
    from bookvec.model.bundle import open_bundle

    bundle = open_bundle(None, models_dir=trained_home / "models")
    result = invoke(["score", bundle.book_titles[0], "zzzz no such page zzzz"], trained_home)
    assert result.exit_code == 1
    assert "unknown link" in result.stderr


def test_search_process_never_imports_torch(trained_home, corpus_rows):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bookvec.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['search', {corpus_rows[0][0]!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['score', {corpus_rows[0][0]!r}, 'x', '--json'])\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {"BOOKVEC_HOME": str(trained_home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_info_reports_model_and_store(trained_home):
    result = invoke(["info", "--json"], trained_home)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["model"]["id"] == info["store"]["model"]
    assert info["store"]["points"] >= info["model"]["books"]
