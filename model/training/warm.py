"""Warm start: the tables of a new run initialised from a trained bundle (its parent).

Rows are matched by name after cleaning (the parent's cleaning; another one is refused, since
its link names would not be the same pages):

- a book the parent knows starts from its trained (raw) row, whether its links changed or not;
- a new book from its fold-in vector (``fold_in_vectors`` over the links the parent knows),
  scaled to the parent's median book norm; a small seeded random vector when it has none;
- a link the parent knows from its trained row; a new link from the mean direction of the
  (initialised) books that link to it plus a seeded random direction as large (new books
  folded in from the same few known pages start alike: without it, the pages only they
  link to would too), scaled to the parent's median link norm; new books are then folded in
  again over all their links, new pages included (measured on a planted new genre block
  with its own pages: 0.88 of its books' 10 neighbours in the block without the random
  part and the second fold-in, 1.0 with them; a cold retrain: 1.0);
- Dense(1)'s scale and bias from the parent's ``weights.pt``; Adam for them starts afresh.

``warm_start_state`` returns the state ``train(..., resume_from=...)`` takes, and what
changed between the parent's corpus and this one (recorded in the new bundle's manifest).

The schedule (the config's ``warm_*`` options; ``WarmRun`` applies it in ``train``): only the
changed rows train, the rest stay frozen; their negatives are weighted to a cold epoch's; an
anchor pulls every book (and old page) back towards its start after each epoch; early stopping
watches the held-out pairs of new rows. Measured against fold-in and a cold retrain by
``benchmarks/incremental.py`` (the README's "Keeping a model current").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bookvec.errors import BundleError, ConfigError
from bookvec.model.bundle import RAW_BOOK_TABLE, RAW_LINK_TABLE, WEIGHTS, Bundle
from bookvec.model.corpus.prepare import CleaningConfig, PreparedCorpus
from bookvec.model.linalg import normalise
from bookvec.model.training.config import TrainConfig

RANDOM_INIT = 0.05  # as BookLinkModel's initial tables (uniform +-0.05)
NEW_PAGE_NOISE = 1.0  # a new page's random part, relative to its books' mean direction


@dataclass(frozen=True)
class WarmStart:
    state: dict[str, Any]  # TrainedModel.state_dict()'s shape: weights, optimizer, epoch
    changes: dict[str, Any]  # JSON-ready: parent, books and links kept / added / removed ...


def parent_cleaning(parent: Bundle) -> CleaningConfig:
    return parent.manifest.cleaning_config()


def check_compatible(parent: Bundle, cleaning: CleaningConfig, config: TrainConfig) -> None:
    """ConfigError unless ``cleaning`` and the table shape (dim, objective) are the parent's."""
    theirs = parent_cleaning(parent)
    if theirs != cleaning:
        mine, other = cleaning.to_dict(), theirs.to_dict()
        diff = ", ".join(
            f"{key} {other[key]!r} -> {mine[key]!r}" for key in mine if mine[key] != other[key]
        )
        raise ConfigError(
            f"cannot warm-start from model {parent.model_id}: it was trained with other "
            f"cleaning settings ({diff}), so its link names are not this corpus's",
            hint="warm-start with the parent's cleaning (drop --min-books), or train cold",
        )
    parent_config = parent.manifest.config
    for name in ("embedding_dim", "objective"):
        if name in parent_config and parent_config[name] != getattr(config, name):
            raise ConfigError(
                f"cannot warm-start from model {parent.model_id}: its {name} is "
                f"{parent_config[name]!r}, this run asks for {getattr(config, name)!r}",
                hint=f"drop the {name} option, or train cold",
            )


def _parent_tables(parent: Bundle) -> tuple[np.ndarray, np.ndarray, float, float]:
    try:
        books = np.load(parent.file(RAW_BOOK_TABLE)).astype(np.float32, copy=False)
        links = np.load(parent.file(RAW_LINK_TABLE)).astype(np.float32, copy=False)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"model {parent.model_id} has no raw tables to warm-start from ({exc})",
            hint="train cold with `bookvec train`",
        ) from None
    weight, bias = 1.0, 0.0
    metrics = parent.manifest.metrics
    if parent.file(WEIGHTS).is_file():
        import torch

        saved = torch.load(parent.file(WEIGHTS), weights_only=True)
        weight = float(saved["dense_weight"].reshape(-1)[0])
        bias = float(saved["dense_bias"].reshape(-1)[0])
    elif "logit_scale" in metrics:
        weight = float(metrics["logit_scale"])
    return books, links, weight, bias


def _link_sets(titles: list[str], names: list[str], pairs: np.ndarray) -> pl.DataFrame:
    """title -> its sorted distinct kept link names."""
    name_array = np.asarray(names, dtype=object)
    frame = pl.DataFrame(
        {
            "book": pairs[:, 0].astype(np.int64),
            "name": pl.Series(name_array[pairs[:, 1]].tolist(), dtype=pl.String),
        }
    )
    sets = frame.group_by("book").agg(pl.col("name").unique().sort())
    all_books = pl.DataFrame({"book": np.arange(len(titles)), "title": titles})
    return all_books.join(sets, on="book", how="left").select("title", "name")


def warm_start_state(parent: Bundle, prepared: PreparedCorpus, config: TrainConfig) -> WarmStart:
    """The initial tables of a run on ``prepared`` from ``parent`` (see the module docstring).
    Deterministic: the few random rows come from ``config.seed``."""
    from bookvec.model.training.export import fold_in_vectors

    check_compatible(parent, prepared.cleaning, config)
    old_books, old_links, weight, bias = _parent_tables(parent)
    rng = np.random.default_rng([config.seed, 0xA5A5])
    dim = old_books.shape[1]
    titles = prepared.books.get_column("title").to_list()
    names = prepared.links.get_column("name").to_list()
    pairs = np.asarray(prepared.pairs, dtype=np.int64).reshape(-1, 2)

    book_of = parent.book_index
    link_of = parent.link_index
    book_norm = float(np.median(np.linalg.norm(old_books, axis=1)))
    link_norm = float(np.median(np.linalg.norm(old_links, axis=1)))

    old_book_rows = np.array([book_of.get(t, -1) for t in titles], dtype=np.int64)
    old_link_rows = np.array([link_of.get(n, -1) for n in names], dtype=np.int64)
    known_book, known_link = old_book_rows >= 0, old_link_rows >= 0

    books = np.empty((len(titles), dim), dtype=np.float32)
    books[known_book] = old_books[old_book_rows[known_book]]
    new_books = np.flatnonzero(~known_book)
    no_links = 0
    if new_books.size:
        # fold-in over each new book's pairs with a link the parent knows (all of them, the
        # run's held-out ones too, as ``bookvec upsert``: without those 5%, genre
        # agreement@10 of the new books 0.769 instead of 0.777 at full shape)
        in_new = ~known_book[pairs[:, 0]] & known_link[pairs[:, 1]]
        sub = pairs[in_new]
        order = np.argsort(sub[:, 0], kind="stable")
        sub = sub[order]
        starts = np.searchsorted(sub[:, 0], new_books)
        ends = np.searchsorted(sub[:, 0], new_books, side="right")
        rows = [old_link_rows[sub[s:e, 1]].tolist() for s, e in zip(starts, ends, strict=True)]
        folded = fold_in_vectors(old_links, rows) * book_norm
        empty = ends == starts
        no_links = int(empty.sum())
        folded[empty] = rng.uniform(-RANDOM_INIT, RANDOM_INIT, (no_links, dim))
        books[new_books] = folded

    links = np.empty((len(names), dim), dtype=np.float32)
    links[known_link] = old_links[old_link_rows[known_link]]
    new_links = np.flatnonzero(~known_link)
    if new_links.size:
        sums = np.zeros((len(names), dim), dtype=np.float64)
        to_new = pairs[~known_link[pairs[:, 1]]]  # np.add.at over every pair: 14 s at full shape
        np.add.at(sums, to_new[:, 1], normalise(books[to_new[:, 0]]))
        # New books folded in from the same few known pages start alike, and so would the new
        # pages only they link to: a random direction as large as the mean tells those pages
        # apart, and the second fold-in below groups the books by the new pages they share.
        noise = normalise(rng.standard_normal((new_links.size, dim)))
        direction = normalise(sums[new_links]) + NEW_PAGE_NOISE * noise
        links[new_links] = normalise(direction) * link_norm
    if new_books.size and new_links.size:  # again, over all their links, new pages included
        sub = pairs[~known_book[pairs[:, 0]]]
        sub = sub[np.argsort(sub[:, 0], kind="stable")]
        starts = np.searchsorted(sub[:, 0], new_books)
        ends = np.searchsorted(sub[:, 0], new_books, side="right")
        rows = [sub[s:e, 1].tolist() for s, e in zip(starts, ends, strict=True)]
        has = ends > starts
        refolded = fold_in_vectors(links, rows) * book_norm
        books[new_books[has]] = refolded[has]

    changes, changed_book = _changes(parent, titles, names, pairs, known_book, known_link)
    changes["books"]["added_without_known_links"] = no_links
    changes["schedule"] = {k: v for k, v in config.to_dict().items() if k.startswith("warm_")}
    state = {
        "weights": {
            "book_embeddings": books,
            "link_embeddings": links,
            "dense_weight": np.array([[weight]], dtype=np.float32),
            "dense_bias": np.array([bias], dtype=np.float32),
        },
        "optimizer": None,
        "epoch": 0,
        "rows": {  # which rows the run trains (``WarmRun``)
            "changed_books": ~known_book | changed_book,
            "changed_links": ~known_link,
            "parent_books": known_book,
            "parent_links": known_link,
        },
    }
    return WarmStart(state=state, changes=changes)


def _changes(
    parent: Bundle,
    titles: list[str],
    names: list[str],
    pairs: np.ndarray,
    known_book: np.ndarray,
    known_link: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray]:
    """Books and pages added, removed and (books) changed: a kept book whose set of kept
    link names differs from the parent's; and the changed books' mask (in ``titles`` order)."""
    before = _link_sets(parent.book_titles, parent.link_names, parent.pairs)
    after = _link_sets(titles, names, pairs).with_row_index("row")
    joined = after.join(before, on="title", how="inner", suffix="_before")
    differs = joined.filter(
        pl.col("name").fill_null([]) != pl.col("name_before").fill_null([])
    ).get_column("row")
    changed_book = np.zeros(len(titles), dtype=bool)
    changed_book[differs.to_numpy()] = True
    changed = int(changed_book.sum())
    kept_books, kept_links = int(known_book.sum()), int(known_link.sum())
    return {
        "parent": parent.model_id,
        "books": {
            "kept": kept_books - changed,
            "changed": changed,
            "added": int(len(titles) - kept_books),
            "removed": int(parent.n_books - kept_books),
        },
        "links": {
            "kept": kept_links,
            "added": int(len(names) - kept_links),
            "removed": int(parent.n_links - kept_links),
        },
    }, changed_book


class WarmRun:
    """A warm start's rows in ``train``: the "changed" ones (new books, books whose links
    changed, new pages) train at the run's step, the others at ``warm_rest_lr`` x it; an
    epoch's positives are those that touch a changed row plus ``warm_rest_sample`` of the
    others (none when the others are frozen: they would teach nothing); after each epoch a
    parent row's drift from its parent value shrinks by ``warm_anchor``; ``new_auc``
    is the held-out AUC of the pairs that touch a new row (book or page)."""

    def __init__(self, rows: dict, config: TrainConfig, model: Any, train_pairs: Any, val: Any):
        import torch

        device = train_pairs.device
        self.books = torch.as_tensor(np.asarray(rows["changed_books"]), device=device)
        self.links = torch.as_tensor(np.asarray(rows["changed_links"]), device=device)
        rest, changed = float(config.warm_rest_lr), float(config.warm_changed_lr)
        parent_books = torch.as_tensor(np.asarray(rows["parent_books"]), device=device)
        parent_links = torch.as_tensor(np.asarray(rows["parent_links"]), device=device)
        if changed == 0:  # changed books frozen: their pairs with old pages teach nothing
            self.books = self.books & ~parent_books
        touches = self.books[train_pairs[:, 0]] | self.links[train_pairs[:, 1]]
        self.changed, self.rest = train_pairs[touches], train_pairs[~touches]
        self.sample = float(config.warm_rest_sample) if rest > 0 else 0.0
        self.n_rest = round(self.sample * self.rest.shape[0])
        self.n_epoch_pairs = self.changed.shape[0] + self.n_rest
        # An epoch of fewer positives draws fewer negatives (uniform books, links by
        # frequency, as a cold run's): weighted up, each row gets a cold epoch's negatives.
        weight = (
            train_pairs.shape[0] / max(1, self.n_epoch_pairs)
            if config.warm_negative_weight
            else 1.0
        )
        book_lr = torch.where(self.books, 1.0, rest).to(torch.float32)
        book_lr[self.books & parent_books] = changed
        self.row_lr = (book_lr, torch.where(self.links, 1.0, rest).to(torch.float32), weight)
        self.anchor = float(config.warm_anchor)
        self.start = None
        if self.anchor > 0:
            # every book (a new one: to its fold-in) and the parent's pages; new pages are free
            parent = (torch.ones_like(parent_books), parent_links)
            tables = (model.book.weight, model.link.weight)
            self.start = [(m, t.detach()[m].clone()) for m, t in zip(parent, tables, strict=True)]
        # The run's held-out pairs of parent rows may be pairs the parent trained on (its
        # split was of its own corpus): only those touching a new row are unpairs.
        self.val = val  # all of it where no held-out pair touches a new row
        if val is not None:
            new_books, new_links = ~parent_books, ~parent_links
            pos_b, pos_l, neg_b, neg_l = val
            pos = new_books[pos_b] | new_links[pos_l]
            neg = new_books[neg_b] | new_links[neg_l]
            if pos.any() and neg.any():
                self.val = (pos_b[pos], pos_l[pos], neg_b[neg], neg_l[neg])

    def epoch_pairs(self, gen: Any) -> Any:
        import torch

        if self.n_rest >= self.rest.shape[0]:
            return torch.cat([self.changed, self.rest])
        if self.n_rest == 0:
            return self.changed
        pick = torch.randperm(self.rest.shape[0], generator=gen, device=self.rest.device)
        return torch.cat([self.changed, self.rest[pick[: self.n_rest]]])

    def after_epoch(self, model: Any) -> None:
        import torch

        if self.start is None:
            return
        with torch.no_grad():
            for (mask, start), table in zip(
                self.start, (model.book.weight, model.link.weight), strict=True
            ):
                table[mask] = start + (table[mask] - start) * (1 - self.anchor)

    def new_auc(self, model: Any) -> float | None:
        from bookvec.model.training.train import evaluate

        return None if self.val is None else evaluate(model, self.val)
