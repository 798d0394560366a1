"""Helpers for the Mastra-syntax definitions of the catalogue (traced steps, short builders)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flow import create_step
from scenarios.trace import span


def tstep(
    id: str,
    fn: Callable[[Any], Any] | None = None,
    *,
    delay: float = 0.0,
    name: str | None = None,
    **kw: Any,
) -> Any:
    """A traced flow step: records span `name or id`, sleeps `delay`, returns `fn(ctx)`
    (or its input unchanged when `fn` is None)."""

    async def execute(ctx: Any) -> Any:
        with span(name or id):
            if delay:
                await asyncio.sleep(delay)
            return fn(ctx) if fn is not None else ctx.input_data

    return create_step(id=id, execute=execute, **kw)


def present(d: dict[str, Any]) -> dict[str, Any]:
    """The entries of a parallel/branch output whose branch ran (drops None values)."""
    return {k: v for k, v in d.items() if v is not None}
