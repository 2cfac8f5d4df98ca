"""The embedded store's live generation: following CURRENT to it, and changing it by copy
(EdgeStore's mixin). See generations.py for the files and locks.

Every write goes to a copy of the live shard, published when complete: the live generation is
never written in place (shards are created with the WAL off: with it on, Edge locks the
directory for one process and a `bookvec search` could not run while another process has the
store open, and a crash mid-write would leave the only copy half-changed). Every write ends
with flush(); the locks in generations.py keep writers apart and readers safe.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import qdrant_edge as edge

from bookvec import disk
from bookvec.errors import DataNotFoundError, DiskFullError, StoreError, StoreLockedError
from bookvec.indexer import title_index as title_keys
from bookvec.indexer.catalogue import CatalogueLog, UpsertedBook, book_from_payload, sorted_books
from bookvec.indexer.edge_shard import (
    _census_meta,
    _changed_meta,
    _load,
    _load_for_reading,
    _room,
    _scan_upserted,
    _search_params,
    _verify,
)
from bookvec.indexer.generations import SHARD, GenerationMeta, Layout, Opened, copy_tree
from bookvec.indexer.points import ids_by_title
from bookvec.indexer.types import IndexOptions

UNSEEN = (-1, -1)  # a pointer stamp no file has: the next call opens the store


_LEFT_OPEN: list[edge.EdgeShard] = []  # shards `abandon` left open, never dropped


class EdgeLive:
    """The live generation of EdgeStore: opened, followed, changed by copy and published.
    What it needs of the store: `_optimize(shard, path, vector_size, index)` (edge.py)."""

    root: Path
    read_only: bool
    recover: bool
    damaged: str | None
    _layout: Layout
    _catalogue: CatalogueLog
    _open_wait: float
    _live: Opened | None
    _shard: edge.EdgeShard | None
    _stamp: tuple[int, int] | None
    _params: edge.SearchParams | None
    _filtered_params: edge.SearchParams | None
    _ef_override: int | None
    _writing: Path | None
    _published: bool
    _scratch: Path | None
    _scratch_next: Path | None

    if TYPE_CHECKING:  # edge.EdgeStore's (hybrid.HybridSpec's)

        def _learn_weighting(self, weighting: str | None) -> None: ...

        def _optimize(
            self, shard: edge.EdgeShard, path: Path, vector_size: int, index: dict[str, Any]
        ) -> tuple[edge.EdgeShard, dict[str, Any]]: ...

    # --- changing it ---------------------------------------------------------------------------
    def delete(self, titles: Iterable[str]) -> int:
        self._check_writable()
        _, shard = self._require()
        by_title = ids_by_title(titles)
        ids = list(by_title.values())
        existing = [
            str(rec.id) for rec in shard.retrieve(ids, with_payload=False, with_vector=False)
        ]
        if existing:
            titles_of = {pid: title for title, pid in by_title.items()}
            delta = title_keys.TitleDelta(removed=[titles_of[pid] for pid in existing])
            with self._changing(deleting=len(existing), delta=delta) as (target, toggled):
                self._catalogue.append_deletes(titles_of[pid] for pid in existing)
                toggled.extend(existing)
                target.update(edge.UpdateOperation.delete_points(existing))
        return len(existing)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer lock across several calls: a reindex reads the catalogue and
        writes the new generation under one lock, so no upsert of another process can land
        in between and be left out (it fails fast with StoreLockedError instead)."""
        self._check_writable()
        with self._layout.writing():
            yield

    def upserted(self) -> list[UpsertedBook]:
        """The catalogue: every book upserted (source "upsert"), with its cleaned links and
        payload, by title. From the log beside the generations (readable when the shard is
        damaged); a store written before the log existed: from its points."""
        if self._catalogue.exists():
            books = self._catalogue.replay()
            return sorted_books(book_from_payload(t, p) for t, p in books.items())
        self._follow()
        if self._shard is None:
            return []
        return sorted_books(book_from_payload(t, p) for t, p in _scan_upserted(self._shard))

    # --- following it -------------------------------------------------------------------------
    def _follow(self) -> None:
        """Move to the live generation if CURRENT was replaced since the last call (one stat)."""
        stamp = self._layout.pointer_stamp()
        if stamp == self._stamp:
            return
        if self._live is not None and self._layout.live_name() == self._live.name:
            self._stamp = stamp
            return
        try:
            opened = self._layout.open_live(wait=self._open_wait)
        except StoreLockedError:
            raise
        except StoreError as exc:
            if not self.recover:
                raise
            self._drop()
            self.damaged, self._stamp = str(exc), stamp
            return
        shard = None
        if opened is not None:
            try:
                copy = False
                if os.access(opened.path / SHARD, os.W_OK):  # a read-only one is copied first
                    try:
                        _room(opened.path / SHARD, 0, what="opening the store", grows=False)
                    except DiskFullError:
                        if not self.read_only:
                            raise
                        copy = True  # to read, a copy elsewhere touches no hole of this disk
                shard, self._scratch_next = _load_for_reading(
                    opened.path / SHARD, self.read_only, copy=copy
                )
                _verify(opened, shard)
            except StoreLockedError:
                opened.lock.close()
                raise
            except StoreError as exc:
                if shard is not None:
                    shard.close()
                opened.lock.close()
                if not self.recover:
                    raise
                self.damaged, opened, shard = str(exc), None, None
            except BaseException:
                if shard is not None:
                    shard.close()
                opened.lock.close()
                raise
        scratch, self._scratch_next = self._scratch_next, None
        self._drop()
        self._live, self._shard, self._stamp, self._scratch = opened, shard, stamp, scratch
        self._set_params()

    def _set_params(self) -> None:
        if self._live is None:
            self._params = self._filtered_params = None
            self._learn_weighting(None)
            return
        options = IndexOptions.from_dict(self._live.meta.index)
        self._learn_weighting(options.sparse_weighting)
        if self._ef_override is not None:
            options = replace(options, hnsw_ef=self._ef_override)
        self._params = _search_params(options)
        self._filtered_params = _search_params(options, filtered=True)

    def set_hnsw_ef(self, ef: int | None) -> None:
        """Search through this handle with another hnsw_ef (None: the collection's own).
        For measuring recall curves; the stored setting is unchanged."""
        self._ef_override = ef
        self._set_params()

    def _require(self) -> tuple[Opened, edge.EdgeShard]:
        self._follow()
        if self._live is None or self._shard is None:
            raise DataNotFoundError(
                f"no books indexed yet in {self.root}", hint="run `bookvec index` first"
            )
        return self._live, self._shard

    def abandon(self) -> bool:
        """Close, for a process that ends right after without tearing down (os._exit: the
        CLI's fast search): locks released and a read-only copy removed as by close(), but a
        reader's shard is left to the kernel. Edge's close syncs every file and drops the
        store's pages from the page cache (~0.1 s at 37k books, and the next process reads
        them from disk again); a reader that exits next needs neither. Writers close.
        True when a shard was left open (a normal exit would then drop, so close, it)."""
        left = self.read_only and self._shard is not None
        if left:
            _LEFT_OPEN.append(self._shard)
            self._shard = None
        self._drop()
        return left

    def _drop(self) -> None:
        if self._shard is not None:
            self._shard.close()
        if self._live is not None:
            self._live.lock.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._live, self._shard, self._stamp, self._scratch = None, None, UNSEEN, None

    @contextmanager
    def _changing(
        self, *, deleting: int = 0, delta: title_keys.TitleDelta | None = None
    ) -> Iterator[tuple[edge.EdgeShard, list[str]]]:
        """A copy of the live shard to write to, published when the block ends; the live
        generation is never written in place (with the WAL off, a crash mid-write would leave
        the only copy half-changed). Yields the copy and a list the block extends with the ids
        it adds or removes (for the generation's id checksum). If the block fails after
        writing whole batches, those are published before the error goes on (a streamed
        upsert keeps the batches before a bad one; running it again completes it). `delta`: the
        titles the block adds and removes, for the title-key index (indexer/title_index.py)."""
        delta = delta or title_keys.TitleDelta()
        with self._layout.writing():
            live, _ = self._require()
            if not self._catalogue.exists():  # a store from before the log: seed it once
                self._catalogue.rewrite(_scan_upserted(self._shard))
            size = live.meta.vector_size
            self._published = False
            build = self._layout.new_build()
            toggled: list[str] = []
            failure: BaseException | None = None
            copy = None
            try:
                with disk.guard(self.root, what="copying the store to change it"):
                    _, _, apparent = disk.sparse_sizes(live.path / SHARD)
                    disk.require(self.root, apparent, what="copying the store to change it")
                    copy_tree(live.path / SHARD, build / SHARD)
                    title_keys.copy_for(live.path, build)
                    copy = _load(build / SHARD)
                    before = title_keys.exact_count(copy)
                    self._writing = build / SHARD
                    try:
                        try:
                            yield copy, toggled
                        except BaseException as exc:  # noqa: BLE001 - re-raised below
                            failure = exc
                            if disk.is_full(exc):
                                failure = disk.full(self.root, what="writing to the store")
                        index = live.meta.index
                        if failure is None:  # HNSW once the shard outgrows the threshold
                            copy, index = self._optimize(copy, build / SHARD, size, index)
                        if failure is None or toggled:
                            copy.flush()
                            if failure is None:
                                title_keys.update_for(build, copy, before, delta)
                            else:  # which titles made it is unknown: readers list them
                                title_keys.drop_for(build)
                            meta = (
                                replace(
                                    _changed_meta(live.meta, copy, toggled, deleting), index=index
                                )
                                if failure is None
                                else _census_meta(live.meta, copy)
                            )
                    finally:
                        copy.close()  # a second close is harmless
            except BaseException:
                if copy is not None:
                    copy.close()  # a second close is harmless
                shutil.rmtree(build, ignore_errors=True)
                if failure is not None:
                    raise failure from None
                raise
            if failure is not None and not toggled:
                shutil.rmtree(build, ignore_errors=True)
                raise failure
            floor = meta.points + deleting if meta.points is not None else None
            self._publish(build, meta, floor=floor, superseded=live.name)
            self._published = True
            if failure is not None:
                raise failure

    def _publish(
        self,
        build: Path,
        meta: GenerationMeta,
        *,
        floor: int | None = None,
        superseded: str | None = None,
    ) -> None:
        try:
            with disk.guard(self.root, disk.MB, what="publishing the new generation"):
                name = self._layout.publish(build, meta)
        except BaseException:
            if build.exists():  # not renamed: the old generation stays live
                shutil.rmtree(build, ignore_errors=True)
            raise
        self.damaged = None
        self._follow()
        self._layout.collect_garbage(keep=name, floor=floor, superseded=superseded)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"the store at {self.root} was opened read-only",
                hint="open it without read_only to change it",
            )
