"""Taking command-line values as they are, without pydantic, where that gives the same value.

Typer coerces every parameter value through a pydantic TypeAdapter, which costs `bookvec search`
~0.1 s of imports and schema building before any work. A plain `str`, `int`, `bool` or
`list[str]` value needs none of it: a string is already a string, "12" an int. `install()` makes
Typer's parameters take those as they are; every other type, and every value this does not
accept (a bad number, one out of range), goes through Typer's own coercion, so messages and
results are Typer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:  # private to Typer: without it (another version), every value takes Typer's own path
    import typer.core as _typer_core
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover
    RuntimeParam = None

_QUICK_TYPES = (str, int, bool, list[str])
_UNTOUCHED = object()


def install() -> None:
    """Route Typer's runtime coercion of plain parameters through `_Quick` (idempotent)."""
    if RuntimeParam is not None and getattr(_typer_core, "build_runtime_param", None) is (
        build_runtime_param
    ):
        _typer_core.build_runtime_param = quick_runtime_param


def quick_runtime_param(descriptor: Any) -> Any:
    """Typer's `build_runtime_param`, with plain str/int/bool/list[str] parameters quick."""
    info = descriptor.parameter_info
    plain = descriptor.file_annotation is None and info.parser is None and not info.clamp
    if plain and descriptor.annotation in _QUICK_TYPES:
        return _Quick(parameter_info=info, annotation=descriptor.annotation)
    return build_runtime_param(descriptor)


def quick_value(annotation: Any, info: Any, value: Any) -> Any:
    """The value Typer would give, when that is plain to see; else _UNTOUCHED."""
    if annotation is str:
        return value if type(value) is str else _UNTOUCHED
    if annotation is bool:
        return value if type(value) is bool else _UNTOUCHED
    if annotation is int:
        if type(value) is str:
            digits = value[1:] if value[:1] == "-" else value
            if not (digits.isascii() and digits.isdigit()):
                return _UNTOUCHED
            value = int(value)
        if type(value) is not int:
            return _UNTOUCHED
        if (info.min is not None and value < info.min) or (
            info.max is not None and value > info.max
        ):
            return _UNTOUCHED  # Typer's own says what the range is
        return value
    if isinstance(value, (list, tuple)) and all(type(item) is str for item in value):
        return list(value)
    return _UNTOUCHED


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _Quick(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            quick = quick_value(self.annotation, self.parameter_info, value)
            if quick is not _UNTOUCHED:
                return quick
            typer_own = build_runtime_param(param.type_descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)
