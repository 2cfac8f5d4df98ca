"""Search and browse: similar books, recommend, books for a page, a book and its pages,
explain, similar pages, autocomplete, facets. One route per thing the CLI does, with its
filters and loose title rules (the library applies them); the same JSON as its --json."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse

from bookvec.service import auth, query
from bookvec.service.errors import ServiceError
from bookvec.service.query import Param
from bookvec.service.respond import answer, index
from bookvec.service.schemas import READ_ERRORS, Open

MAX_LIMIT = 1000
router = APIRouter(prefix="/api", dependencies=[Depends(auth.require_read)], responses=READ_ERRORS)

Title = Annotated[str, Query(min_length=1, max_length=500, description="A loose title")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many results")]
Exact = Annotated[bool, Query(description="Take titles as typed, no matching")]


FILTERS = (
    Param("genre", many=True, max_items=20, description="Only books of this genre (any of them)"),
    Param("all_genres", bool, "Books must have every genre", default=False),
    Param("author", description="Only books by this author"),
    Param("country", max_length=200, description="Only books from this country"),
    Param("year_from", int, "Published in or after", low=-5000, high=5000),
    Param("year_to", int, "Published in or before", low=-5000, high=5000),
    Param("limit", int, "How many books", default=10, low=1, high=MAX_LIMIT),
    Param(
        "mode",
        description="dense, sparse or hybrid (default: the store's)",
        choices=("dense", "sparse", "hybrid"),
    ),  # fmt: skip
    Param("diverse", bool, "Re-rank the top candidates by MMR", default=False),
    Param("exact", bool, "Take titles as typed, no matching", default=False),
)
SIMILAR = (Param("title", required=True, description="A loose title"), *FILTERS)
RECOMMEND = (
    Param("like", many=True, required=True, description="Books to be like"),
    Param("unlike", many=True, description="Books to steer away from"),
    *FILTERS,
)
LINKING = (Param("page", required=True, description="A page (a link name)"), *FILTERS)


def search_kwargs(request: Request, params: tuple[Param, ...]) -> dict:
    """The library's search arguments from the query string (parsed by service/query.py)."""
    q = query.parse(params, request.query_params)
    check_limit(request, q["limit"])
    genres = tuple(g for g in q.pop("genre") if g.strip())
    if q.pop("all_genres"):
        if not genres:
            raise ServiceError(
                400, "InputError", "all_genres needs at least one genre", "add genre=NAME"
            )
        q["genres_all"], q["genres"] = genres, ()
    else:
        q["genres"] = genres
    start, stop = q.pop("year_from"), q.pop("year_to")
    q["years"] = None if start is None and stop is None else (start, stop)
    return q


def check_limit(request: Request, limit: int) -> None:
    most = request.app.state.service.config.max_limit
    if limit > most:
        raise ServiceError(
            400, "InputError", f"limit {limit} is over this server's maximum of {most}", None
        )


class SearchOut(Open):
    pass


@router.get(
    "/similar",
    response_model=SearchOut,
    openapi_extra=query.openapi(SIMILAR),
    summary="Books like a book",
)
async def similar(request: Request) -> JSONResponse:
    """`bookvec search TITLE`: the books nearest to it, the book itself excluded."""
    return answer(index(request).search(**search_kwargs(request, SIMILAR)))


@router.get(
    "/recommend",
    response_model=SearchOut,
    openapi_extra=query.openapi(RECOMMEND),
    summary="Books like some, unlike others",
)
async def recommend(request: Request) -> JSONResponse:
    """`bookvec search --like A --like B --unlike C`."""
    return answer(index(request).search(**search_kwargs(request, RECOMMEND)))


@router.get(
    "/linking",
    response_model=SearchOut,
    openapi_extra=query.openapi(LINKING),
    summary="Books most likely to link to a page",
)
async def linking(request: Request) -> JSONResponse:
    """`bookvec search --link PAGE`."""
    kwargs = search_kwargs(request, LINKING)
    return answer(index(request).search(link=kwargs.pop("page"), **kwargs))


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
