"""Retries: attempt counts, retry_after, FatalError, the final error type, the event trail."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable import FatalError, RetryableError, Workflows

wf = Workflows()
ATTEMPTS: dict[str, list[int]] = {}


def _note(key: str) -> int:
    attempt = durable.get_step_metadata().attempt
    ATTEMPTS.setdefault(key, []).append(attempt)
    return attempt


class PaymentDeclined(Exception):
    pass


durable.register_error(PaymentDeclined)


@wf.step(max_retries=2, retry_delay=0.001)
async def fails_twice(key: str) -> str:
    a = _note(key)
    if a < 3:
        raise ValueError(f"boom {a}")
    return f"ok on attempt {a}"


@wf.step(retry_delay=0.001)
async def always_fails(key: str) -> str:
    a = _note(key)
    raise ValueError(f"boom {a}")


@wf.step(max_retries=0)
async def no_retry(key: str) -> str:
    a = _note(key)
    raise ValueError(f"boom {a}")


@wf.step(max_retries=5)
async def fatal(key: str) -> str:
    _note(key)
    raise FatalError("do not retry")


@wf.step(max_retries=5)
async def retryable(key: str) -> str:
    a = _note(key)
    if a < 3:
        raise RetryableError("later", retry_after=0.01 if a == 1 else timedelta(milliseconds=10))
    return f"ok on attempt {a}"


@wf.step(max_retries=1, retry_delay=0.001)
async def custom_error(key: str) -> str:
    _note(key)
    raise PaymentDeclined("card 42")


@wf.workflow
async def catch(step_name: str, key: str) -> dict:
    step = {"fails_twice": fails_twice, "always_fails": always_fails, "no_retry": no_retry,
            "fatal": fatal, "retryable": retryable, "custom_error": custom_error}[step_name]
    try:
        return {"value": await step(key)}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


@pytest.mark.parametrize(
    ("step_name", "attempts", "outcome"),
    [
        ("fails_twice", [1, 2, 3], {"value": "ok on attempt 3"}),
        ("always_fails", [1, 2, 3, 4], {"error": "ValueError", "message": "boom 4"}),
        ("no_retry", [1], {"error": "ValueError", "message": "boom 1"}),
        ("fatal", [1], {"error": "FatalError", "message": "do not retry"}),
        ("retryable", [1, 2, 3], {"value": "ok on attempt 3"}),
        ("custom_error", [1, 2], {"error": "PaymentDeclined", "message": "card 42"}),
    ],
)
async def test_retry_semantics(world: durable.World, step_name: str, attempts: list[int],
                               outcome: dict) -> None:
    key = f"{step_name}-{type(world).__name__}"
    ATTEMPTS.pop(key, None)
    run = await durable.start(catch, step_name, key)
    assert await run.return_value(timeout=20) == outcome
    assert ATTEMPTS[key] == attempts
    (step,) = world.list_steps(run.run_id)
    assert step.attempt == len(attempts)
    assert step.status == ("completed" if "value" in outcome else "failed")
    types = [e.type for e in world.list_events(run.run_id) if e.correlation_id == "step_1"]
    n = len(attempts)
    expected = ["step_created"] + ["step_started", "step_retrying"] * (n - 1) + ["step_started"]
    expected.append("step_completed" if "value" in outcome else "step_failed")
    assert types == expected


async def test_retry_after_is_recorded(world: durable.World) -> None:
    key = f"ra-{type(world).__name__}"
    run = await durable.start(catch, "retryable", key)
    await run.return_value(timeout=20)
    retrying = [e for e in world.list_events(run.run_id) if e.type == "step_retrying"]
    assert len(retrying) == 2
    for ev in retrying:
        assert ev.data["retry_after"] >= ev.created_at + 0.0099
        assert ev.data["error"]["type"] == "RetryableError"


@wf.workflow
async def uncaught() -> str:
    return await no_retry("uncaught")


async def test_final_error_fails_run_with_type(world: durable.World) -> None:
    run = await durable.start(uncaught)
    with pytest.raises(durable.WorkflowRunFailedError) as ei:
        await run.return_value(timeout=10)
    assert type(ei.value.cause) is ValueError
    assert str(ei.value.cause) == "boom 1"


def test_bad_retry_after() -> None:
    from durable._internal.durations import parse_seconds

    with pytest.raises(ValueError, match="'soon'"):
        parse_seconds("soon", "retry_after")
    assert parse_seconds("250ms") == 0.25
    assert parse_seconds("2m") == 120.0
