"""The Python API (`import bookvec`) on the trained small synthetic corpus: planted-structure
answers, loose titles, the same answers as the CLI for the same query, results' to_dict()
equal to the CLI's --json records."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import bookvec
from bookvec.errors import TitleNotFoundError
from tests.conftest import invoke


@pytest.fixture(scope="module")
def model(trained_home):
    return bookvec.load(home=trained_home)


@pytest.fixture(scope="module")
def index(trained_home):
    with bookvec.open_index(home=trained_home) as ix:
        yield ix


@pytest.fixture(scope="module")
def truth(small_corpus) -> dict[str, str]:
    frame = pl.read_parquet(f"{small_corpus}.truth.parquet")
    return dict(zip(frame["title"], frame["planted_genre"], strict=True))


@pytest.fixture(scope="module")
def book(model) -> str:
    return model.bundle.books.sort("n_links", descending=True)["title"][0]


def cli_json(home, *args):
    result = invoke(list(args), home)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_neighbours_share_the_planted_genre(model, truth):
    """Planted structure: most of a book's nearest books carry its planted genre (30 genres:
    chance is ~0.03)."""
    agree = []
    for title in model.titles[:60]:
        hits = model.most_similar(title, topn=10)
        assert len(hits) == 10 and title not in [h.title for h in hits]
        agree.append(np.mean([truth[h.title] == truth[title] for h in hits]))
    assert np.mean(agree) > 0.5, np.mean(agree)


def test_vectors_are_unit_rows_of_the_bundle(model, book):
    vector = model.vecs[book]
    assert vector.shape == (model.dim,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert np.array_equal(model.to_numpy()[model.titles.index(book)], vector)
    assert book in model.vecs and len(model.vecs) == len(model.titles)
    frame = model.to_polars()
    assert frame["title"].to_list() == model.titles
    assert np.allclose(np.asarray(frame["vector"].to_list()), model.to_numpy())
    assert model.similarity(book, book) == pytest.approx(1.0, abs=1e-5)


def test_loose_titles_as_the_cli(model, book):
    shouted = book.upper()
    assert model.resolve(shouted) == book
    assert np.array_equal(model.vecs[shouted], model.vecs[book])
    assert model.most_similar(shouted, topn=3) == model.most_similar(book, topn=3)
    with pytest.raises(TitleNotFoundError) as err:
        model.most_similar(shouted, exact=True)
    assert book in err.value.suggestions
    with pytest.raises(TitleNotFoundError) as err:
        model.vecs[book[:-1] + "x"]
    assert err.value.suggestions  # the closest titles, as the CLI prints them


def test_most_similar_is_search_dense(trained_home, model, book):
    ours = [n.to_dict() for n in model.most_similar(book, topn=10)]
    theirs = cli_json(trained_home, "search", book, "--mode", "dense", "--json")
    assert [r["title"] for r in ours] == [r["title"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a == {**b, "score": pytest.approx(b["score"], abs=2e-6)}


def test_most_similar_with_negatives_is_recommend(trained_home, model):
    like, also, unlike = model.titles[3], model.titles[40], model.titles[77]
    ours = model.most_similar([like, also], negative=[unlike], topn=8)
    theirs = cli_json(
        trained_home, "search", "--like", like, "--like", also, "--unlike", unlike,
        "--mode", "dense", "-k", "8", "--json",
    )  # fmt: skip
    assert [n.title for n in ours] == [r["title"] for r in theirs]
    assert [n.score for n in ours] == pytest.approx([r["score"] for r in theirs], abs=2e-6)


def test_index_search_is_the_cli_search(trained_home, index, model, book):
    genre = next(index.book(t).genres[0] for t in model.titles if index.book(t).genres)
    cases = [
        ((book,), {}, [book, "--json"]),
        ((book,), {"genres": [genre], "limit": 5}, [book, "-g", genre, "-k", "5", "--json"]),
        ((), {"like": [book], "mode": "sparse"}, ["--like", book, "--mode", "sparse", "--json"]),
        ((), {"link": model.link_names[0], "years": (1950, None)},
         ["--link", model.link_names[0], "--year-from", "1950", "--json"]),
        ((book.lower(),), {"diverse": True}, [book.lower(), "--diverse", "--json"]),
    ]  # fmt: skip
    for args, kwargs, cli in cases:
        result = index.search(*args, **kwargs)
        assert result.records() == cli_json(trained_home, "search", *cli), (args, kwargs)
        assert len(result) == len(result.records()) and result.synthetic


def test_model_commands_are_the_cli(trained_home, model, book):
    other = model.most_similar(book, topn=1)[0].title
    page = model.links(book, topn=3).links[0].title
    assert model.links(book, topn=15).records() == cli_json(
        trained_home, "links", book, "-k", "15", "--json"
    )
    assert model.links(book, missing=True).records() == cli_json(
        trained_home, "links", book, "--missing", "-k", "10", "--json"
    )
    assert [h.to_dict() for h in model.similar_links(page, topn=5)] == cli_json(
        trained_home, "similar-links", page, "-k", "5", "--json"
    )
    assert model.explain(book, other).to_dict() == cli_json(
        trained_home, "explain", book, other, "--json"
    )
    single = model.score([(book, page)])
    assert single.records()[0] == cli_json(trained_home, "score", book, page, "--json")


def test_score_a_frame_as_score_pairs(trained_home, model, tmp_path):
    frame = pl.DataFrame(
        {"book": model.titles[:20], "link": [model.link_names[i * 3] for i in range(20)]}
    )
    path = tmp_path / "pairs.csv"
    frame.write_csv(path)
    result = model.score(frame)
    assert result.records() == cli_json(trained_home, "score", "--pairs", str(path), "--json")
    assert all(0 < p < 1 for p in result.probabilities)


def test_score_a_pandas_frame(model):
    pytest.importorskip("pandas")  # not a dependency of bookvec
    frame = pl.DataFrame({"book": model.titles[:5], "link": model.link_names[:5]})
    assert model.score(frame.to_pandas()).probabilities == model.score(frame).probabilities


def test_info_is_the_cli_info(trained_home, index):
    assert index.info().to_dict() == cli_json(trained_home, "info", "--json")


def test_book_complete_and_facets(index, model, book):
    record = index.book(book.lower())
    assert record.title == book and record.source == "bundle"
    assert record.to_dict()["genres"] == list(model.bundle.books.row(
        model.titles.index(book), named=True)["genres"])  # fmt: skip
    prefix = book[: max(4, len(book) // 2)]
    completions = index.complete(prefix, limit=5)
    assert book in completions or len(completions) == 5
    assert all(isinstance(t, str) for t in completions) and index.complete("") == []
    assert book in index.complete(book + "q", limit=3)  # fuzzy when no prefix fits
    facets = index.facets()
    counts = model.bundle.books.explode("genres")["genres"].drop_nulls().value_counts()
    assert facets == dict(zip(counts["genres"], counts["count"], strict=True))
    assert list(facets.values()) == sorted(facets.values(), reverse=True)


def test_upsert_fold_in_and_delete_as_the_cli(mutable_home, tmp_path):
    model = bookvec.load(home=mutable_home)
    links = model.link_names[:8]
    books = [{"title": "Library Book", "links": links, "genres": ["fantasy"]}]
    with bookvec.open_index(home=mutable_home) as ix:
        dry = ix.upsert(books, dry_run=True)
        path = tmp_path / "same.jsonl"
        path.write_text(json.dumps(books[0]) + "\n", encoding="utf-8")
        assert dry.to_dict() == cli_json(mutable_home, "upsert", str(path), "--dry-run", "--json")
        report = ix.upsert(books)
        assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
        again = cli_json(mutable_home, "upsert", str(path), "--json")
        assert (again["added"], again["unchanged"]) == (0, 1)  # the same content hash
        stored = ix.store.get(["Library Book"], with_vectors=True)["Library Book"]
        assert np.allclose(stored.vector, model.fold_in(links), atol=1e-5)
        record = ix.book("library book")
        assert record.source == "upsert" and list(record.links) == links
        # the upserted book is known to links, explain, score through the index
        assert ix.links("Library Book", topn=5).upserted
        assert ix.explain("Library Book", model.titles[0]).a_upserted
        assert ix.score([("Library Book", links[0])]).scores[0].upserted
        preview = ix.delete(["library book"], dry_run=True)
        cli = cli_json(mutable_home, "delete", "library book", "--dry-run", "--json")
        assert preview.to_dict() == cli
        gone = ix.delete(["Library Book"])
        assert gone.deleted == 1 and gone.titles == ("Library Book",)
        assert "Library Book" not in ix.store.titles()


def test_results_are_frozen(model, book):
    hit = model.most_similar(book, topn=1)[0]
    with pytest.raises(AttributeError):
        hit.score = 0.0  # type: ignore[misc]
