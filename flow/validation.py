"""Validation with pydantic: a schema is a pydantic model class or any type pydantic can validate.

`validate(schema, value, prefix)` returns the validated value as plain data (models dumped back to
dicts, defaults applied) or raises `flow.errors.ValidationError` whose message is `prefix` followed
by one `- field.path: message` line per bad field (reference section 3.14).
"""

from __future__ import annotations

from typing import Any

import pydantic

from flow.errors import ValidationError

_ADAPTERS: dict[int, tuple[Any, pydantic.TypeAdapter[Any]]] = {}


def _adapter(schema: Any) -> pydantic.TypeAdapter[Any]:
    key = id(schema)
    hit = _ADAPTERS.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(schema)
    _ADAPTERS[key] = (schema, adapter)
    return adapter


def format_issues(issues: list[tuple[str, str]]) -> str:
    """`\\n- path: message` per issue (the reference's layout)."""
    return "".join(f"\n- {path}: {message}" for path, message in issues)


def validate(schema: Any, value: Any, prefix: str) -> Any:
    """Validate `value` against `schema`; return plain data with defaults applied.

    A schema of `None` accepts anything unchanged. If validation strips a dict down to `{}`
    (e.g. a model without fields), the original value passes through (reference 3.3 quirk, kept).
    """
    if schema is None:
        return value
    adapter = _adapter(schema)
    try:
        parsed = adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        issues = [
            (".".join(str(p) for p in err["loc"]) or "(root)", err["msg"]) for err in exc.errors()
        ]
        raise ValidationError(prefix + " " + format_issues(issues), issues) from None
    plain = adapter.dump_python(parsed)
    if plain == {} and isinstance(value, dict):
        return value
    return plain
