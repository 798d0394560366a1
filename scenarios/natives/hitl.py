"""Native (`durable`) definitions of the human-in-the-loop scenarios: hooks stand in for
Mastra's suspend/resume (`wait_resume(step)` waits on the hook `hook_token(run_id, step)`)."""

from __future__ import annotations

import asyncio
from typing import Any

from durable import sleep
from scenarios.natives.common import traced_value, wait_resume, wf


@wf.workflow
async def hitl_suspend_resume(input_data: dict[str, Any]) -> Any:
    fetched = await traced_value(name="fetch", value={"item": input_data["item"]})
    data = await wait_resume("approve")
    approved = await traced_value(name="approve", value={"approved": data["approved"], "item": fetched["item"]})
    return await traced_value(name="finish", value={"done": True, **approved})


@wf.workflow
async def hitl_parallel_suspend(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]

    async def p1() -> Any:
        data = await wait_resume("p1")
        return await traced_value(name="p1", value={"result": v * data["mult"]})

    async def p2() -> Any:
        data = await wait_resume("p2")
        return await traced_value(name="p2", value={"result": v // data["div"]})

    r1, r2 = await asyncio.gather(p1(), p2())
    return {"p1": r1, "p2": r2}


@wf.workflow
async def hitl_nested_suspend(input_data: dict[str, Any]) -> Any:
    await traced_value(name="prep", value={"q": "meaning?"})
    data = await wait_resume(["level-b", "level-a", "ask"])
    answer = await traced_value(name="ask", value=data["answer"])
    return {"final": await traced_value(name="done", value=answer)}


@wf.workflow
async def hitl_foreach_resume_index(input_data: dict[str, Any]) -> Any:
    items = await traced_value(name="items", value=[{"value": n} for n in input_data["items"]])

    async def one(i: int, item: dict[str, Any]) -> Any:
        data = await wait_resume("approve-item", i)
        return await traced_value(name="approve-item", value={"value": item["value"] + data["add"]})

    return list(await asyncio.gather(*(one(i, it) for i, it in enumerate(items))))


async def _race_resume_or_timeout(step: str, timeout: float) -> str:
    hook = asyncio.ensure_future(wait_resume(step))
    timer = asyncio.ensure_future(sleep(timeout))
    done, _ = await asyncio.wait({hook, timer}, return_when=asyncio.FIRST_COMPLETED)
    return "approved" if hook in done else "timeout"


async def _deferred(input_data: dict[str, Any]) -> Any:
    await traced_value(name="offer", value=None)
    decision = await _race_resume_or_timeout("decide", input_data["timeout"])
    path = f"{decision}-path"
    return {path: await traced_value(name=path, value={"decision": decision})}


@wf.workflow
async def wcp16_deferred_choice(input_data: dict[str, Any]) -> Any:
    return await _deferred(input_data)


@wf.workflow
async def wcp16_deferred_choice_timeout(input_data: dict[str, Any]) -> Any:
    return await _deferred(input_data)


@wf.workflow
async def wcp24_persistent_trigger(input_data: dict[str, Any]) -> Any:
    signal = asyncio.ensure_future(wait_resume("await-signal"))  # the hook exists from the start
    await traced_value(name="slow-work", value={"ready": True}, delay=0.3)
    data = await signal
    got = await traced_value(name="await-signal", value={"signal": data["signal"]})
    return await traced_value(name="after-signal", value=got)
