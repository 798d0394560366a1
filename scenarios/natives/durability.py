"""Native (`durable`) definitions of the durability and determinism scenarios."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from durable import now, random, sleep, uuid4
from scenarios.natives.common import traced_value, wait_resume, wf
from scenarios.trace import span

_VARIANT = os.environ.get("WFBENCH_SCENARIO_VARIANT", "1")


@wf.workflow
async def dur_kill_mid_chain(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    for i in range(1, 21):
        v = await traced_value(name=f"s-{i}", value=v + 1, delay=0.5 if i == 11 else 0.05)
    return {"value": v}


@wf.workflow
async def dur_kill_during_sleep(input_data: dict[str, Any]) -> Any:
    v = await traced_value(name="before-sleep", value=1)
    await sleep(0.8)
    return {"value": await traced_value(name="after-sleep", value=v + 1)}


@wf.step
async def process(*, value: int) -> dict[str, int]:
    with span(f"process-{value}"):
        await asyncio.sleep(0.15)
        return {"value": value * 10}


@wf.workflow
async def dur_kill_in_foreach(input_data: dict[str, Any]) -> Any:
    items = await traced_value(name="items", value=list(input_data["items"]))
    out: list[Any] = []
    for k in range(0, len(items), 2):  # concurrency 2, in batches
        out.extend(await asyncio.gather(*(process(value=n) for n in items[k:k + 2])))
    return out


@wf.workflow
async def dur_hook_other_process(input_data: dict[str, Any]) -> Any:
    await traced_value(name="ask", value={"asked": True})
    data = await wait_resume("approve")
    approved = await traced_value(name="approve", value={"approved": data["ok"]})
    return await traced_value(name="record", value=approved)


@wf.workflow
async def det_time_random(input_data: dict[str, Any]) -> Any:
    drawn = {"t": str(now()), "r": random(), "u": str(uuid4())}
    echoed = await traced_value(name="echo", value=drawn)
    await traced_value(name="hold", value=None, delay=0.4)
    return {"stable": echoed == drawn}


@wf.workflow
async def det_changed_workflow(input_data: dict[str, Any]) -> Any:
    await traced_value(name="step-a", value={"value": 1})
    if _VARIANT == "2":
        await traced_value(name="step-x", value={"value": 2}, delay=0.5)
    else:
        await traced_value(name="step-b", value={"value": 2}, delay=0.5)
    return await traced_value(name="step-c", value={"value": 3})
