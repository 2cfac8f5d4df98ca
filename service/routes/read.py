"""Search and browse: similar books, recommend, books for a page, a book and its pages,
explain, similar pages, autocomplete, facets. One route per thing the CLI does, with its
filters and loose title rules (the library applies them); the same JSON as its --json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse

from bookvec.service import auth
from bookvec.service.errors import ServiceError
from bookvec.service.respond import answer, index
from bookvec.service.schemas import READ_ERRORS, Open

MAX_LIMIT = 1000
router = APIRouter(prefix="/api", dependencies=[Depends(auth.require_read)], responses=READ_ERRORS)

Title = Annotated[str, Query(min_length=1, max_length=500, description="A loose title")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many results")]
Exact = Annotated[bool, Query(description="Take titles as typed, no matching")]


@dataclass(frozen=True)
class Filters:
    genres: tuple[str, ...]
    genres_all: tuple[str, ...]
    author: str | None
    country: str | None
    years: tuple[int | None, int | None] | None
    limit: int
    mode: str | None
    diverse: bool
    exact: bool

    def kwargs(self) -> dict:
        return {
            "genres": self.genres,
            "genres_all": self.genres_all,
            "author": self.author,
            "country": self.country,
            "years": self.years,
            "limit": self.limit,
            "mode": self.mode,
            "diverse": self.diverse,
            "exact": self.exact,
        }


def filters(
    request: Request,
    genre: Annotated[
        list[str], Query(max_length=20, description="Only books of this genre (any of them)")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    all_genres: Annotated[bool, Query(description="Books must have every genre")] = False,
    author: Annotated[str | None, Query(max_length=500)] = None,
    country: Annotated[str | None, Query(max_length=200)] = None,
    year_from: Annotated[int | None, Query(ge=-5000, le=5000)] = None,
    year_to: Annotated[int | None, Query(ge=-5000, le=5000)] = None,
    limit: Limit = 10,
    mode: Literal["dense", "sparse", "hybrid"] | None = None,
    diverse: bool = False,
    exact: Exact = False,
) -> Filters:
    check_limit(request, limit)
    if all_genres and not genre:
        raise ServiceError(
            400, "InputError", "all_genres needs at least one genre", "add genre=NAME"
        )
    genres = tuple(g for g in genre if g.strip())
    years = None if year_from is None and year_to is None else (year_from, year_to)
    return Filters(
        genres=() if all_genres else genres,
        genres_all=genres if all_genres else (),
        author=author,
        country=country,
        years=years,
        limit=limit,
        mode=mode,
        diverse=diverse,
        exact=exact,
    )


def check_limit(request: Request, limit: int) -> None:
    most = request.app.state.service.config.max_limit
    if limit > most:
        raise ServiceError(
            400, "InputError", f"limit {limit} is over this server's maximum of {most}", None
        )


Filtered = Annotated[Filters, Depends(filters)]


class SearchOut(Open):
    pass


@router.get("/similar", response_model=SearchOut, summary="Books like a book")
async def similar(request: Request, title: Title, f: Filtered) -> JSONResponse:
    """`bookvec search TITLE`: the books nearest to it, the book itself excluded."""
    return answer(index(request).search(title, **f.kwargs()))


@router.get("/recommend", response_model=SearchOut, summary="Books like some, unlike others")
async def recommend(
    request: Request,
    f: Filtered,
    like: Annotated[list[str], Query(min_length=1, max_length=50)],
    unlike: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
) -> JSONResponse:
    """`bookvec search --like A --like B --unlike C`."""
    return answer(index(request).recommend(like, unlike, **f.kwargs()))


@router.get("/linking", response_model=SearchOut, summary="Books most likely to link to a page")
async def linking(
    request: Request, f: Filtered, page: Annotated[str, Query(min_length=1, max_length=500)]
) -> JSONResponse:
    """`bookvec search --link PAGE`."""
    return answer(index(request).search(link=page, **f.kwargs()))


@router.get("/book", response_model=Open, summary="A book's stored record")
async def book(request: Request, title: Title) -> JSONResponse:
    return answer(index(request).book(title))


@router.get("/book/links", response_model=Open, summary="A book's pages")
async def book_links(
    request: Request, title: Title, missing: bool = False, limit: Limit = 10
) -> JSONResponse:
    """`bookvec links TITLE [--missing]`: its pages, scored; with missing, the pages it does
    not link to yet that the model expects."""
    check_limit(request, limit)
    return answer(index(request).links(title, missing=missing, topn=limit))


@router.get("/explain", response_model=Open, summary="Why two books are alike")
async def explain(request: Request, a: Title, b: Title) -> JSONResponse:
    """`bookvec explain A B`: the shared pages and the pages pulling them together."""
    return answer(index(request).explain(a, b))


@router.get("/pages/similar", response_model=list[Open], summary="Pages like a page")
async def similar_pages(
    request: Request, page: Annotated[str, Query(min_length=1, max_length=500)], limit: Limit = 10
) -> JSONResponse:
    """`bookvec similar-links PAGE`."""
    check_limit(request, limit)
    return answer(index(request).model.similar_links(page, topn=limit))


@router.get("/complete", response_model=list[str], summary="Title autocomplete")
async def complete(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="What was typed so far")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSONResponse:
    """Titles starting with what was typed, then fuzzy matches."""
    return answer(index(request).complete(q, limit=limit) if q.strip() else [])


@router.get("/facets", response_model=dict[str, int], summary="Genres and their counts")
async def facets(request: Request) -> JSONResponse:
    """Genre -> how many books of the store have it, most first (kept 30 s per worker)."""
    reader = index(request)
    return answer(request.app.state.service.cached("facets", reader.facets))
