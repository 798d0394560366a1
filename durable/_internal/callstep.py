"""call_step: run a registered step outside any workflow with the runtime's step semantics
(max_retries, RetryableError(retry_after) / FatalError, get_step_metadata set) and no event
log. Retry waits are plain asyncio sleeps (not durable). Used by the `stepmode` engine."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from durable._internal.context import CURRENT_BODY, CURRENT_STEP, StepMetadata, current_body
from durable._internal.durations import parse_seconds, to_timestamp
from durable._internal.errors import FatalError, RetryableError
from durable._internal.registry import StepFunction

_COUNTER = itertools.count(1)


async def call_step(step_fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `step_fn` (a registered step) with retries; returns its result or raises its final
    error (after max_retries + 1 attempts; FatalError at once)."""
    if not isinstance(step_fn, StepFunction):
        raise TypeError(f"call_step expects a registered @wf.step function, got {step_fn!r}")
    if current_body() is not None:
        return await step_fn(*args, **kwargs)
    step_id = f"callstep_{next(_COUNTER)}"
    started = datetime.fromtimestamp(time.time(), UTC)
    attempt = 0
    while True:
        attempt += 1
        meta = StepMetadata("", step_id, step_fn.name, attempt, started)
        ctx = contextvars.copy_context()
        ctx.run(CURRENT_BODY.set, None)
        ctx.run(CURRENT_STEP.set, meta)
        try:
            task = asyncio.get_running_loop().create_task(step_fn.fn(*args, **kwargs), context=ctx)
            return await task
        except FatalError:
            raise
        except Exception as exc:
            if attempt >= step_fn.max_retries + 1:
                raise
            if isinstance(exc, RetryableError):
                ra = exc.retry_after
                if ra is None:
                    delay = 1.0
                elif isinstance(ra, datetime):
                    delay = max(0.0, to_timestamp(ra) - time.time())
                else:
                    delay = parse_seconds(ra, "retry_after")
            else:
                delay = step_fn.retry_delay
            await asyncio.sleep(delay)
