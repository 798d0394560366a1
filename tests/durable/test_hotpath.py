"""The per-step hot path (steps run inline in the driver, events written as pre-encoded JSON,
lazy lease renewal) keeps the runtime's semantics: each completed step is committed before the
next step's body runs, steps get their own context and metadata, values are passed by value,
the lease is renewed while a long step runs, hooks are disposed before the terminal event, and
a long chain does not starve the host event loop."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import durable
from durable import BaseHook, Workflows

wf = Workflows()

SEEN: list[Any] = []
MARK: contextvars.ContextVar[str] = contextvars.ContextVar("hotpath_mark", default="unset")


@wf.step
async def checked(k: int) -> int:
    """Record whether the previous step's completion is already in the world's log."""
    meta = durable.get_step_metadata()
    if k > 1:
        log = durable.get_world().list_events(meta.run_id)
        done = {e.correlation_id for e in log if e.type == "step_completed"}
        SEEN.append((k, f"step_{k - 1}" in done))
    return k


@wf.workflow
async def checked_chain(n: int) -> int:
    for k in range(1, n + 1):
        await checked(k)
    return n


async def test_each_step_is_committed_before_the_next_step_runs(world: durable.World) -> None:
    SEEN.clear()
    run = await durable.start(checked_chain, 30)
    assert await run.return_value(timeout=30) == 30
    assert SEEN == [(k, True) for k in range(2, 31)]


@wf.step
async def ctx_step(tag: str, wait: bool) -> dict[str, Any]:
    before = MARK.get()
    MARK.set(tag)
    if wait:
        await asyncio.sleep(0.01)
    meta = durable.get_step_metadata()
    return {"before": before, "step_id": meta.step_id, "attempt": meta.attempt,
            "name": meta.step_name.rsplit(":", 1)[-1], "after": MARK.get()}


@wf.workflow
async def ctx_chain() -> list[Any]:
    return [await ctx_step("a", False), await ctx_step("b", True), await ctx_step("c", False)]


async def test_steps_get_their_own_context_and_metadata(world: durable.World) -> None:
    MARK.set("host")
    run = await durable.start(ctx_chain)
    out = await run.return_value(timeout=10)
    assert out == [
        {"before": "host", "step_id": "step_1", "attempt": 1, "name": "ctx_step", "after": "a"},
        {"before": "host", "step_id": "step_2", "attempt": 1, "name": "ctx_step", "after": "b"},
        {"before": "host", "step_id": "step_3", "attempt": 1, "name": "ctx_step", "after": "c"},
    ]
    assert MARK.get() == "host"  # nothing a step set leaked into the caller


@wf.step
async def make_list() -> dict[str, list[int]]:
    return {"items": [1, 2]}


@wf.step
async def count_items(d: dict[str, list[int]]) -> int:
    d["items"].append(99)  # a step mutating its argument changes nothing recorded
    return len(d["items"])


@wf.workflow
async def mutating_body() -> int:
    d = await make_list()
    d["items"].append(3)  # the body mutates the result it got
    return await count_items(d)


async def test_values_are_passed_by_value(world: durable.World) -> None:
    run = await durable.start(mutating_body)
    assert await run.return_value(timeout=10) == 4
    log = world.list_events(run.run_id)
    completed = [e.data for e in log if e.type == "step_completed"]
    created = [e.data["input"] for e in log if e.type == "step_created"]
    assert completed == [{"result": {"items": [1, 2]}}, {"result": 4}]
    assert created == [{"args": [], "kwargs": {}}, {"args": [{"items": [1, 2, 3]}], "kwargs": {}}]
    steps = world.list_steps(run.run_id)
    assert [(s.correlation_id, s.status, s.output) for s in steps] == [
        ("step_1", "completed", {"items": [1, 2]}), ("step_2", "completed", 4)]


@wf.step
async def slow_step() -> str:
    await asyncio.sleep(1.5)
    return "done"


@wf.workflow
async def one_slow_step() -> str:
    return await slow_step()


async def test_lease_is_renewed_while_a_long_step_runs(world: durable.World) -> None:
    # created where no event loop runs: left pending for the worker (short lease)
    run = await asyncio.to_thread(durable.start_run, one_slow_step, world=world)
    worker = durable.Worker(world, lease_seconds=0.6)
    task = asyncio.create_task(worker.run(until_idle=True))
    while world.get_run(run.run_id).status != "running":
        await asyncio.sleep(0.01)
    steals = 0
    for _ in range(12):  # 1.2 s = 2 leases: without renewal another owner could take the run
        await asyncio.sleep(0.1)
        got = world.claim(run.run_id, "thief:1:x", 0.6, time.time())
        steals += got is not None
    await task
    assert steals == 0
    assert await run.return_value(timeout=10) == "done"
    assert world.stats["replays"] == 0


class Never(BaseHook):
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok


@wf.workflow
async def leaves_hook() -> str:
    Never.wait(token="hotpath-never")  # created, never awaited: live when the body returns
    return "bye"


async def test_live_hooks_are_disposed_before_the_terminal_event(world: durable.World) -> None:
    run = await durable.start(leaves_hook)
    assert await run.return_value(timeout=10) == "bye"
    types = [e.type for e in world.list_events(run.run_id)]
    assert types[-1] == "run_completed", types
    assert types.index("hook_disposed") < types.index("run_completed"), types
    assert world.get_hook_by_token("hotpath-never") is None


STEPS_DONE = [0]


@wf.step
async def tiny(x: int) -> int:
    STEPS_DONE[0] += 1
    return x + 1


@wf.workflow
async def tiny_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = await tiny(x)
    return x


async def test_a_long_chain_lets_the_host_loop_run(world: durable.World) -> None:
    STEPS_DONE[0] = 0
    seen: list[int] = []
    done = False

    async def ticker() -> None:
        while not done:
            seen.append(STEPS_DONE[0])
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    run = await durable.start(tiny_chain, 2000)
    assert await run.return_value(timeout=60) == 2000
    done = True
    await t
    # the chain (2000 steps, each committed) yields to the host loop every few milliseconds:
    # another task ran while the chain was in the middle
    assert any(0 < k < 2000 for k in seen), seen[:5]


ATTEMPTS: list[int] = []
HANG = {"on": True}


@wf.step(max_retries=0)
async def fragile() -> str:
    ATTEMPTS.append(durable.get_step_metadata().attempt)
    if HANG["on"]:
        await asyncio.sleep(30)  # the process "dies" during this attempt
    raise ValueError("boom failed")


@wf.workflow
async def fragile_flow() -> str:
    return await fragile()


async def test_an_attempt_cut_short_by_a_crash_does_not_use_up_retries(
        world: durable.World, crash: Any) -> None:
    """max_retries=0 means one failing attempt; an attempt interrupted by a crash is not a
    failure: the recovered run executes the step again and ends with the step's own error."""
    ATTEMPTS.clear()
    HANG["on"] = True
    run = await durable.start(fragile_flow)
    while not ATTEMPTS:
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    HANG["on"] = False
    await durable.Worker(world).run(until_idle=True)
    try:
        await run.return_value(timeout=10)
    except durable.WorkflowRunFailedError as exc:
        assert type(exc.cause) is ValueError and "boom failed" in str(exc.cause), exc.cause
    else:
        raise AssertionError("the run should have failed with the step's ValueError")
    assert ATTEMPTS == [1, 2]
    (step,) = world.list_steps(run.run_id)
    assert (step.status, step.attempt) == ("failed", 2)
