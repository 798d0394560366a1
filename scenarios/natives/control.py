"""Native (`durable`) definitions of the control-flow scenarios: plain Python control flow
over `@wf.step` calls. Each workflow returns exactly the Mastra definition's result."""

from __future__ import annotations

import asyncio
from typing import Any

from scenarios.natives.common import traced_value, wf
from scenarios.trace import span


@wf.step
async def add(*, name: str, value: int, by: int, delay: float = 0.0) -> int:
    with span(name):
        if delay:
            await asyncio.sleep(delay)
        return value + by


@wf.step
async def multiply(*, name: str, value: int, by: int, delay: float = 0.0) -> int:
    with span(name):
        if delay:
            await asyncio.sleep(delay)
        return value * by


@wf.workflow
async def wcp1_sequence(input_data: dict[str, Any]) -> Any:
    v = await add(name="add-one", value=input_data["value"], by=1)
    v = await multiply(name="times-ten", value=v, by=10)
    v = await add(name="add-three", value=v, by=3)
    return {"value": v}


@wf.workflow
async def wcp2_3_parallel_sync(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    left, right = await asyncio.gather(
        add(name="left", value=v, by=1, delay=0.1), multiply(name="right", value=v, by=2, delay=0.1)
    )
    total = await add(name="join", value=left, by=right)
    return {"sum": total}


@wf.workflow
async def wcp4_5_exclusive_choice(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    size = await traced_value(name="classify", value="big" if v > 10 else "small")
    if size == "big":
        label = await traced_value(name="big", value=f"big:{v}")
    else:
        label = await traced_value(name="small", value=f"small:{v}")
    await traced_value(name="merge", value=None)
    return {"merged": [label], "branches": [size]}


@wf.workflow
async def wcp6_7_multi_choice(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    calls = []
    if v > 0:
        calls.append(traced_value(name="positive", value="positive", delay=0.1))
    if v % 2 == 0:
        calls.append(traced_value(name="even", value="even", delay=0.1))
    if v > 100:
        calls.append(traced_value(name="huge", value="huge", delay=0.1))
    tags = await asyncio.gather(*calls)
    await traced_value(name="sync-merge", value=None)
    return {"tags": sorted(tags)}


@wf.workflow
async def branch_none_true(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    received: dict[str, Any] = {}
    if v > 100:
        received["huge"] = await traced_value(name="huge", value={"tag": "huge"})
    if v < 0:
        received["negative"] = await traced_value(name="negative", value={"tag": "negative"})
    return {"received": await traced_value(name="after", value=received)}


THRESHOLD = 10


@wf.workflow
async def branch_closure(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    if v > THRESHOLD:
        return {"above": {"excess": await add(name="above", value=v, by=-THRESHOLD)}}
    return {"below": {"missing": await add(name="below", value=THRESHOLD, by=-v)}}


@wf.workflow
async def wcp21_dountil(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    while True:
        v = await add(name="increment", value=v, by=1)
        if v >= 5:
            return {"value": v}


@wf.workflow
async def wcp21_dowhile(input_data: dict[str, Any]) -> Any:
    v = await add(name="count-up", value=input_data["value"], by=1)
    while v < 3:
        v = await add(name="count-up", value=v, by=1)
    return {"value": v}


@wf.workflow
async def loop_iteration_count(input_data: dict[str, Any]) -> Any:
    ticks = input_data["ticks"]
    iteration = 0
    while True:
        ticks = await add(name="tick", value=ticks, by=1)
        iteration += 1
        if iteration >= 4:
            return {"ticks": ticks}


@wf.workflow
async def wcp13_parallel_copies(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    outs = await asyncio.gather(*(add(name=f"copy-{i}", value=v, by=i, delay=0.1) for i in range(1, 5)))
    total = await traced_value(name="sum-copies", value=sum(outs))
    return {"total": total}


@wf.step
async def square(*, value: int, delay: float) -> dict[str, int]:
    with span("square"):
        await asyncio.sleep(delay)
        return {"value": value * value}


async def _foreach(items: list[int], concurrency: int, delay_of: Any) -> list[Any]:
    """Run `square` over items, at most `concurrency` in flight, results in input order."""
    out: list[Any] = [None] * len(items)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, n: int) -> None:
        async with sem:
            out[i] = await square(value=n, delay=delay_of(n))

    await asyncio.gather(*(one(i, n) for i, n in enumerate(items)))
    return out


@wf.workflow
async def wcp14_foreach_c1(input_data: dict[str, Any]) -> Any:
    items = await traced_value(name="items", value=list(input_data["items"]))
    return await _foreach(items, 1, lambda v: 0.05)


@wf.workflow
async def wcp14_foreach_c3(input_data: dict[str, Any]) -> Any:
    items = await traced_value(name="items", value=list(input_data["items"]))
    return await _foreach(items, 3, lambda v: 0.05 + 0.02 * (7 - v))


@wf.workflow
async def foreach_empty(input_data: dict[str, Any]) -> Any:
    items = await traced_value(name="items", value=list(input_data["items"]))
    squares = await _foreach(items, 2, lambda v: 0.0)
    return {"count": await traced_value(name="count", value=len(squares))}


@wf.step
async def enter(*, depth: int, path: list[int]) -> list[int]:
    with span(f"enter-{depth}"):
        return [*path, depth]


async def _descend(depth: int, path: list[int]) -> list[int]:
    path = await enter(depth=depth, path=path)
    if depth > 1:
        return await _descend(depth - 1, path)
    return path


@wf.workflow
async def wcp22_recursion(input_data: dict[str, Any]) -> Any:
    return {"path": await _descend(3, list(input_data["path"]))}


@wf.workflow
async def nested_in_branch(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    if v > 5:
        v = await multiply(name="double", value=v, by=2)
        v = await add(name="add-one", value=v, by=1)
    else:
        v = await traced_value(name="small-path", value=0)
    return {"final": [await traced_value(name="final", value=v)]}


@wf.step
async def branch_step(*, name: str, delay: float) -> str:
    with span(name):
        await asyncio.sleep(delay)
        return name


@wf.workflow
async def wcp9_discriminator(input_data: dict[str, Any]) -> Any:
    tasks = [asyncio.ensure_future(branch_step(name=n, delay=d))
             for n, d in (("fast", 0.05), ("medium", 0.3), ("slow", 0.6))]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    winner = next(iter(done)).result()
    return {"first": await traced_value(name="after-first", value=winner)}


@wf.workflow
async def wcp30_partial_join(input_data: dict[str, Any]) -> Any:
    tasks = [asyncio.ensure_future(branch_step(name=n, delay=d))
             for n, d in (("part-a", 0.05), ("part-b", 0.1), ("part-c", 0.6))]
    first: list[str] = []
    pending = set(tasks)
    while len(first) < 2:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        first.extend(sorted(t.result() for t in done))
    joined = await traced_value(name="join-two", value=sorted(first[:2]))
    return {"joined": joined}
