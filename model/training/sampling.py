"""Pairs, negatives and the held-out split, all vectorised (no DataLoader, no per-sample
Python): a seeded permutation of the positive pairs, and the random negatives of many steps
drawn at once (links by inverse CDF with a guide table, ``LinkSampler``; observed pairs
rejected through a byte filter in front of the sorted observed keys, ``ObservedPairs``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from bookvec.errors import ConfigError, InputError
from bookvec.model.training.config import TrainConfig


def pair_keys(book: torch.Tensor, link: torch.Tensor, n_links: int) -> torch.Tensor:
    return book.long() * n_links + link.long()


def is_observed(keys: torch.Tensor, sorted_keys: torch.Tensor) -> torch.Tensor:
    """Membership of ``keys`` in the sorted unique int64 tensor ``sorted_keys``."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


class ObservedPairs:
    """The observed (book, link) keys, for membership tests of many random keys at once.

    A bit filter indexed by a key's low bits (16 slots per observed key, rounded up to a
    power of two; 2 bytes per key) answers "not observed" for ~95% of random keys in one
    gather; the rest are looked up exactly in the sorted keys. At full shape (733k keys) a
    check of an epoch's 1.5M negatives took 0.25 s with ``searchsorted`` alone, ~0.03 s with
    the filter. Bits rather than bytes: at 100x (73M keys) a byte filter alone took 2 GB.
    """

    def __init__(self, sorted_keys: torch.Tensor) -> None:
        self.keys = sorted_keys
        size = 1 << max(16, (16 * sorted_keys.numel()).bit_length())
        self.mask = size - 1
        self.filter = torch.zeros(size >> 3, dtype=torch.uint8, device=sorted_keys.device)
        for start in range(0, sorted_keys.numel(), 1 << 22):  # bounded temporaries
            slot = sorted_keys[start : start + (1 << 22)] & self.mask
            byte, bit = slot >> 3, (slot & 7).to(torch.uint8)
            for b in range(8):  # one bit position at a time: repeated bytes set the same value
                at = byte[bit == b]
                self.filter[at] |= 1 << b

    def contains(self, keys: torch.Tensor) -> torch.Tensor:
        slot = keys & self.mask
        maybe = ((self.filter[slot >> 3] >> (slot & 7).to(torch.uint8)) & 1).bool()
        which = maybe.nonzero().squeeze(1)
        maybe[which] = is_observed(keys[which], self.keys)
        return maybe


def link_sampling_cdf(
    link_counts: torch.Tensor, power: float, device: torch.device | None = None
) -> torch.Tensor | None:
    """Cumulative distribution of a negative's link: P(link) ~ max(count, 1)^power (float64).

    None for ``power`` 0 (uniform links, drawn with ``randint``). Every link keeps a chance.
    """
    if power == 0:
        return None
    weights = link_counts.double().clamp(min=1.0) ** power
    cdf = torch.cumsum(weights, 0)
    return (cdf / cdf[-1]).to(device or link_counts.device)


class LinkSampler:
    """Draws from a ``link_sampling_cdf`` by inverse CDF with a guide table (Chen & Asau):
    ``guide[j]`` is the first link whose CDF reaches j/m, so a draw u starts at
    ``guide[floor(u m)]`` and steps on while the CDF is below u, almost always 0-2 steps.
    The same links ``searchsorted(cdf, u)`` gives, without its ~20 cache misses a draw."""

    def __init__(self, cdf: torch.Tensor) -> None:
        self.cdf = cdf
        self.m = cdf.numel()
        grid = torch.arange(self.m, dtype=torch.float64, device=cdf.device) / self.m
        self.guide = torch.searchsorted(cdf, grid)

    def draw(self, n: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, generator=gen, device=self.cdf.device, dtype=torch.float64)
        links = self.guide[(u * self.m).long().clamp_(max=self.m - 1)]
        todo = (self.cdf[links] < u).nonzero().squeeze(1)
        while todo.numel():  # cdf[-1] == 1 > u: every draw stops by the last link
            links[todo] += 1
            todo = todo[self.cdf[links[todo]] < u[todo]]
        return links


def _draw_links(
    n: int,
    n_links: int,
    links: torch.Tensor | LinkSampler | None,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    if links is None:
        return torch.randint(n_links, (n,), generator=gen, device=device)
    sampler = links if isinstance(links, LinkSampler) else LinkSampler(links)
    return sampler.draw(n, gen)


def sample_negatives(
    n: int,
    n_books: int,
    n_links: int,
    observed: torch.Tensor | ObservedPairs,
    gen: torch.Generator,
    link_cdf: torch.Tensor | LinkSampler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (book, link) pairs none of which is in ``observed`` (sorted keys, or an
    ``ObservedPairs``); rejects are redrawn. Books are uniform; links uniform, or drawn from
    ``link_cdf`` (``link_sampling_cdf``, or a ``LinkSampler`` made from one).
    """
    if isinstance(observed, ObservedPairs):
        contains, device = observed.contains, observed.keys.device
    else:
        contains, device = (lambda keys: is_observed(keys, observed)), observed.device
    books = torch.randint(n_books, (n,), generator=gen, device=device)
    links = _draw_links(n, n_links, link_cdf, gen, device)
    bad = contains(pair_keys(books, links, n_links)).nonzero().squeeze(1)
    while bad.numel():
        books[bad] = torch.randint(n_books, (bad.numel(),), generator=gen, device=device)
        links[bad] = _draw_links(bad.numel(), n_links, link_cdf, gen, device)
        again = contains(pair_keys(books[bad], links[bad], n_links))
        bad = bad[again]
    return books, links


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Rank-based ROC AUC (Mann-Whitney U); tied scores share their average rank."""
    scores = torch.cat([pos, neg]).double()
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mid_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct score
    ranks = mid_rank[inverse]
    n_pos, n_neg = pos.numel(), neg.numel()
    u = ranks[:n_pos].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


# ---------------------------------------------------------------------------------------------
# The held-out split and an epoch's samples


def _check_pairs(pairs: Any, n_books: int, n_links: int) -> np.ndarray:
    arr = np.asarray(pairs)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise InputError(f"pairs must be a non-empty (P, 2) integer array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise InputError(f"pairs must be integers, got dtype {arr.dtype}")
    if n_books < 1 or n_links < 1:
        raise InputError(f"need at least one book and one link, got {n_books} and {n_links}")
    for col, n, what in ((0, n_books, "book"), (1, n_links, "link")):
        bad = np.flatnonzero((arr[:, col] < 0) | (arr[:, col] >= n))
        if bad.size:
            raise InputError(f"pair {bad[0]} has {what} index {arr[bad[0], col]}, outside [0, {n})")
    # int32 when the indices fit (they do below 2**31 rows): half the memory of int64
    small = max(n_books, n_links) < 2**31
    return arr.astype(np.int32 if small else np.int64, copy=False)


def holdout(
    pairs: torch.Tensor, n_books: int, n_links: int, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Seeded validation split: (sorted observed keys, training pairs, validation set or None).

    ``validation_fraction`` of the distinct positive pairs are held out and every copy of them
    leaves the training pairs; as many negatives are drawn once, uniformly, never observed.
    The validation set is (positive books, positive links, negative books, negative links).
    """
    gen = torch.Generator().manual_seed(config.seed ^ 0x5EED)
    observed = torch.from_numpy(sorted_unique_keys(pairs.numpy(), n_links))
    if observed.numel() >= n_books * n_links:
        raise InputError("every (book, link) pair is observed: there are no negatives to learn")
    if config.validation_fraction <= 0:
        return observed, pairs, None
    n_val = max(1, round(config.validation_fraction * observed.numel()))
    order = torch.randperm(observed.numel(), generator=gen, dtype=index_dtype(observed.numel()))
    held = observed[order[:n_val]].sort().values
    del order
    held_pairs = ObservedPairs(held)
    drop = np.empty(pairs.shape[0], dtype=bool)
    for start in range(0, pairs.shape[0], SPLIT_SLICE):  # the keys a slice at a time
        part = pairs[start : start + SPLIT_SLICE]
        found = held_pairs.contains(pair_keys(part[:, 0], part[:, 1], n_links))
        drop[start : start + SPLIT_SLICE] = found.numpy()
    # numpy's boolean take: torch's would first build an int64 index of the kept rows
    train_pairs = torch.from_numpy(pairs.numpy()[np.logical_not(drop, out=drop)])
    del drop
    if train_pairs.shape[0] == 0:
        raise ConfigError("validation_fraction leaves no pairs to train on; lower it")
    neg_books, neg_links = sample_negatives(n_val, n_books, n_links, observed, gen)
    return observed, train_pairs, (held // n_links, held % n_links, neg_books, neg_links)


SPLIT_SLICE = 1 << 23  # pairs keyed at a time for the held-out test


def index_dtype(n: int) -> torch.dtype:
    """int32 for a permutation of ``n`` < 2**31 (half the memory of int64). CPU ``randperm``
    gives the same permutation and leaves its generator in the same state for both."""
    return torch.int32 if n < 2**31 else torch.int64


def sorted_unique_keys(pairs: np.ndarray, n_links: int) -> np.ndarray:
    """The distinct ``pair_keys`` of ``pairs`` (int (P, 2)), sorted (int64): built, sorted and
    made unique in one buffer. ``torch.unique`` took ~3x the keys' bytes beside them (2.3 GB
    for the 77M pairs of 100x); this takes the keys and a slice."""
    keys = np.multiply(pairs[:, 0], n_links, dtype=np.int64)
    keys += pairs[:, 1]
    keys.sort()
    if keys.size == 0:
        return keys
    kept, last = 1, keys[0]  # keys[:kept] are the distinct keys so far; ``last`` the one before
    for start in range(1, keys.size, SPLIT_SLICE):
        part = keys[start : start + SPLIT_SLICE]
        new = np.empty(part.size, dtype=bool)
        new[0] = part[0] != last
        np.not_equal(part[1:], part[:-1], out=new[1:])
        last = part[-1].copy()  # read before the write below can reach it
        distinct = part[new]
        keys[kept : kept + distinct.size] = distinct  # never past what was read: kept <= start
        kept += distinct.size
    return keys[:kept]


NEGATIVES_PER_DRAW = 1 << 18  # negatives drawn at once: a few dozen steps' worth


def _epoch_draws(
    train_pairs: torch.Tensor,
    chunk: int,
    ratio: int,
    n_books: int,
    n_links: int,
    observed: ObservedPairs,
    gen: torch.Generator,
    link_cdf: LinkSampler | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch's samples: the training pairs in a seeded order, ``chunk`` at a time, each
    with ``ratio`` times as many negatives (books, links)."""
    n_train, device = train_pairs.shape[0], train_pairs.device
    # the order as an index, its rows gathered a chunk at a time: no shuffled copy of the pairs
    # (int32 on the CPU: same permutation; CUDA's is only known to match in int64)
    dtype = index_dtype(n_train) if device.type == "cpu" else torch.int64
    order = torch.randperm(n_train, generator=gen, device=device, dtype=dtype)
    for start in range(0, n_train, chunk):
        pos = train_pairs[order[start : start + chunk]].long()  # int32 kept, int64 steps
        neg_books, neg_links = sample_negatives(
            pos.shape[0] * ratio, n_books, n_links, observed, gen, link_cdf
        )
        yield pos, neg_books, neg_links
