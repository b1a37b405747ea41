"""One readable line for a user mistake in a config, a design override or a preset name."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The nearest of ``choices`` to ``word``, or None when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or an empty string."""
    close = nearest(word, choices)
    return f" (did you mean {close!r}?)" if close else ""


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _walk(model: type[BaseModel], loc: tuple) -> tuple[str, list[str]]:
    """The key path a user wrote (union tags and model names dropped) and the field names
    valid where its last key is, for 'did you mean' hints."""
    shown: list[str] = []
    current = [model]
    valid: list[str] = list(model.model_fields)
    for part in loc:
        if isinstance(part, int):
            if shown:
                shown[-1] += f"[{part}]"
            continue
        fields = {name: f for m in current for name, f in m.model_fields.items()}
        if part in fields:
            valid = list(fields)
            shown.append(part)
            current = _models_in(fields[part].annotation)
        elif not current:  # inside a plain value (a list of numbers, a free-form table)
            shown.append(str(part))
        elif any(part == m.__name__ for m in current) or part != loc[-1]:
            continue  # a union member's name or tag, not a key the user wrote
        else:
            valid = list(fields)
            shown.append(str(part))
    return ".".join(shown), valid


def format_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first problem of a pydantic error as ``prefix key.path: what was expected (got x)``,
    with a count of further problems."""
    errors = exc.errors(include_url=False)
    # a misspelt key also makes the key it was meant to be "missing": report the misspelling
    first = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(first.get("loc", ()))
    path, valid = _walk(model, loc)
    path = path or "(top level)"
    kind = first.get("type", "")
    got = first.get("input")
    if kind == "extra_forbidden":
        hint = suggest(loc[-1], valid) if loc else ""
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
