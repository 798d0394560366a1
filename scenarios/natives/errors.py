"""Native (`durable`) definitions of the error scenarios: step max_retries, RetryableError,
FatalError, early return, cancellation during a durable sleep."""

from __future__ import annotations

import asyncio
from typing import Any

from durable import FatalError, RetryableError, get_step_metadata, sleep
from scenarios.natives.common import traced_value, wf
from scenarios.trace import span


@wf.step(max_retries=0)
async def explode() -> Any:
    with span("explode"):
        raise ValueError("boom failed")


@wf.workflow
async def err_step_fails(input_data: dict[str, Any]) -> Any:
    await traced_value(name="prepare", value={"ready": True})
    await explode()
    return await traced_value(name="never", value={"reached": True})


@wf.step(max_retries=0)
async def broken() -> Any:
    with span("broken"):
        raise RuntimeError("broken branch")


@wf.workflow
async def err_parallel_fails(input_data: dict[str, Any]) -> Any:
    results = await asyncio.gather(
        traced_value(name="steady", value={"ok": True}, delay=0.1), broken(), return_exceptions=True
    )
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return await traced_value(name="after", value={"reached": True})


@wf.step(max_retries=2)
async def flaky() -> Any:
    n = get_step_metadata().attempt
    with span(f"flaky-{n}"):
        if n < 3:
            raise RetryableError("flaky failure", retry_after=0.05)
        return {"attempts": n}


@wf.workflow
async def err_retry_config(input_data: dict[str, Any]) -> Any:
    return await flaky()


@wf.step(max_retries=1)
async def stubborn() -> Any:
    n = get_step_metadata().attempt
    with span(f"stubborn-{n}"):
        raise RetryableError("still broken", retry_after=0.01)


@wf.workflow
async def err_step_retries_override(input_data: dict[str, Any]) -> Any:
    return await stubborn()


@wf.step(max_retries=3)
async def rate_limited() -> Any:
    n = get_step_metadata().attempt
    with span(f"rate-limited-{n}"):
        if n < 2:
            raise RetryableError("rate limited", retry_after=0.2)
        return {"attempts": n}


@wf.workflow
async def err_retryable_error(input_data: dict[str, Any]) -> Any:
    return await rate_limited()


@wf.step(max_retries=3)
async def charge() -> Any:
    n = get_step_metadata().attempt
    with span(f"charge-{n}"):
        raise FatalError("card declined")


@wf.workflow
async def err_fatal_error(input_data: dict[str, Any]) -> Any:
    return await charge()


@wf.workflow
async def wcp43_bail(input_data: dict[str, Any]) -> Any:
    if input_data["value"] == "bail":
        return await traced_value(name="check", value={"result": "bailed"})
    await traced_value(name="check", value={"result": "continued"})
    return await traced_value(name="later", value={"result": "later"})


@wf.workflow
async def wcp20_cancel_sleep(input_data: dict[str, Any]) -> Any:
    await traced_value(name="first", value={"value": 1})
    await sleep(1.0)
    return await traced_value(name="second", value={"value": 2})
