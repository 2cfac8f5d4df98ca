"""`bookvec.load()`: a trained model (its bundle and the ONNX runtime) as a Python object, in the
style of gensim's KeyedVectors: ``m.vecs["Dune"]``, ``m.most_similar(...)``, ``m.similarity``,
plus what the CLI's model commands do (links, similar-links, explain, score, fold-in).

Titles are resolved loosely, by the CLI's rules (bookvec.titles); a book added with `bookvec
upsert` is found in the store when the bundle does not know it (links, explain, score). Never
imports torch; the store (and so qdrant_client for a server) only for those upserted books."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookvec.errors import ConfigError, InputError, TitleNotFoundError
from bookvec.library import actions
from bookvec.library.results import (
    BookLinks,
    Contribution,
    Explanation,
    LinkHit,
    LinkScore,
    Neighbour,
    ScoreResult,
)
from bookvec.library.store import Home, find_upserted, home_of, open_model_bundle
from bookvec.model import bundle as files

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


class SameBookError(ConfigError):
    """explain() was given one book twice."""


def load(model: str | Path | None = None, *, home: str | Path | None = None) -> Model:
    """The model bundle ``model`` names (a directory or a model id; None: the current one)."""
    where = home_of(home)
    return Model(open_model_bundle(model, home=where), home=where)


class Vectors(Mapping):
    """``m.vecs[title]``: a book's unit vector (float32), the title resolved loosely."""

    def __init__(self, model: Model) -> None:
        self._model = model

    def __getitem__(self, title: str) -> np.ndarray:
        m = self._model
        return m._book_vectors[m.book_index(title)]

    def __contains__(self, title: object) -> bool:
        return isinstance(title, str) and title in self._model.bundle.book_index

    def __iter__(self) -> Iterator[str]:
        return iter(self._model.titles)

    def __len__(self) -> int:
        return self._model.bundle.n_books


class Model:
    """A trained model: its bundle (``bundle``) and, on first use, its ONNX runtime."""

    def __init__(self, bundle, *, home: Home | None = None, store=None) -> None:
        self.bundle = bundle
        self._home = home or home_of()
        self._store = store  # an Index's open store: where upserted books are looked up
        self._verified: set[str] = set()

    def _need(self, *names: str) -> None:
        """Check these bundle files against the manifest's hashes, once per Model."""
        todo = tuple(name for name in names if name not in self._verified)
        if todo:
            self.bundle.verify(todo)
            self._verified.update(todo)

    def __repr__(self) -> str:
        b = self.bundle
        return f"<bookvec.Model {self.model_id}: {b.n_books:,} books, {b.n_links:,} links>"

    # --- what it holds ----------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def titles(self) -> list[str]:
        return list(self.bundle.book_titles)

    @property
    def link_names(self) -> list[str]:
        return list(self.bundle.link_names)

    @property
    def dim(self) -> int:
        return self.bundle.dim

    @property
    def synthetic(self) -> bool:
        return self.bundle.synthetic

    @cached_property
    def vecs(self) -> Vectors:
        return Vectors(self)

    @cached_property
    def runtime(self):
        from bookvec.model.runtime import Runtime

        return Runtime(self.bundle.path)

    @cached_property
    def _book_vectors(self) -> np.ndarray:
        import numpy as np

        self._need(files.BOOK_VECTORS)
        return np.asarray(self.bundle.book_vectors, dtype=np.float32)

    @cached_property
    def _link_vectors(self) -> np.ndarray:
        import numpy as np

        self._need(files.LINK_VECTORS)
        return np.asarray(self.bundle.link_vectors, dtype=np.float32)

    def book_index(self, title: str, *, exact: bool = False) -> int:
        """The row of the book ``title`` names (loose rules; TitleNotFoundError with
        suggestions, AmbiguousTitleError with candidates)."""
        return actions.resolve_bundle_book(self.bundle, title, exact=exact)

    def link_index(self, page: str, *, exact: bool = False) -> int:
        """The row of the page ``page`` names (cleaned as in training, then loose rules)."""
        return actions.resolve_bundle_link(self.bundle, page, exact=exact)

    def resolve(self, title: str, *, exact: bool = False) -> str:
        """The book title ``title`` means."""
        return self.bundle.book_titles[self.book_index(title, exact=exact)]

    # --- neighbours -------------------------------------------------------------------------
    def most_similar(
        self,
        positive: str | Sequence[str],
        negative: str | Sequence[str] = (),
        topn: int = 10,
        *,
        exact: bool = False,
    ) -> list[Neighbour]:
        """The books nearest the query, the query books left out, best first: the cosine with
        one book, or with Qdrant's `average_vector` of several (avg(positive) + (avg(positive)
        - avg(negative))), as `bookvec search --mode dense` (and --like/--unlike) ranks."""
        import numpy as np

        from bookvec.indexer.points import recommend_vector

        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive:
            raise ConfigError("most_similar needs at least one positive title")
        _check_topn(topn)
        pos = [self.book_index(t, exact=exact) for t in positive]
        neg = [self.book_index(t, exact=exact) for t in negative]
        vectors = self._book_vectors
        if len(pos) == 1 and not neg:
            query = vectors[pos[0]]
        else:
            mixed = recommend_vector(list(vectors[pos]), list(vectors[neg]))
            query = np.asarray(mixed, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        cosine = vectors @ query
        cosine[[*pos, *neg]] = -np.inf
        order = np.argsort(-cosine, kind="stable")[: min(topn, len(cosine) - len(set(pos + neg)))]
        books = self.bundle.books
        return [
            Neighbour.from_payload(
                self.bundle.book_titles[k],
                float(cosine[k]),
                books.row(int(k), named=True),
                synthetic=self.synthetic,
            )
            for k in order
        ]

    def similarity(self, a: str, b: str, *, exact: bool = False) -> float:
        """The cosine of two books' vectors."""
        va = self._book_vectors[self.book_index(a, exact=exact)]
        vb = self._book_vectors[self.book_index(b, exact=exact)]
        return round(float(va @ vb), 6)

    # --- links ------------------------------------------------------------------------------
    def links(
        self, title: str, missing: bool = False, topn: int = 10, *, exact: bool = False, log=None
    ) -> BookLinks:
        """The pages the book's article most likely links to (the score graph over every page),
        best first; ``missing``: only those it does not link to yet. `bookvec links`."""
        _check_topn(topn)
        self._need(files.SCORE_GRAPH)
        bundle = self.bundle
        try:
            index, record = self.book_index(title, exact=exact), None
        except TitleNotFoundError:
            record = self._upserted(title, exact=exact)
            if record is None:
                raise
        if record is not None:
            from bookvec.library.catalogue import predicted_links_for_vector, record_links

            rows = predicted_links_for_vector(
                bundle, self.runtime, record, limit=topn, missing_only=missing
            )
            name, observed, upserted = record.title, len(record_links(record, bundle)), True
        else:
            rows = actions.predicted_links(
                bundle, self.runtime, index, limit=topn, missing_only=missing, log=log
            )
            name, upserted = bundle.book_titles[index], False
            observed = len(actions.observed_links(bundle, index))
        return BookLinks(
            title=name,
            links=tuple(LinkScore(**row) for row in rows),
            observed=observed,
            upserted=upserted,
        )

    def similar_links(self, page: str, topn: int = 10, *, exact: bool = False) -> list[LinkHit]:
        """The pages nearest a page: cosine of the link vectors. `bookvec similar-links`."""
        _check_topn(topn)
        self._need(files.LINK_VECTORS)
        index = self.link_index(page, exact=exact)
        return [LinkHit(**row) for row in actions.nearest_links(self.bundle, index, limit=topn)]

    def explain(self, a: str, b: str, topn: int = 10, *, exact: bool = False, log=None):
        """Why two books are close: the pages both articles link to and those pulling their
        vectors together most, each with (a·l)(b·l). `bookvec explain`."""
        import numpy as np

        _check_topn(topn)
        self._need(files.BOOK_VECTORS, files.LINK_VECTORS)
        sa, sb = self._side(a, exact, log), self._side(b, exact, log)
        if sa[0] == sb[0]:
            raise SameBookError(f"A and B are the same book ({sa[0]!r})")
        raw = actions.explain_sides(self.bundle, sa[:3], sb[:3], limit=topn)
        names = {row["link"] for key in ("shared_links", "pulling_links") for row in raw[key]}
        index, vectors = self.bundle.link_index, self._link_vectors
        cosines = {
            n: (float(vectors[index[n]] @ sa[1]), float(vectors[index[n]] @ sb[1])) for n in names
        }
        link_names = self.bundle.link_names
        return Explanation(
            a=raw["a"],
            b=raw["b"],
            similarity=raw["similarity"],
            shared_links=tuple(Contribution(**row) for row in raw["shared_links"]),
            pulling_links=tuple(Contribution(**row) for row in raw["pulling_links"]),
            a_upserted=sa[3],
            b_upserted=sb[3],
            a_links=frozenset(link_names[int(k)] for k in np.asarray(sa[2])),
            b_links=frozenset(link_names[int(k)] for k in np.asarray(sb[2])),
            cosines=cosines,
        )

    def _side(self, query: str, exact: bool, log) -> tuple:
        """(title, unit vector, link indices, upserted) of a trained or an upserted book."""
        import numpy as np

        try:
            i = self.book_index(query, exact=exact)
        except TitleNotFoundError:
            from bookvec.library.catalogue import record_links

            record = self._upserted(query, exact=exact)
            if record is None:
                raise
            vector = np.asarray(record.vector, dtype=np.float32)
            vector /= max(float(np.linalg.norm(vector)), 1e-12)
            return record.title, vector, np.asarray(record_links(record, self.bundle)), True
        links = actions.observed_links(self.bundle, i, log=log)
        return self.bundle.book_titles[i], self._book_vectors[i], links, False

    def _upserted(self, title: str, *, exact: bool):
        """The store record of an upserted book ``title`` names, or None."""
        from bookvec.library.store import upserted_record

        if self._store is not None:
            return upserted_record(self._store, title, exact=exact)
        return find_upserted(title, exact=exact, home=self._home)

    # --- scores and new books ---------------------------------------------------------------
    def score(
        self, pairs: Any, *, exact: bool = False, skip_invalid: bool = False, source=None
    ) -> ScoreResult:
        """P(the book's article links to the page) for each pair, in one ONNX batch: a list of
        (book, link) pairs, or a polars/pandas frame with columns book and link. An unknown
        title raises (InputError naming its row), or with ``skip_invalid`` is left out and
        listed in ``rejects``. `bookvec score`."""
        from bookvec.library.pairs import score_columns, score_rows

        self._need(files.SCORE_GRAPH)
        columns = _pair_columns(pairs)
        if columns is not None:
            books, links = columns
            return score_columns(
                self, None, books, links, exact=exact, skip_invalid=skip_invalid, source=source
            )
        rows = _pair_rows(pairs)
        return score_rows(self, rows, exact=exact, skip_invalid=skip_invalid, source=source)

    def fold_in(self, links: Iterable[str]) -> np.ndarray:
        """A new book's unit vector from the pages it links to (cleaned as in training; those
        the model does not know are left out), as `bookvec upsert` places it."""
        from bookvec.library.catalogue import cleaned_links

        if isinstance(links, str):
            raise InputError("fold_in takes a list of page titles, not one string")
        self._need(files.FOLD_IN_GRAPH, files.LINKS)
        names = cleaned_links(list(links), actions.bundle_cleaning(self.bundle))
        known = [self.bundle.link_index[n] for n in names if n in self.bundle.link_index]
        if not known:
            raise InputError("none of its links is known to the model")
        return self.runtime.fold_in([known])[0]

    def summary(self):
        """What `bookvec train --json` says of this model: counts, metrics, warm start."""
        from bookvec.library.training import summary

        return summary(self.bundle)

    # --- as arrays and frames ---------------------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """Every book's unit vector, rows in ``titles`` order: float32 [books, dim] (a copy)."""
        return self._book_vectors.copy()

    def to_polars(self) -> pl.DataFrame:
        """The books table (title, genres, author, country, year, ...) with a ``vector``
        column (float32 arrays of ``dim``)."""
        import polars as pl

        vectors = pl.Series("vector", self._book_vectors, dtype=pl.Array(pl.Float32, self.dim))
        return self.bundle.books.with_columns(vectors)


def _check_topn(topn: int) -> None:
    if isinstance(topn, bool) or not isinstance(topn, int) or topn < 1:
        raise ConfigError(f"topn must be a positive integer, not {topn!r}")


def _pair_columns(pairs: Any) -> tuple[list[str], list[str]] | None:
    """(books, links) of a list of (book, link) tuples of non-empty strings, checked for the
    whole batch at once; None for anything else (`_pair_rows` takes it, and names the bad row)."""
    if not isinstance(pairs, (list, tuple)) or not all(
        type(p) is tuple and len(p) == 2 for p in pairs
    ):
        return None
    books = [p[0] for p in pairs]
    links = [p[1] for p in pairs]
    if not all(type(t) is str and t for t in books) or not all(type(t) is str and t for t in links):
        return None
    return books, links


def _pair_rows(pairs: Any) -> list:
    """(book, link) pairs as given -> PairRows numbered from 1 (the row number in errors)."""
    from bookvec.library.pairs import PairRow

    if hasattr(pairs, "columns") and not isinstance(pairs, (list, tuple)):
        missing = [c for c in ("book", "link") if c not in list(pairs.columns)]
        if missing:
            raise InputError(f"the frame lacks column(s) {', '.join(missing)}")
        books, links = list(pairs["book"]), list(pairs["link"])
        pairs = list(zip(books, links, strict=True))
    rows = []
    for number, pair in enumerate(pairs, 1):
        if isinstance(pair, PairRow):
            rows.append(pair)
            continue
        if isinstance(pair, Mapping):
            pair = (pair.get("book"), pair.get("link"))
        if isinstance(pair, str) or len(pair) != 2:
            raise InputError(f"pair {number}: expected (book, link), got {pair!r}")
        book, link = pair
        if not (isinstance(book, str) and isinstance(link, str) and book and link):
            raise InputError(f"pair {number}: book and link must be non-empty strings")
        rows.append(PairRow(number, book, link))
    return rows
