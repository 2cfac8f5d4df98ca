"""The lean paths give what the plain ones gave: prepare in chunks, the vectorised link
cleaning, the streamed synthetic corpus, the bit filter of observed pairs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest
import torch

from bookvec.errors import InputError
from bookvec.model.corpus import prepare as P
from bookvec.model.corpus.prepare import CleaningConfig, clean_link, clean_links, prepare_books
from bookvec.model.corpus.read import RawBook, read_books
from bookvec.model.corpus.synth import synthesize
from bookvec.model.training.sampling import ObservedPairs, is_observed

CLEANINGS = [
    CleaningConfig(),
    CleaningConfig(strip_anchors=True, keep_duplicate_pairs=False),
    CleaningConfig(lowercase=False, remove=("Paperback",), min_books=2, drop_wikipedia_pages=False),
]


def _whole_list(records: list[RawBook], cleaning: CleaningConfig):
    """The reference: every record held at once, each link cleaned by ``clean_link``."""
    books = [
        b for b in records if not (cleaning.drop_wikipedia_pages and P.is_wikipedia_page(b.title))
    ]
    counts: dict[str, int] = {}
    for book in books:
        for raw in set(book.links):
            name = clean_link(raw, cleaning)
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
    kept = sorted(
        (n for n, c in counts.items() if c >= cleaning.min_books), key=lambda n: (-counts[n], n)
    )
    index = {name: i for i, name in enumerate(kept)}
    pairs, seen = [], set()
    for b, book in enumerate(books):
        for raw in book.links:
            name = clean_link(raw, cleaning)
            if name in index and (cleaning.keep_duplicate_pairs or (b, index[name]) not in seen):
                seen.add((b, index[name]))
                pairs.append((b, index[name]))
    return kept, [counts[n] for n in kept], np.asarray(pairs, dtype=np.int32).reshape(-1, 2)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("lean") / "small.ndjson"
    synthesize(path, n_books=1500, seed=7)
    return list(read_books(path))


@pytest.mark.parametrize("cleaning", CLEANINGS)
@pytest.mark.parametrize("chunk", [P.PREPARE_CHUNK, 97])
def test_prepare_in_chunks_matches_the_whole_list(small, cleaning, chunk, monkeypatch):
    monkeypatch.setattr(P, "PREPARE_CHUNK", chunk)
    prepared = prepare_books(small, cleaning)
    names, counts, pairs = _whole_list(small, cleaning)
    assert prepared.links.get_column("name").to_list() == names
    assert prepared.links.get_column("count").to_list() == counts
    assert prepared.pairs.dtype == np.int32
    np.testing.assert_array_equal(prepared.pairs, pairs)
    assert (
        prepared.books.get_column("n_links").to_list()
        == np.bincount(pairs[:, 0], minlength=prepared.n_books).tolist()
    )
    monkeypatch.setattr(P, "PREPARE_CHUNK", 10_000)
    assert prepared.books.equals(prepare_books(small, cleaning).books)


def test_vectorised_cleaning_is_clean_link():
    raw = [
        "Science fiction", "science fiction#Plot", "#Plot", "  spaced #x", "Paperback",
        "HARDCOVER", "Straße", "İstanbul", "ΟΔΥΣΣΕΥΣ", "tab\there", "a\x1cb ", "", "x#", "#",
        "Wikipedia:WikiProject Books", "Émile Zola#Life", "e-book",
    ]  # fmt: skip
    for cleaning in [*CLEANINGS, CleaningConfig(strip_anchors=True)]:
        got = clean_links(pl.Series(raw, dtype=pl.String), cleaning).to_list()
        assert got == [clean_link(r, cleaning) for r in raw], cleaning


def test_streamed_synthetic_corpus_is_the_same_bytes(tmp_path, monkeypatch):
    import bookvec.model.corpus.synth as S
    import bookvec.model.corpus.synth_words as W

    digests = []
    for chunk, draws in ((S.WRITE_CHUNK, W._SLICE), (37, 1000), (S.WRITE_CHUNK, 7)):
        monkeypatch.setattr(S, "WRITE_CHUNK", chunk)
        monkeypatch.setattr(W, "_SLICE", draws)  # uniform draws a slice at a time
        path = tmp_path / f"c{chunk}.ndjson.gz"
        stats = synthesize(path, n_books=400, seed=5, n_wikipedia_pages=9)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        lines = [json.loads(x) for x in __import__("gzip").open(path, "rt")]
        assert len(lines) == stats.n_records == 409
        assert sum(len(x[2]) for x in lines) == stats.n_link_occurrences + 3 * 9
    assert digests[0] == digests[1] == digests[2]


def test_bit_filter_answers_exactly():
    gen = torch.Generator().manual_seed(0)
    keys = torch.unique(torch.randint(0, 1 << 40, (50_000,), generator=gen))
    observed = ObservedPairs(keys)
    assert observed.filter.dtype == torch.uint8 and observed.filter.numel() * 8 >= 16 * len(keys)
    probe = torch.cat([keys[::3], torch.randint(0, 1 << 40, (200_000,), generator=gen)])
    np.testing.assert_array_equal(
        observed.contains(probe).numpy(), is_observed(probe, keys).numpy()
    )


def test_two_passes_from_a_function_match_the_list(small):
    calls = []

    def again():
        calls.append(1)
        return iter(small)

    cleaning = CleaningConfig()
    prepared = prepare_books(again, cleaning)
    assert len(calls) == 2  # counted, then paired: nothing held per record between them
    listed = prepare_books(iter(small), cleaning)  # a one-shot iterator is held as a list
    assert prepared.links.equals(listed.links) and prepared.books.equals(listed.books)
    np.testing.assert_array_equal(prepared.pairs, listed.pairs)
    names, counts, pairs = _whole_list(small, cleaning)
    assert prepared.links.get_column("name").to_list() == names
    np.testing.assert_array_equal(prepared.pairs, pairs)


def test_a_hash_collision_is_caught(small, monkeypatch):
    # Every name under one of 4 keys: names collide, the third hash tells them apart.
    def few_keys():
        key = pl.col("name").str.len_bytes().cast(pl.UInt64) % 4
        return [key.alias("h1"), key.alias("h2")]

    monkeypatch.setattr(P, "_hashes", few_keys)
    with pytest.raises(RuntimeError, match="share a 128-bit hash"):
        prepare_books(small, CleaningConfig())
    monkeypatch.setattr(P, "PREPARE_CHUNK", 1)  # across chunks only: each chunk one book
    with pytest.raises(RuntimeError, match="share a 128-bit hash"):
        prepare_books(small[:300], CleaningConfig(min_books=1))


def test_records_that_change_between_the_passes_are_refused(small):
    passes = iter([small, small[:-200]])
    with pytest.raises(InputError, match="changed while it was read"):
        prepare_books(lambda: next(passes), CleaningConfig())


def test_names_written_out_per_chunk_are_the_made_up_names():
    from bookvec.model.corpus.synth_words import _name, _names

    numbers = np.concatenate([np.arange(5000), np.random.default_rng(0).integers(0, 1 << 32, 5000)])
    assert _names(numbers) == [_name(int(k)) for k in numbers]


def test_evaluation_in_slices_gives_the_same_numbers(monkeypatch):
    from bookvec.model.training import train as T
    from bookvec.model.training.model import BookLinkModel

    gen = torch.Generator().manual_seed(3)
    val = tuple(torch.randint(n, (5_000,), generator=gen) for n in (900, 700, 900, 700))
    torch.manual_seed(0)
    model = BookLinkModel(900, 700, 50, "classification")
    with torch.no_grad():
        expected = model(val[0], val[1])
        monkeypatch.setattr(T, "EVALUATE_SLICE", 97)
        assert torch.equal(T._scores(model, val[0], val[1]), expected)
    auc = T.evaluate(model, val)
    monkeypatch.setattr(T, "EVALUATE_SLICE", 1 << 20)
    assert T.evaluate(model, val) == auc


@pytest.mark.parametrize("piece", [1, 7, 1 << 22])
def test_sorted_unique_keys_in_place_is_unique(piece, monkeypatch):
    from bookvec.model.training import sampling as S

    monkeypatch.setattr(S, "SPLIT_SLICE", piece)
    rng = np.random.default_rng(piece)
    for n_pairs, n_books, n_links in ((1, 1, 1), (60, 5, 4), (5_000, 300, 200)):
        pairs = np.stack([rng.integers(0, n_books, n_pairs), rng.integers(0, n_links, n_pairs)], 1)
        keys = pairs[:, 0].astype(np.int64) * n_links + pairs[:, 1]
        got = S.sorted_unique_keys(pairs.astype(np.int32), n_links)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.unique(keys))


def test_split_and_epoch_order_are_the_torch_ones(monkeypatch):
    """The held-out split keyed in slices, and an epoch gathered through an int32 order, give
    what ``torch.unique``, one filter test and a shuffled int64 copy gave."""
    from bookvec.model.training import sampling as S
    from bookvec.model.training.config import TrainConfig

    gen = torch.Generator().manual_seed(1)
    pairs = torch.stack(
        [torch.randint(400, (6_000,), generator=gen), torch.randint(300, (6_000,), generator=gen)],
        1,
    ).int()
    config = TrainConfig(validation_fraction=0.1)
    observed, train_pairs, val = S.holdout(pairs, 400, 300, config)
    monkeypatch.setattr(S, "SPLIT_SLICE", 13)
    sliced = S.holdout(pairs, 400, 300, config)
    assert torch.equal(sliced[0], observed) and torch.equal(sliced[1], train_pairs)
    assert all(torch.equal(a, b) for a, b in zip(sliced[2], val, strict=True))

    keys = S.pair_keys(pairs[:, 0], pairs[:, 1], 300)
    assert torch.equal(observed, torch.unique(keys))
    held = val[0].long() * 300 + val[1]
    assert torch.equal(train_pairs, pairs[~torch.isin(keys, held)])

    seed = torch.Generator().manual_seed(5)
    expected = train_pairs[torch.randperm(len(train_pairs), generator=seed)]
    draws = S._epoch_draws(
        train_pairs,
        100,
        1,
        400,
        300,
        S.ObservedPairs(observed),
        torch.Generator().manual_seed(5),
        None,
    )
    assert torch.equal(torch.cat([pos for pos, _, _ in draws]), expected.long())
