"""One readable line for a user mistake in a config, a design override or a preset name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model found at ``loc``, for 'did you mean' hints."""
    current = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            return []
    return list(getattr(current, "model_fields", {}))


def format_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first problem of a pydantic error as ``prefix key.path: what was expected (got x)``,
    with a count of further problems."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    path = ".".join(str(p) for p in loc) or "(top level)"
    kind = first.get("type", "")
    got = first.get("input")
    if kind == "extra_forbidden":
        hint = suggest(loc[-1], _fields_at(model, loc)) if loc else ""
        message = f"{path}: unknown key{hint}"
    else:
        message = f"{path}: {first.get('msg', 'invalid value')}"
        message = message.replace("Value error, ", "")
        if kind not in ("missing",) and not isinstance(got, dict) and "(got" not in message:
            message += f" (got {got!r})"
    more = len(errors) - 1
    if more:
        message += f" [and {more} more problem{'s' if more > 1 else ''}]"
    return prefix + message
