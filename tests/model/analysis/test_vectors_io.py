"""Vector exports: each format's round trip, title escaping, gensim loading, the CLI."""

from __future__ import annotations

import json
from urllib.parse import unquote

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookvec.errors import BundleError, ConfigError, InputError
from bookvec.model.analysis import vectors_io as vio
from tests.conftest import invoke
from tests.model.analysis.test_evaluate import planted, write_bundle

AWKWARD = [
    "War and Peace",
    "Tab\there",
    "New\nline",
    "100% Pure",
    "%20 already escaped",
    "Ünïcödé – “quotes”",
    "no\u00a0break space",
    "trailing space ",
    "Plain",
]


@pytest.fixture()
def table() -> vio.VectorTable:
    rng = np.random.default_rng(0)
    metadata = pl.DataFrame(
        {
            "genres": [["novel", "war"]] + [[]] * (len(AWKWARD) - 1),
            "author": ["Leo Tolstoy"] + [None] * (len(AWKWARD) - 1),
            "year": list(range(1869, 1869 + len(AWKWARD))),
        }
    )
    vectors = rng.standard_normal((len(AWKWARD), 7)).astype(np.float32)
    return vio.VectorTable(list(AWKWARD), vectors, metadata)


def test_escape_is_reversible_and_whitespace_free():
    for title in AWKWARD:
        token = vio.escape_token(title)
        assert not any(ch.isspace() for ch in token)
        assert vio.unescape_token(token) == title == unquote(token)
    assert vio.escape_token("War and Peace") == "War%20and%20Peace"
    with pytest.raises(InputError):
        vio.escape_token("")


@given(st.text(min_size=1))
def test_escape_round_trips_any_text(title):
    token = vio.escape_token(title)
    assert token.split() == [token]
    assert vio.unescape_token(token) == title


@pytest.mark.parametrize("name", ["v.parquet", "v.npy", "v.txt", "v.w2v", "v.vec"])
def test_round_trip_by_extension(tmp_path, table, name):
    files = vio.write(table, tmp_path / name)
    back = vio.read(tmp_path / name)
    assert back.names == AWKWARD
    np.testing.assert_array_equal(back.vectors, table.vectors)  # float32 exactly
    assert files[0] == tmp_path / name
    if name.endswith(".npy"):
        assert files[1] == tmp_path / "v.index.tsv"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_parquet_keeps_metadata_and_a_fixed_size_vector_column(tmp_path, table):
    import pyarrow.parquet as pq

    vio.write(table, tmp_path / "v.parquet")
    schema = pq.read_schema(tmp_path / "v.parquet")
    assert str(schema.field("vector").type).startswith("fixed_size_list<element: float>[7]")
    frame = pl.read_parquet(tmp_path / "v.parquet")
    assert frame.columns == ["index", "title", "vector", "genres", "author", "year"]
    assert frame["genres"][0].to_list() == ["novel", "war"]


def test_npy_index_is_a_tsv_with_a_header(tmp_path, table):
    vio.write(table, tmp_path / "v.npy")
    lines = (tmp_path / "v.index.tsv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "index\ttitle\tgenres\tauthor\tyear"
    assert lines[1] == "0\tWar and Peace\tnovel; war\tLeo Tolstoy\t1869"
    assert lines[2].split("\t")[1] == "Tab%09here"  # tab, newline and % are escaped
    assert len(lines) == len(AWKWARD) + 2  # header + rows + final newline


def test_word2vec_text_layout(tmp_path, table):
    vio.write(table, tmp_path / "v.txt")
    lines = (tmp_path / "v.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"{len(AWKWARD)} 7"
    assert lines[1].split(" ")[0] == "War%20and%20Peace"
    assert all(len(line.split(" ")) == 8 for line in lines[1:])


def test_gensim_loads_the_word2vec_file_with_the_same_neighbours(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    corpus = planted(n_books=120, pool=10, per_book=4)
    names = [f"Book {i} ({'x' if i % 2 else 'y %'})" for i in range(120)]
    table = vio.VectorTable(names, vio_normalised(corpus.book_vectors))
    vio.write(table, tmp_path / "books.w2v")
    keyed = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "books.w2v"))
    assert [vio.unescape_token(k) for k in keyed.index_to_key] == names
    from bookvec.model.analysis.evaluate import nearest_neighbours

    ours = nearest_neighbours(table.vectors, 5, queries=np.array([3]))[0]
    theirs = [k for k, _ in keyed.most_similar(vio.escape_token(names[3]), topn=5)]
    assert [vio.unescape_token(k) for k in theirs] == [names[i] for i in ours]


def vio_normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_format_errors(tmp_path, table):
    with pytest.raises(ConfigError, match="extension"):
        vio.format_for(tmp_path / "v.csv")
    with pytest.raises(ConfigError, match="unknown format"):
        vio.format_for(tmp_path / "v.txt", "csv")
    assert vio.format_for(tmp_path / "anything", "npy") == "npy"
    with pytest.raises(InputError):
        vio.write(table, tmp_path / "missing" / "v.parquet")
    (tmp_path / "bad.txt").write_text("2 3\nA 1 2 3\n", encoding="utf-8")
    with pytest.raises(InputError, match="header says 2"):
        vio.read_word2vec(tmp_path / "bad.txt")


def test_mismatched_names_and_vectors_are_refused():
    with pytest.raises(InputError):
        vio.VectorTable(["a", "b"], np.zeros((3, 2)))


# ---------------------------------------------------------------------------------------------
# From a bundle, through the CLI


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    corpus = planted(n_books=60, pool=5, per_book=3)
    books = corpus.books.with_columns(
        pl.Series("title", [f"Book {i}" if i else "Book\twith tab" for i in range(60)])
    )
    path = tmp_path_factory.mktemp("vectors")
    write_bundle(path, books, corpus.book_vectors, corpus.link_vectors, raw=True)
    return path, corpus, books


def test_cli_vectors_each_format(home, tmp_path):
    path, corpus, books = home
    for name in ("b.parquet", "b.npy", "b.w2v"):
        result = invoke(["vectors", str(tmp_path / name), "--json"], path)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["rows"] == 60 and summary["dim"] == 16 and summary["normalised"]
        back = vio.read(tmp_path / name)
        assert back.names == books["title"].to_list()
        np.testing.assert_allclose(np.linalg.norm(back.vectors, axis=1), 1.0, rtol=1e-5)
    links = invoke(["vectors", str(tmp_path / "l.txt"), "--links", "--format", "word2vec"], path)
    assert links.exit_code == 0, links.output
    assert "link vectors" in links.stderr
    assert vio.read(tmp_path / "l.txt").names[0] == "link 0"


def test_cli_vectors_raw(home, tmp_path):
    path, corpus, _ = home
    result = invoke(["vectors", str(tmp_path / "raw.npy"), "--raw"], path)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), corpus.book_vectors)
    missing = invoke(["vectors", str(tmp_path / "raw_links.npy"), "--raw", "--links"], path)
    assert missing.exit_code == 1
    assert "does not store raw" in missing.stderr and "link_embeddings_raw.npy" in missing.stderr


def test_bundle_without_raw_vectors_raises(tmp_path):
    from bookvec.model.bundle import open_bundle

    corpus = planted(n_books=30, pool=5, per_book=3)
    write_bundle(tmp_path, corpus.books, corpus.book_vectors, corpus.link_vectors)
    bundle = open_bundle(None, models_dir=tmp_path / "models")
    with pytest.raises(BundleError, match="raw"):
        vio.bundle_table(bundle, raw=True)


def test_cli_vectors_bad_extension_is_one_line(home, tmp_path):
    path, _, _ = home
    result = invoke(["vectors", str(tmp_path / "out.csv")], path)
    assert result.exit_code == 1 and result.stderr.startswith("Error: cannot tell the format")
