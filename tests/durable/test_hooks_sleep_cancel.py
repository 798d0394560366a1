"""Hooks (payloads, buffering, not found, conflict), durable sleep, and terminate/cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

import durable
from durable import BaseHook, Workflows

wf = Workflows()
DONE: list[str] = []


class Approval(BaseHook, pydantic.BaseModel):
    ok: bool
    who: str


@dataclasses.dataclass
class Note(BaseHook):
    text: str


@wf.workflow
async def approve(token: str) -> str:
    a = await Approval.wait(token=token)
    return f"{a.who}:{a.ok}"


@wf.workflow
async def notes(token: str, n: int) -> list[str]:
    out = []
    async with Note.wait(token=token) as hook:
        async for note in hook:
            out.append(note.text)
            if len(out) == n:
                break
    return out


async def _hook_ready(world: durable.World, token: str) -> None:
    for _ in range(500):
        if world.get_hook_by_token(token) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"hook {token} never created")


async def test_hook_resume_pydantic(world: durable.World) -> None:
    run = await durable.start(approve, "tok-1")
    await _hook_ready(world, "tok-1")
    hook = await durable.get_hook_by_token("tok-1")
    assert hook.run_id == run.run_id and hook.correlation_id == "hook_1"
    await Approval(ok=True, who="alice").resume("tok-1")
    assert await run.return_value(timeout=10) == "alice:True"
    # disposed after the first payload: the token is free again
    with pytest.raises(durable.HookNotFoundError, match="tok-1"):
        await durable.get_hook_by_token("tok-1")
    types = [e.type for e in world.list_events(run.run_id) if e.correlation_id == "hook_1"]
    assert types == ["hook_created", "hook_received", "hook_disposed"]


async def test_hook_payloads_buffered_in_order(world: durable.World) -> None:
    run = await durable.start(notes, "tok-n", 3)
    await _hook_ready(world, "tok-n")
    for text in ("a", "b", "c"):
        await Note(text=text).resume("tok-n")
    assert await run.return_value(timeout=10) == ["a", "b", "c"]


async def test_resume_unknown_token(world: durable.World) -> None:
    with pytest.raises(durable.HookNotFoundError, match="no-such-token"):
        await Approval(ok=True, who="x").resume("no-such-token")


@wf.workflow
async def conflicting(token: str) -> str:
    try:
        await Approval.wait(token=token)
    except durable.HookConflictError as exc:
        return f"conflict: {exc}"
    return "no conflict"


async def test_hook_conflict(world: durable.World) -> None:
    first = await durable.start(approve, "dup")
    await _hook_ready(world, "dup")
    second = await durable.start(conflicting, "dup")
    out = await second.return_value(timeout=10)
    assert out.startswith("conflict:") and first.run_id in out
    await Approval(ok=False, who="bob").resume("dup")
    assert await first.return_value(timeout=10) == "bob:False"


@wf.step
async def mark(tag: str) -> str:
    DONE.append(tag)
    return tag


@wf.workflow
async def sleeper() -> list[float]:
    t0 = durable.now()
    await durable.sleep(0.05)
    t1 = durable.now()
    await durable.sleep("20ms")
    await durable.sleep(timedelta(milliseconds=10))
    await durable.sleep(datetime(2000, 1, 1, tzinfo=UTC))  # in the past: resolves at once
    return [t0.timestamp(), t1.timestamp()]


async def test_sleep_forms(world: durable.World) -> None:
    run = await durable.start(sleeper)
    t0, t1 = await run.return_value(timeout=10)
    assert t1 - t0 >= 0.05  # the logical clock moved to the wait's completion time
    waits = [e for e in world.list_events(run.run_id) if e.type.startswith("wait_")]
    assert [e.type for e in waits] == ["wait_created", "wait_completed"] * 4
    assert [e.correlation_id for e in waits[::2]] == ["wait_1", "wait_2", "wait_3", "wait_4"]
    assert waits[0].data["spec"] == {"seconds": 0.05}
    assert waits[1].created_at >= waits[0].data["resume_at"]


@wf.workflow
async def bad_sleep() -> None:
    await durable.sleep("soon")


async def test_bad_sleep_fails_run(world: durable.World) -> None:
    run = await durable.start(bad_sleep)
    with pytest.raises(durable.WorkflowRunFailedError, match="soon"):
        await run.return_value(timeout=10)


@wf.step
async def slow_mark(tag: str) -> str:
    await asyncio.sleep(0.2)
    DONE.append(tag)
    return tag


@wf.workflow
async def long_chain() -> str:
    for i in range(50):
        await slow_mark(f"s{i}")
    return "done"


async def test_terminate_stops_at_next_suspension(world: durable.World) -> None:
    DONE.clear()
    run = await durable.start(long_chain)
    while "s0" not in DONE:
        await asyncio.sleep(0.01)
    at_terminate = len(DONE)
    await run.terminate(reason="enough")
    assert await run.status() == "cancelled"
    with pytest.raises(durable.WorkflowRunCancelledError, match="enough"):
        await run.return_value(timeout=10)
    from durable._internal.driver import LOCAL_DRIVERS

    while run.run_id in LOCAL_DRIVERS:  # the driver lets the in-flight step finish, then stops
        await asyncio.sleep(0.01)
    # at most the one step in flight at terminate finished after it; nothing later started
    assert DONE == [f"s{i}" for i in range(len(DONE))]
    assert at_terminate <= len(DONE) <= at_terminate + 1
    steps = world.list_steps(run.run_id)
    # steps journaled before the cancel are completed; a step in flight at the cancel finished
    # (DONE) but nothing is appended after the terminal event, so its record stays running
    statuses = [s.status for s in steps]
    assert statuses in (["completed"] * len(DONE),
                        ["completed"] * (len(DONE) - 1) + ["running"]), (statuses, DONE)
    assert world.list_events(run.run_id)[-1].type == "run_cancelled"
    assert world.get_run(run.run_id).lease_owner is None
    await run.cancel()  # a second cancel is not an error


async def test_terminate_disposes_hooks(world: durable.World, wait_status: Any) -> None:
    run = await durable.start(approve, "tok-c")
    await _hook_ready(world, "tok-c")
    await run.terminate()
    with pytest.raises(durable.HookNotFoundError):
        await Approval(ok=True, who="late").resume("tok-c")
    await wait_status(world, run.run_id, "cancelled")
    assert world.list_hooks(run.run_id) == []


def test_resume_after_the_starting_loop_ended(tmp_path) -> None:
    """The loop that started the run ends while it waits on a hook (its driver lets go of
    the run); a later loop resumes the hook and a Worker replays and completes the run."""
    world = durable.SqliteWorld(tmp_path / "runs.db")

    async def first() -> str:
        run = durable.start_run(approve, args=("tok-loop",), world=world)
        await _hook_ready(world, "tok-loop")
        return run.run_id

    run_id = asyncio.run(first())
    assert world.get_run(run_id).status == "running"
    assert world.get_run(run_id).lease_owner is None

    async def second() -> str:
        await Approval(ok=True, who="later").resume("tok-loop", world=world)
        await durable.Worker(world).run(until_idle=True)
        return await durable.get_run(run_id, world=world).return_value(timeout=10)

    assert asyncio.run(second()) == "later:True"
    assert world.stats["replays"] == 1
