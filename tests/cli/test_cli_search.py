"""`bookvec search` beyond one title: --like/--unlike, --link, genre modes, every output format,
title resolution through the store, and its usage errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import invoke


@pytest.fixture(scope="module")
def bundle(trained_home):
    from bookvec.model.bundle import open_bundle

    return open_bundle(None, models_dir=trained_home / "models")


@pytest.fixture(scope="module")
def titles(bundle) -> list[str]:
    """Three well-linked books of the trained corpus."""
    return bundle.books.sort("n_links", descending=True)["title"].to_list()[:3]


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_output_format_gives_the_same_rows(trained_home, titles):
    args = ["search", titles[0], "--limit", "5", "--exact"]
    as_json = _json(invoke([*args, "--json"], trained_home))
    jsonl = invoke([*args, "--jsonl"], trained_home)
    as_jsonl = [json.loads(line) for line in jsonl.stdout.splitlines()]
    as_csv = list(csv.DictReader(io.StringIO(invoke([*args, "--csv"], trained_home).stdout)))
    table = invoke(args, trained_home)
    assert table.exit_code == 0
    assert as_jsonl == as_json
    common = ["title", "score", "genres", "author", "country", "year"]
    assert list(as_csv[0]) == [*common, "corpus"]  # the planted corpus is labelled synthetic
    assert [row["title"] for row in as_csv] == [hit["title"] for hit in as_json]
    assert as_csv[0]["genres"] == "; ".join(as_json[0]["genres"])
    assert list(as_json[0]) == [*common, "corpus"] and as_json[0]["corpus"] == "synthetic"
    assert as_json[0]["title"] in table.stdout and "score" in table.stdout  # hybrid, fused
    dense = invoke([*args, "--mode", "dense"], trained_home)
    assert "cosine" in dense.stdout and "[hybrid]" not in dense.stdout


def test_like_several_and_unlike(trained_home, titles, bundle):
    a, b, c = titles
    hits = _json(
        invoke(
            ["search", "--like", a, "--like", b, "--unlike", c, "--json", "-k", "8", "-m", "dense"],
            trained_home,
        )
    )
    assert len(hits) == 8
    assert not {a, b, c} & {hit["title"] for hit in hits}
    # the recommend query is 2*mean(liked) - mean(unliked); scores are cosines with it
    vectors = np.asarray(bundle.book_vectors, dtype=np.float64)
    index = bundle.book_index
    query = (vectors[index[a]] + vectors[index[b]]) - vectors[index[c]]
    query /= np.linalg.norm(query)
    top = hits[0]
    assert top["score"] == pytest.approx(float(vectors[index[top["title"]]] @ query), abs=1e-3)
    # TITLE plus --like is the same as two --like
    same = _json(
        invoke(
            ["search", a, "--like", b, "--unlike", c, "--json", "-k", "8", "-m", "dense"],
            trained_home,
        )
    )
    assert [h["title"] for h in same] == [h["title"] for h in hits]


def test_link_query_ranks_by_cosine_with_the_link(trained_home, bundle):
    name = bundle.link_names[0]  # the most linked page
    args = ["search", "--link", name.upper(), "--json", "-k", "5", "--mode", "dense"]
    hits = _json(invoke(args, trained_home))
    books = np.asarray(bundle.book_vectors)
    cosine = books @ np.asarray(bundle.link_vectors)[0]
    expected = [bundle.book_titles[i] for i in np.argsort(-cosine)[:5]]
    assert [h["title"] for h in hits] == expected
    assert hits[0]["score"] == pytest.approx(float(cosine.max()), abs=1e-4)


def test_genre_any_and_all(trained_home, titles):
    hits = _json(invoke(["search", titles[0], "--json", "-k", "50"], trained_home))
    genres = [g for hit in hits for g in hit["genres"]]
    g1, g2 = sorted(set(genres), key=genres.count, reverse=True)[:2]
    anyof = _json(invoke(["search", titles[0], "-g", g1, "-g", g2, "--json"], trained_home))
    assert anyof and all({g1, g2} & set(h["genres"]) for h in anyof)
    args = ["search", titles[0], "-g", g1, "-g", g2, "--all-genres", "--json", "-k", "50"]
    for hit in _json(invoke(args, trained_home)):
        assert {g1, g2} <= set(hit["genres"])


def test_empty_result_is_an_empty_list_or_a_note(trained_home, titles):
    args = ["search", titles[0], "--year-from", "3000"]
    assert _json(invoke([*args, "--json"], trained_home)) == []
    table = invoke(args, trained_home)
    assert table.exit_code == 0 and table.stdout == ""
    assert "no book matches" in table.stderr
    assert invoke([*args, "--csv"], trained_home).stdout.startswith("title,score,")


def test_loose_title_resolves_and_exact_refuses(trained_home, titles):
    loose = titles[0].upper() + "!"
    hits = _json(invoke(["search", loose, "--json", "-k", "3"], trained_home))
    assert titles[0] not in [h["title"] for h in hits]
    refused = invoke(["search", loose, "--exact"], trained_home)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: unknown book {loose!r} (did you mean: ")
    assert repr(titles[0]) in refused.stderr


def test_ambiguous_title_lists_candidates(trained_home, tmp_path: Path, titles, bundle):
    links = bundle.link_names[:5]
    lines = "".join(
        json.dumps({"title": f"Twin ({kind})", "links": links}) + "\n" for kind in ("film", "novel")
    )
    args = ["--collection", "ambiguous"]
    assert invoke(["upsert", "-", *args], trained_home, input=lines).exit_code == 0
    result = invoke(["search", "twin", *args], trained_home)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: 'twin' matches several books (use one of: 'Twin (film)'; 'Twin (novel)')"
    )
    ok = _json(invoke(["search", "twin (film)", *args, "--json"], trained_home))
    assert [h["title"] for h in ok] == ["Twin (novel)"]


@pytest.mark.parametrize(
    "args",
    [
        ["search"],  # no query
        ["search", "x", "--link", "y"],  # --link is a query of its own
        ["search", "--unlike", "x"],  # nothing to like
        ["search", "x", "--all-genres"],  # --all-genres without --genre
        ["search", "x", "--json", "--csv"],  # two output formats
        ["search", "x", "--limit", "0"],
        ["search", "x", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(trained_home, args):
    result = invoke(args, trained_home)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unknown_link_suggests(trained_home, bundle):
    name = bundle.link_names[3]
    result = invoke(["search", "--link", name[:-1] + "qq"], trained_home)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: unknown link")
    assert repr(name) in lines[0]


def test_modes_and_diverse(trained_home, titles, bundle):
    """--mode sparse ranks by shared pages, hybrid (the default) fuses both sides, --diverse
    keeps the best book first and changes the rest; `info` names the default mode."""
    title = titles[0]
    args = ["search", title, "--json", "-k", "10", "--exact"]
    default = _json(invoke(args, trained_home))
    hybrid = _json(invoke([*args, "--mode", "hybrid"], trained_home))
    assert default == hybrid
    sparse = _json(invoke([*args, "--mode", "sparse"], trained_home))
    links = {bundle.link_names[k] for k in _links_of(bundle, title)}
    for hit in sparse:  # every sparse hit shares at least one page with the query book
        assert links & {bundle.link_names[k] for k in _links_of(bundle, hit["title"])}
    assert [h["score"] for h in sparse] == sorted((h["score"] for h in sparse), reverse=True)
    dense = _json(invoke([*args, "--mode", "dense"], trained_home))
    diverse = _json(invoke([*args, "--mode", "dense", "--diverse"], trained_home))
    assert diverse[0]["title"] == dense[0]["title"] and diverse != dense
    info = json.loads(invoke(["info", "--json"], trained_home).stdout)
    assert info["store"]["search_mode"] == "hybrid" and info["store"]["sparse"] == "coherent"
    assert info["store"]["fusion"].startswith("dense + 0.5 x sparse / best sparse")
    bad = invoke([*args, "--mode", "cosine"], trained_home)
    assert bad.exit_code == 2 and "--mode" in bad.output


def _links_of(bundle, title: str) -> set[int]:
    pairs = np.asarray(bundle.pairs)
    return set(pairs[pairs[:, 0] == bundle.book_index[title], 1].tolist())
