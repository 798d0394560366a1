"""What a run tells this process without the world being polled or its output re-read:
`Run.suspended_here` / `Run.wait_suspended` (the driver says when the body waits only on hooks),
`Run.wait(output=False)` / `peek_run` (the record without its output), the run's output encoded
once (the run_completed event and the run record carry the same text), and `get_step_info`
(the step metadata's plain fields without building the record)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable import BaseHook, Workflows
from durable._internal import driver as driver_mod
from durable._internal import serialization
from durable._internal.world import peek_run

wf = Workflows()


class Ping(BaseHook):
    def __init__(self, n: int = 0) -> None:
        self.n = n


@wf.step
async def add(x: int, y: int) -> int:
    return x + y


@wf.workflow
async def two_hooks(tag: str) -> list[int]:
    a = await add(1, 1)
    first = await Ping.wait(token=f"{tag}:1")
    second = await Ping.wait(token=f"{tag}:2")
    return [a, first.n, second.n]


@wf.workflow
async def hook_and_sleep(tag: str) -> int:
    hook = Ping.wait(token=f"{tag}:h")  # created (not awaited): the body sleeps meanwhile
    await durable.sleep(0.3)
    hook.dispose()
    return 1


@wf.workflow
async def big_output(n: int) -> dict[str, Any]:
    return {f"k{i}": {"i": i, "s": "x" * 3} for i in range(n)}


INFOS: list[tuple[Any, ...]] = []


@wf.step
async def tell_info() -> int:
    info = durable.get_step_info()
    meta = durable.get_step_metadata()
    INFOS.append((info.run_id, info.step_id, info.step_name, info.attempt, info.workflow_name,
                  meta.run_id, meta.step_id, meta.step_name, meta.attempt, meta.workflow_name))
    return 0


@wf.workflow
async def info_flow() -> int:
    return await tell_info()


async def test_the_driver_tells_when_the_body_waits_only_on_hooks(world: durable.World) -> None:
    polls = {"inbox": 0}
    read_inbox = world.read_inbox

    def counted(run_id: str) -> Any:
        polls["inbox"] += 1
        return read_inbox(run_id)

    world.read_inbox = counted  # type: ignore[method-assign]
    run = durable.start_run(two_hooks, ("t1",), world=world)
    assert run.suspended_here() is False  # known at once: driven here, not idle yet
    assert await asyncio.wait_for(run.wait_suspended(), 5) is True
    assert run.suspended_here() is True
    assert (await run.status()) == "running"
    assert [h.token for h in world.list_hooks(run.run_id)] == ["t1:1"]
    # the driver checked the inbox once on its way to idle, not in a polling loop
    assert polls["inbox"] == 1

    durable.resume_hook("t1:1", {"n": 5}, world=world)
    assert run.suspended_here() is False  # the payload's wake-up clears it synchronously
    assert await asyncio.wait_for(run.wait_suspended(), 5) is True
    assert [h.token for h in world.list_hooks(run.run_id)] == ["t1:2"]

    durable.resume_hook("t1:2", {"n": 7}, world=world)
    assert await run.return_value(timeout=5) == [2, 5, 7]
    assert run.suspended_here() is None  # no driver any more
    assert await run.wait_suspended() is False


async def test_a_hook_next_to_a_sleep_is_not_suspended(world: durable.World) -> None:
    run = durable.start_run(hook_and_sleep, ("t2",), world=world)
    waiter = asyncio.ensure_future(run.wait_suspended())
    assert await run.return_value(timeout=5) == 1
    # the driver stopped without ever waiting on hooks alone: the waiter says so
    assert await asyncio.wait_for(waiter, 5) is False


async def test_a_payload_queued_by_another_world_object_is_taken_not_reported_idle(
        tmp_path: Any) -> None:
    path = tmp_path / "runs.db"
    w1, w2 = durable.SqliteWorld(path), durable.SqliteWorld(path)
    try:
        run = durable.start_run(two_hooks, ("t3",), world=w1)
        assert await asyncio.wait_for(run.wait_suspended(), 5) is True
        # sent through another world object: the local driver is not woken
        durable.resume_hook("t3:1", {"n": 3}, world=w2)
        assert run.suspended_here() is True  # (it does not know yet)
        # the driver finds the payload on its own (its poll of the world) and goes on
        for _ in range(500):
            if [h.token for h in w1.list_hooks(run.run_id)] == ["t3:2"] and run.suspended_here():
                break
            await asyncio.sleep(0.01)
        assert [h.token for h in w1.list_hooks(run.run_id)] == ["t3:2"]
        assert run.suspended_here() is True
        durable.resume_hook("t3:2", {"n": 4}, world=w1)
        assert await run.return_value(timeout=5) == [2, 3, 4]
    finally:
        w1.close()
        w2.close()


def test_a_payload_in_the_inbox_is_taken_before_idle_is_declared(mem: durable.MemoryWorld) -> None:
    async def go() -> None:
        run = durable.start_run(two_hooks, ("t4",), world=mem)
        drv = driver_mod.LOCAL_DRIVERS[run.run_id]
        assert await asyncio.wait_for(run.wait_suspended(), 5) is True
        # a payload lands in the inbox without waking the driver (as from another process)
        mem.send_hook_payload("t4:1", {"n": 9}, 0.0)
        drv.idle = False
        drv._post(("noop",))  # the driver loops once: it must take the payload, not idle
        assert await asyncio.wait_for(run.wait_suspended(), 5) is True
        assert [h.token for h in mem.list_hooks(run.run_id)] == ["t4:2"]
        durable.resume_hook("t4:2", {"n": 1}, world=mem)
        assert await run.return_value(timeout=5) == [2, 9, 1]

    asyncio.run(go())


async def test_the_output_is_encoded_once_and_read_only_when_asked(world: durable.World,
                                                                   monkeypatch: Any) -> None:
    encoded: list[Any] = []
    real_encode = serialization.encode

    def counting_encode(value: Any) -> str:
        if isinstance(value, dict) and "k0" in value:
            encoded.append(value)
        return real_encode(value)

    monkeypatch.setattr(driver_mod, "encode", counting_encode)
    stored: list[Any] = []
    from durable._internal import sqlite_world

    real_dumps = sqlite_world.dumps

    def counting_dumps(value: Any) -> str:
        if isinstance(value, dict) and ("k0" in value or "output" in value):
            stored.append(value)
        return real_dumps(value)

    monkeypatch.setattr(sqlite_world, "dumps", counting_dumps)
    expected = {f"k{i}": {"i": i, "s": "xxx"} for i in range(50)}
    run = durable.start_run(big_output, (50,), world=world)
    rec = await run.wait(timeout=5, output=False)
    assert rec.status == "completed" and rec.output is None
    assert len(encoded) == 1  # one encode of the body's result ...
    assert stored == []  # ... and no second encoding by the world
    assert peek_run(world, run.run_id).output is None
    assert world.get_run(run.run_id).output == expected
    assert world.list_events(run.run_id)[-1].data == {"output": expected}
    assert await run.return_value() == expected
    # each read is a fresh copy
    a, b = world.get_run(run.run_id).output, world.get_run(run.run_id).output
    assert a == b and a is not b and a["k0"] is not b["k0"]


async def test_get_step_info_has_the_metadata_fields(world: durable.World) -> None:
    INFOS.clear()
    run = durable.start_run(info_flow, world=world)
    assert await run.return_value(timeout=5) == 0
    (got,) = INFOS
    assert got[:5] == got[5:]
    assert got[0] == run.run_id and got[1] == "step_1" and got[3] == 1
    with pytest.raises(RuntimeError, match="get_step_info"):
        durable.get_step_info()
