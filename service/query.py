"""Query parameters of the hot search routes, parsed by hand: FastAPI's per-parameter
validation cost about as much as the store's query at 37k books. Each parameter is declared
once, here; the same declaration gives the OpenAPI entry (so /docs and schemathesis know it)
and the parser, whose errors are 422s naming the parameter, as FastAPI's are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bookvec.service.errors import ServiceError

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: type = str  # str, int or bool
    description: str = ""
    many: bool = False  # repeatable: ?genre=a&genre=b
    required: bool = False
    default: Any = None
    low: int | None = None
    high: int | None = None
    max_length: int = 500
    max_items: int = 50
    choices: tuple[str, ...] = ()

    def openapi(self) -> dict[str, Any]:
        one: dict[str, Any] = {"type": {str: "string", int: "integer", bool: "boolean"}[self.kind]}
        if self.kind is str:
            one["maxLength"] = self.max_length
            if self.required:
                one["minLength"] = 1
        if self.low is not None:
            one["minimum"] = self.low
        if self.high is not None:
            one["maximum"] = self.high
        if self.choices:
            one["enum"] = list(self.choices)
        if self.default is not None and not self.many:
            one["default"] = self.default
        schema = one
        if self.many:
            schema = {"type": "array", "items": one, "maxItems": self.max_items}
            if self.required:
                schema["minItems"] = 1
        entry = {"name": self.name, "in": "query", "required": self.required, "schema": schema}
        if self.description:
            entry["description"] = self.description
        if self.many:
            entry.update(style="form", explode=True)
        return entry

    def parse(self, values: list[str]) -> Any:
        if not values:
            if self.required:
                raise invalid(self.name, "field required")
            return () if self.many else self.default
        if not self.many:
            return self.one(values[-1])
        if len(values) > self.max_items:
            raise invalid(self.name, f"at most {self.max_items} values")
        return tuple(self.one(v) for v in values)

    def one(self, text: str) -> Any:
        if self.kind is bool:
            word = text.strip().lower()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise invalid(self.name, "Input should be a valid boolean")
        if self.kind is int:
            try:
                value = int(text)
            except ValueError:
                raise invalid(self.name, "Input should be a valid integer") from None
            if self.low is not None and value < self.low:
                raise invalid(self.name, f"Input should be greater than or equal to {self.low}")
            if self.high is not None and value > self.high:
                raise invalid(self.name, f"Input should be less than or equal to {self.high}")
            return value
        if len(text) > self.max_length:
            raise invalid(self.name, f"at most {self.max_length} characters")
        if self.required and not text:
            raise invalid(self.name, "String should have at least 1 character")
        if self.choices and text not in self.choices:
            raise invalid(self.name, "Input should be " + " or ".join(map(repr, self.choices)))
        return text


def invalid(name: str, why: str) -> ServiceError:
    return ServiceError(
        422, "ValidationError", f"query parameter {name}: {why}", "see /docs for each parameter"
    )


def openapi(params: Iterable[Param]) -> dict[str, Any]:
    return {"parameters": [p.openapi() for p in params]}


def parse(params: Iterable[Param], query: Any) -> dict[str, Any]:
    """{name: value} from a Starlette QueryParams (or a mapping of lists)."""
    get = query.getlist if hasattr(query, "getlist") else lambda n: list(query.get(n, ()))
    return {p.name: p.parse(get(p.name)) for p in params}


def table(*params: Param) -> Mapping[str, Param]:
    return {p.name: p for p in params}
