"""Turn pydantic validation errors into Problems that name the key and suggest a fix.

Field-level errors come from pydantic itself. A model validator that checks several fields together
(a table shape, an ordering) raises `EntryError` to name the exact entry inside the validated model
and its own fix; the entry is appended to the model's location, so a problem of a nested table reads
`ocv.voltage_v[1][51]`, not just `ocv`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gateway.errors import Problem

_MAX_INPUT_CHARS = 120


class EntryError(ValueError):
    """Raised inside a pydantic validator: `entry` is the key path relative to the validated model."""

    def __init__(self, entry: tuple[int | str, ...], message: str, fix: str) -> None:
        super().__init__(message)
        self.entry = entry
        self.message = message
        self.fix = fix


def dotted_key(location: tuple[int | str, ...]) -> str:
    key = ""
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key or "(top level)"


def _fix_for(error: ErrorDetails) -> str:
    context: dict[str, Any] = dict(error.get("ctx") or {})
    kind = error["type"]
    fixes: dict[str, Callable[[], str]] = {
        "missing": lambda: "add this key",
        "extra_forbidden": lambda: "remove this key or correct its spelling (see docs / examples/)",
        "greater_than_equal": lambda: f"use a value >= {context.get('ge')}",
        "greater_than": lambda: f"use a value > {context.get('gt')}",
        "less_than_equal": lambda: f"use a value <= {context.get('le')}",
        "less_than": lambda: f"use a value < {context.get('lt')}",
        "literal_error": lambda: f"use one of {context.get('expected')}",
        "enum": lambda: f"use one of {context.get('expected')}",
        "string_pattern_mismatch": lambda: "use letters, digits, '_', '.' or '-' (at most 64, starting "
        "with a letter or digit)",
        "int_parsing": lambda: "use a whole number",
        "int_type": lambda: "use a whole number",
        "float_parsing": lambda: "use a number",
        "float_type": lambda: "use a number",
        "bool_parsing": lambda: "use true or false",
        "bool_type": lambda: "use true or false",
        "string_type": lambda: "use a quoted string",
        "list_type": lambda: "use a list: [a, b, ...]",
        "tuple_type": lambda: "use a list: [a, b, ...]",
        "dict_type": lambda: "use a table / mapping of keys to values",
        "model_type": lambda: "use a table / mapping of keys to values",
        "too_short": lambda: f"give at least {context.get('min_length')} entries",
        "too_long": lambda: f"give at most {context.get('max_length')} entries",
    }
    make_fix = fixes.get(kind)
    return make_fix() if make_fix is not None else "correct the value as the message says"


def _shown(value: object) -> str:
    """The offending input for a message; a whole table or section is cut, not echoed in full."""
    text = repr(value)
    return text if len(text) <= _MAX_INPUT_CHARS else f"{text[:_MAX_INPUT_CHARS]}... [{len(text)} characters]"


def problems_from_validation_error(
    error: ValidationError, source_of: Callable[[tuple[int | str, ...]], str]
) -> list[Problem]:
    problems = []
    for detail in error.errors():
        location = tuple(detail["loc"])
        raised = (detail.get("ctx") or {}).get("error")
        if isinstance(raised, EntryError):
            location += raised.entry
            problems.append(Problem(source_of(location), dotted_key(location), raised.message, raised.fix))
            continue
        message = detail["msg"]
        if detail["type"] not in {"missing", "extra_forbidden"}:
            message += f" (got {_shown(detail.get('input'))})"
        problems.append(Problem(source_of(location), dotted_key(location), message, _fix_for(detail)))
    return problems
