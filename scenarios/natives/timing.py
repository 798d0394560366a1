"""Native (`durable`) definitions of the time scenarios: durable `sleep()`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from durable import now, sleep
from scenarios.natives.common import traced_value, wf


@wf.workflow
async def time_sleep(input_data: dict[str, Any]) -> Any:
    v = await traced_value(name="before", value=input_data["value"] + 1)
    await sleep(0.2)
    return {"value": await traced_value(name="after", value=v + 1)}


@wf.workflow
async def time_sleep_dynamic(input_data: dict[str, Any]) -> Any:
    delay = await traced_value(name="plan", value=input_data["delay"])
    await sleep(delay)
    return {"slept": await traced_value(name="after", value=delay)}


def _plus(t: Any, seconds: float) -> datetime:
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=UTC)) + timedelta(seconds=seconds)
    return datetime.fromtimestamp(float(t) + seconds, UTC)


@wf.workflow
async def time_sleep_until(input_data: dict[str, Any]) -> Any:
    until = _plus(now(), 0.3)
    v = await traced_value(name="before", value=1)
    await sleep(until)
    return {"value": await traced_value(name="after", value=v + 1)}
