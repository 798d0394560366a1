"""Recovery by a replaying Worker (in one process): completed steps are not re-executed, the
in-flight step is, sleeps and retries resume; divergence raises NondeterminismError."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable import BaseHook, RetryableError, Workflows

wf = Workflows()
EXEC: list[str] = []
MODE: dict[str, Any] = {"order": "ab", "arg": 1, "extra": False, "early": False}


class Go(BaseHook):
    def __init__(self, n: int = 0) -> None:
        self.n = n


@wf.step
async def rec(tag: str, arg: int = 1) -> str:
    EXEC.append(tag)
    return tag


@wf.step
async def blocker(tag: str) -> str:
    EXEC.append(f"start {tag}")
    await asyncio.sleep(30)
    return tag


@wf.workflow
async def crashy() -> list[str]:
    out = [await rec("s1"), await rec("s2")]
    out.append(await blocker("s3"))
    return out


async def test_inflight_step_reexecuted_completed_not(mem: durable.MemoryWorld,
                                                      monkeypatch: pytest.MonkeyPatch, crash: Any) -> None:
    EXEC.clear()
    run = await durable.start(crashy)
    while "start s3" not in EXEC:
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    assert await run.status() == "running"

    async def quick(tag: str) -> str:
        EXEC.append(f"start {tag}")
        return tag

    monkeypatch.setattr(blocker, "fn", quick)
    await durable.Worker(mem).run(until_idle=True)
    assert await run.return_value(timeout=10) == ["s1", "s2", "s3"]
    assert EXEC == ["s1", "s2", "start s3", "start s3"]
    s3 = [s for s in mem.list_steps(run.run_id) if s.correlation_id == "step_3"][0]
    assert s3.attempt == 2 and s3.status == "completed"
    assert mem.stats["replays"] == 1


@wf.workflow
async def nd() -> list[str]:
    out: list[str] = []
    if MODE["early"]:
        return out
    for tag in MODE["order"]:
        out.append(await rec(tag, MODE["arg"]))
    if MODE["extra"]:
        out.append(await rec("x"))
    await Go.wait(token="nd-tok")
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order": "ba"}, r"position 1: the event log has step '.*:rec' with input "
                          r"\{\"args\":\[\"a\",1\].* but the code called step '.*:rec' with input "
                          r"\{\"args\":\[\"b\",1\]"),
        ({"arg": 2}, r"position 1: .*\[\"a\",1\].*but the code called .*\[\"a\",2\]"),
        ({"extra": True}, r"position 3: the event log has hook with token 'nd-tok', but the "
                          r"code called step"),
        ({"early": True}, r"position 1: the event log has step .* but the code called nothing"),
    ],
)
async def test_nondeterminism_detected(world: durable.World, change: dict, message: str, crash: Any) -> None:
    MODE.update(order="ab", arg=1, extra=False, early=False)
    run = await durable.start(nd)
    while world.get_hook_by_token("nd-tok") is None:
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    MODE.update(change)
    try:
        await durable.Worker(world).run(until_idle=True)
    finally:
        MODE.update(order="ab", arg=1, extra=False, early=False)
    with pytest.raises(durable.WorkflowRunFailedError) as ei:
        await run.return_value(timeout=10)
    assert isinstance(ei.value.cause, durable.NondeterminismError)
    import re

    assert re.search(message, str(ei.value.cause)), str(ei.value.cause)
    error = world.get_run(run.run_id).error
    assert error is not None and error["code"] == "CORRUPTED_EVENT_LOG"


async def test_unchanged_code_replays_fine(world: durable.World, crash: Any) -> None:
    MODE.update(order="ab", arg=1, extra=False, early=False)
    run = await durable.start(nd)
    while world.get_hook_by_token("nd-tok") is None:
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    await Go(1).resume("nd-tok")
    await durable.Worker(world).run(until_idle=True)
    assert await run.return_value(timeout=10) == ["a", "b"]


@wf.workflow
async def napper() -> str:
    await rec("before")
    await durable.sleep(0.4)
    return await rec("after")


async def test_sleep_resumes_for_remainder(world: durable.World, crash: Any) -> None:
    EXEC.clear()
    run = await durable.start(napper)
    while not any(e.type == "wait_created" for e in world.list_events(run.run_id)):
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    created = [e for e in world.list_events(run.run_id) if e.type == "wait_created"][0]
    await durable.Worker(world).run(until_idle=True)
    assert await run.return_value(timeout=10) == "after"
    evs = world.list_events(run.run_id)
    assert [e.type for e in evs].count("wait_created") == 1
    done = [e for e in evs if e.type == "wait_completed"][0]
    # woke at the originally recorded time (the remainder), not a full sleep after recovery
    assert done.created_at >= created.data["resume_at"]
    assert created.data["resume_at"] == pytest.approx(created.created_at + 0.4)
    assert EXEC == ["before", "after"]


ATT: list[int] = []


@wf.step(max_retries=3)
async def later() -> int:
    a = durable.get_step_metadata().attempt
    ATT.append(a)
    if a == 1:
        raise RetryableError("not yet", retry_after=0.3)
    return a


@wf.workflow
async def retrier() -> int:
    return await later()


async def test_retry_wait_is_durable(world: durable.World, crash: Any) -> None:
    ATT.clear()
    run = await durable.start(retrier)
    while not any(e.type == "step_retrying" for e in world.list_events(run.run_id)):
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    await durable.Worker(world).run(until_idle=True)
    assert await run.return_value(timeout=10) == 2
    assert ATT == [1, 2]
    started = [e for e in world.list_events(run.run_id) if e.type == "step_started"]
    retrying = [e for e in world.list_events(run.run_id) if e.type == "step_retrying"][0]
    assert started[1].created_at >= retrying.data["retry_after"]


async def test_worker_runs_pending_runs_and_loader(world: durable.World) -> None:
    # a run created where no event loop runs stays pending; a worker picks it up
    async def dyn_body(x: int) -> int:
        return await rec("dyn", x) and x * 2

    name = "dyn.loader.wf"
    run = await asyncio.to_thread(durable.start_run, name_wf(dyn_body, name), (21,))
    assert await run.status() == "pending"
    durable._internal.registry.WORKFLOWS.pop(name)
    seen = []

    def loader(record: durable.RunRecord) -> object:
        seen.append(record.workflow_name)
        return dyn_body

    await durable.Worker(world, loader=loader).run(until_idle=True)
    assert seen == [name]
    assert await run.return_value(timeout=10) == 42


def name_wf(fn: object, name: str) -> durable.WorkflowFunction:
    return Workflows().register_workflow(fn, name=name)  # type: ignore[arg-type]


def test_dead_owner_detection() -> None:
    from durable._internal import leases

    owner = leases.new_owner()
    assert not leases.owner_is_dead(owner)
    leases.retire_owner(owner)
    assert leases.owner_is_dead(owner)
    assert leases.owner_is_dead(f"{leases.HOST}:999999999:x")
    assert not leases.owner_is_dead("otherhost:1:x")


@wf.step
async def sleepy(tag: str, secs: float) -> str:
    await asyncio.sleep(secs)
    EXEC.append(tag)
    return tag


@wf.workflow
async def racer() -> list[str]:
    fast = sleepy("fast", 0.0)
    slow = sleepy("slow", 0.2)
    done, _ = await asyncio.wait([fast, slow], return_when=asyncio.FIRST_COMPLETED)
    first = [f.result() for f in done]
    after = await rec("after")
    second = await slow
    await Go.wait(token="race-tok")
    return [*first, after, second, durable.now().isoformat()]


async def test_race_replays_in_log_order(world: durable.World, crash: Any) -> None:
    EXEC.clear()
    run = await durable.start(racer)
    while world.get_hook_by_token("race-tok") is None:
        await asyncio.sleep(0.005)
    await crash(run.run_id)
    await Go(1).resume("race-tok")
    await durable.Worker(world).run(until_idle=True)
    out = await run.return_value(timeout=10)
    assert out[:3] == ["fast", "after", "slow"]
    assert EXEC == ["fast", "after", "slow"]  # nothing re-executed by the replay
    types = [(e.type, e.correlation_id) for e in world.list_events(run.run_id)
             if e.type in ("step_created", "step_completed")]
    assert types == [("step_created", "step_1"), ("step_created", "step_2"),
                     ("step_completed", "step_1"), ("step_created", "step_3"),
                     ("step_completed", "step_3"), ("step_completed", "step_2")]
