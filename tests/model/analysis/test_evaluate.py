"""Evaluation metrics on planted corpora with known answers, hand-computed cases, baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from bookvec.errors import ConfigError, InputError
from bookvec.model.analysis import evaluate as ev
from bookvec.model.linalg import top_k_rows
from tests.conftest import invoke


@dataclass
class Planted:
    books: pl.DataFrame
    pairs: np.ndarray  # int32 (P, 2)
    held_out: np.ndarray  # (H, 2) distinct pairs, a subset of ``pairs``
    book_vectors: np.ndarray  # the planted answer: genre centroid + author offset + noise
    link_vectors: np.ndarray
    genre: np.ndarray
    author: np.ndarray
    n_links: int


def planted(
    n_books: int = 600,
    n_genres: int = 6,
    pool: int = 40,
    per_book: int = 10,
    author_size: int = 3,
    dim: int = 16,
    seed: int = 0,
    held_fraction: float = 0.1,
) -> Planted:
    """Books in ``n_genres`` equal genre blocks, authors of ``author_size`` consecutive books
    (one genre each). A book links to ``per_book`` pages of its genre's pool, its author's
    page and two of five global pages. Planted vectors: orthonormal genre centroids + an author
    offset; pool links sit on their centroid, global links on the sum of all centroids."""
    rng = np.random.default_rng(seed)
    genre = np.arange(n_books) * n_genres // n_books
    author = np.arange(n_books) // author_size
    n_authors = int(author.max()) + 1
    author_link0 = n_genres * pool
    global0 = author_link0 + n_authors
    n_links = global0 + 5
    rows = []
    for b in range(n_books):
        own = genre[b] * pool + rng.choice(pool, per_book, replace=False)
        rows += [(b, link) for link in own]
        rows.append((b, author_link0 + author[b]))
        rows += [(b, global0 + g) for g in rng.choice(5, 2, replace=False)]
    pairs = np.asarray(rows, dtype=np.int32)
    keys = np.unique(ev.pair_keys(pairs, n_links))
    held = rng.choice(keys, int(held_fraction * len(keys)), replace=False)
    held_out = np.stack([held // n_links, held % n_links], axis=1)

    centroids = np.linalg.qr(rng.standard_normal((dim, n_genres)))[0].T  # orthonormal
    offsets = rng.standard_normal((n_authors, dim)) / np.sqrt(dim)
    book_vectors = (
        centroids[genre] + 0.3 * offsets[author] + 0.02 * rng.standard_normal((n_books, dim))
    )
    link_vectors = np.concatenate(
        [
            np.repeat(centroids, pool, axis=0),
            centroids[genre[::author_size][:n_authors]] + 0.3 * offsets,
            np.tile(centroids.sum(axis=0), (5, 1)),  # pages every genre links to
        ]
    )
    books = pl.DataFrame(
        {
            "index": np.arange(n_books, dtype=np.int32),
            "title": [f"Book {b}" for b in range(n_books)],
            "genres": [[f"genre {g}"] for g in genre],
            "author": [f"Author {a}" for a in author],
            "authors": [[f"Author {a}"] for a in author],
            "year": [2000 + b % 20 for b in range(n_books)],
            "n_links": np.bincount(pairs[:, 0], minlength=n_books).astype(np.int32),
        },
        schema_overrides={"year": pl.Int32},
    )
    return Planted(
        books,
        pairs,
        held_out,
        book_vectors.astype(np.float32),
        link_vectors.astype(np.float32),
        genre,
        author,
        n_links,
    )


@pytest.fixture(scope="module")
def corpus() -> Planted:
    return planted()


# ---------------------------------------------------------------------------------------------
# Hand-computed cases


def test_roc_auc_by_hand():
    # pairs (pos > neg): 0.9>0.1, 0.9>0.85, 0.8>0.1, 0.8<0.85 -> 3 of 4
    assert ev.roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.85])) == pytest.approx(0.75)
    assert ev.roc_auc(np.array([0.5]), np.array([0.5])) == pytest.approx(0.5)  # tie: one half
    assert ev.roc_auc(np.array([1.0, 2.0]), np.array([0.0])) == pytest.approx(1.0)


def test_link_ranking_by_hand():
    book = np.array([[1.0, 0.0]], dtype=np.float32)
    # scores of links 0..4 for the book: 0.9, 0.5, 0.7, 0.1, 0.5
    links = np.array([[0.9, 0], [0.5, 0], [0.7, 0], [0.1, 0], [0.5, 0]], dtype=np.float32)
    known = np.array([[0, 0], [0, 2], [0, 3]])  # link 0 trained on; 2 and 3 held out
    held = np.array([[0, 2], [0, 3]])
    result = ev.link_ranking(book, links, held, known, k=2)
    # link 2 (0.7): link 0 is filtered out, nothing else above -> rank 1
    # link 3 (0.1): links 1 and 4 (0.5) above, link 2 filtered -> rank 3
    assert result["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert result["hits@2"] == pytest.approx(0.5)
    assert result["ranked"] == 2 and result["books"] == 1
    # a tie counts one half: link 1 (0.5) ties with link 4 -> rank 1.5
    tie = ev.link_ranking(book, links, np.array([[0, 1]]), np.array([[0, 0], [0, 1]]), k=1)
    assert tie["mrr"] == pytest.approx(1 / 2.5)  # links 2 (0.7) above, 4 tied: 1 + 1 + 0.5
    assert tie["hits@1"] == 0.0


def test_link_ranking_many_held_out_per_book_matches_a_loop():
    rng = np.random.default_rng(3)
    n_books, n_links = 30, 200
    books = rng.standard_normal((n_books, 8)).astype(np.float32)
    links = rng.standard_normal((n_links, 8)).astype(np.float32)
    keys = rng.choice(n_books * n_links, 900, replace=False)
    known = np.stack([keys // n_links, keys % n_links], axis=1)
    held = known[:300]
    got = ev.link_ranking(books, links, held, known, k=10, chunk_size=7, threads=2)
    scores = books @ links.T
    known_set = {tuple(p) for p in known.tolist()}
    ranks = []
    for b, link in held.tolist():
        others = [s for j, s in enumerate(scores[b]) if (b, j) not in known_set]
        ranks.append(1 + sum(s > scores[b, link] for s in others))
    assert got["mrr"] == pytest.approx(np.mean(1 / np.array(ranks)), rel=1e-6)
    assert got["hits@10"] == pytest.approx(np.mean(np.array(ranks) <= 10))


def test_genre_agreement_and_author_metrics_by_hand():
    labels = ev.BookLabels.from_lists(
        [["a"], ["a", "b"], ["b"], None],
        ["X", "x ", "Y", "X"],  # authors: case/space folded
    )
    neighbours = np.array([[1, 2], [0, 3], [1, 0], [0, 1]])
    value, counted = ev.genre_agreement(neighbours, labels)
    # book 0 (a): 1 yes, 2 no -> 0.5; book 1 (a,b): 0 yes, 3 none -> 0.5; book 2 (b): 1 yes,
    # 0 no -> 0.5; book 3 has no genre and is not counted
    assert counted == 3 and value == pytest.approx(0.5)
    authors = ev.author_metrics(neighbours, labels)
    # author X: books 0, 1, 3 (3 books); Y: book 2 alone (not counted)
    # book 0: neighbours 1 (X), 2 -> found 1 of min(2, 2) = 0.5, nearest same
    # book 1: 0 (X), 3 (X) -> 2/2 = 1, nearest same; book 3: 0, 1 -> 1, nearest same
    assert authors["author_books"] == 3
    assert authors["author_recall@2"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert authors["author_nn@1"] == pytest.approx(1.0)
    # the same on a subset of query books
    sub = ev.author_metrics(neighbours[[0]], labels, queries=np.array([0]))
    assert sub["author_books"] == 1 and sub["author_recall@2"] == pytest.approx(0.5)
    assert ev.author_nn_chance(labels) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# Nearest neighbours


@pytest.mark.parametrize("n", [50, 3001])  # 3001: the blocked top-k with a short last block
def test_nearest_neighbours_dense_is_exact(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 12)).astype(np.float32)
    queries = np.sort(rng.choice(n, 40, replace=False))
    got = ev.nearest_neighbours(x, 10, queries=queries, chunk_size=16, threads=2)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    scores = unit[queries] @ unit.T
    scores[np.arange(len(queries)), queries] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(got, expected)


def test_nearest_neighbours_sparse_matches_dense():
    rng = np.random.default_rng(1)
    dense = (rng.random((400, 300)) < 0.05) * rng.random((400, 300))
    dense[0] = 0  # a book without links
    a = ev.nearest_neighbours(sp.csr_matrix(dense), 5, threads=1)
    b = ev.nearest_neighbours(dense, 5, threads=2)
    unit = dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit.T
    rows = np.arange(1, 400)[:, None]
    # same similarity values at each rank (ties may pick different books)
    np.testing.assert_allclose(sims[rows, a[1:]], sims[rows, b[1:]], atol=1e-6)
    assert not (a == np.arange(400)[:, None]).any()  # never itself


def test_top_k_rows_blocked_path_equals_argsort():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((20, 5000)).astype(np.float32)
    np.testing.assert_array_equal(
        top_k_rows(scores, 7), np.argsort(-scores, axis=1, kind="stable")[:, :7]
    )


def test_bad_k_is_a_config_error():
    with pytest.raises(ConfigError):
        ev.nearest_neighbours(np.ones((5, 2)), 5)


# ---------------------------------------------------------------------------------------------
# Planted structure, known answer


def test_planted_vectors_find_their_genre_and_author(corpus):
    labels = ev.BookLabels.from_books(corpus.books)
    truth = ev.neighbour_metrics(ev.nearest_neighbours(corpus.book_vectors, 10), labels)
    assert truth["genre_agreement@10"] > 0.99
    assert truth["author_nn@1"] > 0.95
    assert truth["author_recall@10"] > 0.95
    noise = ev.neighbour_metrics(ev.nearest_neighbours(ev.random_vectors(600, 16), 10), labels)
    assert abs(noise["genre_agreement@10"] - 1 / 6) < 0.05  # ~1/G for random vectors
    assert noise["author_nn@1"] < 0.05


def test_planted_vectors_predict_held_out_links(corpus):
    result = ev.link_prediction(
        ev.normalise(corpus.book_vectors),
        ev.normalise(corpus.link_vectors),
        corpus.held_out,
        corpus.pairs,
        seed=1,
    )
    assert result["auc"] > 0.9
    assert result["held_out"] == len(corpus.held_out) == result["negatives"]
    noise = ev.link_prediction(
        ev.random_vectors(600, 16), ev.random_vectors(corpus.n_links, 16, 1), corpus.held_out,
        corpus.pairs,
    )  # fmt: skip
    assert abs(noise["auc"] - 0.5) < 0.05
    assert result["mrr"] > 3 * noise["mrr"]


def test_negatives_are_never_observed(corpus):
    keys = np.unique(ev.pair_keys(corpus.pairs, corpus.n_links))
    negatives = ev.sample_negatives(5000, 600, corpus.n_links, keys, np.random.default_rng(0))
    assert not np.isin(ev.pair_keys(negatives, corpus.n_links), keys).any()


def test_baselines_beat_random_on_planted_links(corpus):
    train = ev.training_pairs(corpus.pairs, corpus.held_out, corpus.n_links)
    names = ["random", "binary_links", "tfidf", "svd"] + (
        ["als"] if ev.implicit_available() else []
    )
    built = ev.baseline_features(train, 600, corpus.n_links, names=names, dim=16)
    assert set(built) == set(names)
    labels = ev.BookLabels.from_books(corpus.books)
    agreement = {
        name: ev.genre_agreement(ev.nearest_neighbours(base.books, 10), labels)[0]
        for name, base in built.items()
    }
    assert agreement["random"] < 0.3
    for name in names[1:]:
        assert agreement[name] > 0.9, (name, agreement)
    assert built["svd"].links.shape == (corpus.n_links, 16)


def test_unknown_baseline_is_a_config_error(corpus):
    with pytest.raises(ConfigError):
        ev.baseline_features(corpus.pairs, 600, corpus.n_links, names=["word2vec"])


def test_training_pairs_drop_every_copy_of_a_held_out_pair():
    pairs = np.array([[0, 1], [0, 1], [0, 2], [1, 1]])
    train = ev.training_pairs(pairs, np.array([[0, 1]]), n_links=3)
    np.testing.assert_array_equal(train, [[0, 2], [1, 1]])


def test_out_of_range_pairs_are_an_input_error():
    with pytest.raises(InputError, match="link index 9"):
        ev.check_pairs(np.array([[0, 9]]), 2, 3)


def test_evaluate_embeddings_reports_everything(corpus):
    logged: list[str] = []
    result = ev.evaluate_embeddings(
        corpus.book_vectors,
        corpus.link_vectors,
        corpus.books,
        pairs=corpus.pairs,
        held_out_pairs=corpus.held_out,
        baselines=["random", "binary_links", "tfidf", "svd"],
        max_queries=300,
        max_ranked=200,
        log=logged.append,
    )
    json.dumps(result)  # JSON-ready
    assert result["query_books"] == 300
    assert set(result["link_prediction"]) == {"bookvec", "popularity", "svd", "random"}
    assert result["link_prediction"]["bookvec"]["ranked"] == 200
    assert set(result["neighbours"]) == {"bookvec", "random", "binary_links", "tfidf", "svd"}
    bookvec, noise = result["neighbours"]["bookvec"], result["neighbours"]["random"]
    assert bookvec["genre_agreement@10"] > 0.99 > 0.3 > noise["genre_agreement@10"]
    probe = result["probe"]
    assert set(probe["genre"]["results"]) == {"bookvec", "one_hot", "binary_links", "random"}
    assert result["train_pairs"] < len(corpus.pairs)
    assert any(line.startswith("neighbours.bookvec") for line in logged)


def test_evaluate_without_pairs_scores_neighbours_only(corpus):
    result = ev.evaluate_embeddings(
        corpus.book_vectors, corpus.link_vectors, corpus.books, probe=False, max_queries=None
    )
    assert result["link_prediction"] == {}
    assert list(result["neighbours"]) == ["bookvec"]
    assert result["query_books"] == 600


def test_evaluation_modules_never_import_torch():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import bookvec.model.analysis.evaluate as ev, bookvec.model.analysis.probe\n"
        "import bookvec.model.analysis.vectors_io\n"
        "import bookvec.cli.evaluate, bookvec.cli.vectors\n"
        "from tests.model.analysis.test_evaluate import planted\n"
        "c = planted(n_books=120, pool=10, per_book=4)\n"
        "ev.evaluate_embeddings(c.book_vectors, c.link_vectors, c.books, pairs=c.pairs,\n"
        "    held_out_pairs=c.held_out, baselines=['random', 'binary_links'])\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ev.__file__.rsplit("/", 3)[0])


# ---------------------------------------------------------------------------------------------
# Bundles for the CLI


def write_bundle(
    home: Path,
    books: pl.DataFrame,
    book_vectors: np.ndarray,
    link_vectors: np.ndarray,
    *,
    link_names: list[str] | None = None,
    held_out: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
    raw: bool = False,
    manifest: dict | None = None,
    model_id: str = "planted",
):
    """A bundle in ``home``/models from planted vectors (ONNX files are stubs: unused here)."""
    from bookvec.model.bundle import BundleWriter

    n_links = len(link_vectors)
    names = link_names or [f"link {i}" for i in range(n_links)]
    with BundleWriter(home / "models", model_id=model_id) as writer:
        books.write_parquet(writer.path / "books.parquet")
        pl.DataFrame(
            {"index": np.arange(n_links, dtype=np.int32), "name": names, "count": [1] * n_links},
            schema_overrides={"count": pl.Int32},
        ).write_parquet(writer.path / "links.parquet")
        np.save(writer.path / "book_vectors.npy", ev.normalise(book_vectors))
        np.save(writer.path / "link_vectors.npy", ev.normalise(link_vectors))
        for name in ("score.onnx", "fold_in.onnx"):
            (writer.path / name).write_bytes(b"stub")
        held_out = np.zeros((0, 2)) if held_out is None else held_out
        np.save(writer.path / "held_out_pairs.npy", held_out.astype(np.int32))
        pairs = np.zeros((0, 2)) if pairs is None else pairs
        pl.DataFrame({"book": pairs[:, 0], "link": pairs[:, 1]}).cast(pl.Int32).write_parquet(
            writer.path / "pairs.parquet"
        )
        if raw:
            np.save(writer.path / "book_embeddings_raw.npy", book_vectors.astype(np.float32))
        counts = {"books": books.height, "links": n_links, "pairs": 0}
        counts["dim"] = int(book_vectors.shape[1])
        return writer.commit({"counts": counts, "corpus": {}, **(manifest or {})})


@pytest.fixture(scope="module")
def synthetic_home(tmp_path_factory):
    """A BOOKVEC_HOME whose bundle comes from a small synthetic corpus (prepared for real) with
    planted book vectors and the held-out pairs stored in the bundle."""
    from bookvec.model.corpus.prepare import CleaningConfig, prepare
    from bookvec.model.corpus.synth import synthesize

    root = tmp_path_factory.mktemp("evaluate")
    path = root / "small.ndjson"
    synthesize(path, n_books=400, seed=3)
    prepared = prepare(path)
    truth = pl.read_parquet(str(path) + ".truth.parquet")
    planted_genre = dict(zip(truth["title"], truth["planted_genre"], strict=True))
    genre_ids = {g: i for i, g in enumerate(sorted(set(planted_genre.values())))}
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((len(genre_ids), 16))
    titles = prepared.books["title"].to_list()
    book_vectors = np.stack([centroids[genre_ids[planted_genre[t]]] for t in titles])
    book_vectors += 0.1 * rng.standard_normal(book_vectors.shape)
    link_vectors = rng.standard_normal((prepared.n_links, 16))
    keys = np.unique(ev.pair_keys(prepared.pairs, prepared.n_links))
    held = rng.choice(keys, len(keys) // 20, replace=False)
    manifest = {
        "corpus": {"path": str(path), "sha256": prepared.source_sha256, "synthetic": True},
        "cleaning": CleaningConfig().to_dict(),
        "config": {"validation_fraction": 0.05, "seed": 0},
    }
    home = root / "home"
    write_bundle(
        home,
        prepared.books,
        book_vectors,
        link_vectors,
        link_names=prepared.links["name"].to_list(),
        held_out=np.stack([held // prepared.n_links, held % prepared.n_links], axis=1),
        manifest=manifest,
    )
    return home, titles


def test_cli_evaluate_json(synthetic_home):
    home, _ = synthetic_home
    result = invoke(["evaluate", "--json", "--queries", "0", "--ranked", "300"], home)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["id"] == "planted" and report["model"]["synthetic"] is True
    assert report["split"]["note"] == "held_out_pairs.npy in the bundle"
    assert set(report["link_prediction"]) >= {"bookvec", "popularity", "svd", "random"}
    assert set(report["neighbours"]) >= {"bookvec", "random", "binary_links", "tfidf", "svd"}
    agreement = {name: row["genre_agreement@10"] for name, row in report["neighbours"].items()}
    assert agreement["bookvec"] > 2 * agreement["random"]  # infobox genres: noisy, often none
    genre = report["probe"]["genre"]["results"]
    assert genre["bookvec"]["accuracy"] > 3 * genre["one_hot"]["accuracy"]


def test_cli_evaluate_table_without_baselines_or_probe(synthetic_home):
    home, _ = synthetic_home
    result = invoke(["evaluate", "--no-baselines", "--no-probe"], home)
    assert result.exit_code == 0, result.output
    assert "Link prediction" in result.stdout and "genre agreement@10" in result.stdout
    assert "tfidf" not in result.stdout and "Genre probe" not in result.stdout


def test_cli_evaluate_without_held_out_pairs_warns_and_scores_neighbours(tmp_path, corpus):
    # format 2: the pairs are always in the bundle; a model trained without a validation split
    # has an empty held_out_pairs.npy (was: no corpus, pairs re-read from the corpus file)
    write_bundle(
        tmp_path, corpus.books, corpus.book_vectors, corpus.link_vectors, pairs=corpus.pairs
    )
    args = ["evaluate", "--json", "--no-probe", "--no-baselines", "--search-queries", "0"]
    result = invoke(args, tmp_path)
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.stderr and "link prediction is skipped" in result.stderr
    report = json.loads(result.stdout)
    assert report["corpus"]["available"] is True and report["split"]["available"] is False
    assert report["link_prediction"] == {} and list(report["neighbours"]) == ["bookvec"]


def test_cli_evaluate_reads_pairs_from_the_bundle(tmp_path, corpus):
    write_bundle(
        tmp_path, corpus.books, corpus.book_vectors, corpus.link_vectors,
        pairs=corpus.pairs, held_out=corpus.held_out,
    )  # fmt: skip
    args = ["evaluate", "--json", "--no-probe", "--no-baselines", "--queries", "100"]
    report = json.loads(invoke(args, tmp_path).stdout)
    assert report["corpus"]["note"] == "pairs.parquet in the bundle"
    assert report["link_prediction"]["bookvec"]["auc"] > 0.9
    assert report["query_books"] == 100


def test_cli_similarity(synthetic_home):
    home, titles = synthetic_home
    a, b = titles[0], titles[1]
    result = invoke(["similarity", a, b.upper(), a, "--json"], home)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["titles"] == [a, b, a]
    matrix = np.array(record["matrix"])
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix[0, 2] == pytest.approx(1.0)
    one_hot = json.loads(invoke(["similarity", a, b, "--one-hot", "--json"], home).stdout)
    assert one_hot["matrix"] == [[1.0, 0.0], [0.0, 1.0]]
    table = invoke(["similarity", a, b], home)
    assert table.exit_code == 0 and "Pairwise similarity" in table.stdout


def test_cli_similarity_unknown_title_is_one_line(synthetic_home):
    home, _ = synthetic_home
    result = invoke(["similarity", "Zzzq Unknown", "Another Nothing"], home)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unknown book")
