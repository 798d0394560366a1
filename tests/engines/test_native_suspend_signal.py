"""The native engine learns that a run it drives in this process is suspended from the durable
driver (no polling of the world); a run driven elsewhere is still told by polling the world.
Counted by the engine's world polls (`NativeEngine.polls`), never by time."""

from __future__ import annotations

import asyncio
from typing import Any

import durable
from durable import BaseHook, Workflows
from engines import get_engine

wf = Workflows()


class Answer(BaseHook):
    def __init__(self, value: int = 0) -> None:
        self.value = value


@wf.step
async def bump(v: int) -> int:
    return v + 1


@wf.workflow
async def ask_twice(start: int) -> dict[str, Any]:
    v = await bump(start)
    run_id = durable.get_workflow_metadata().run_id
    first = await Answer.wait(token=f"ask:{run_id}:1")
    v = await bump(v + first.value)
    second = await Answer.wait(token=f"ask:{run_id}:2")
    return {"value": v + second.value}


@wf.workflow
async def sleep_then_ask(start: int) -> int:
    await durable.sleep(0.05)
    run_id = durable.get_workflow_metadata().run_id
    got = await Answer.wait(token=f"ask:{run_id}:1")
    return start + got.value


async def test_a_run_driven_here_is_suspended_without_polling(tmp_path: Any) -> None:
    world = durable.SqliteWorld(tmp_path / "runs.db")
    try:
        eng = get_engine("native", world=world)
        result = await eng.run(ask_twice, input_data=1)
        assert result.status == "suspended"
        assert result.suspended == [[f"ask:{result.run_id}:1"]]
        assert result.steps["bump"].output == 2
        result = await eng.resume(ask_twice, result.run_id, step=f"ask:{result.run_id}:1",
                                  resume_data={"value": 10})
        assert result.status == "suspended"
        assert result.suspended == [[f"ask:{result.run_id}:2"]]
        assert result.steps["bump"].output == 13
        result = await eng.resume(ask_twice, result.run_id, resume_data={"value": 100})
        assert (result.status, result.result) == ("success", {"value": 113})
        assert eng.polls == 0  # the driver said so each time: the world was never polled
    finally:
        world.close()


async def test_a_sleep_before_the_hook_is_waited_out_then_suspended() -> None:
    eng = get_engine("native", world=durable.MemoryWorld())
    result = await eng.run(sleep_then_ask, input_data=1)
    assert result.status == "suspended"
    assert eng.polls == 0
    result = await eng.resume(sleep_then_ask, result.run_id, resume_data={"value": 4})
    assert (result.status, result.result) == ("success", 5)


async def test_a_run_driven_elsewhere_is_told_by_polling_the_world(tmp_path: Any) -> None:
    path = tmp_path / "runs.db"
    here, there = durable.SqliteWorld(path), durable.SqliteWorld(path)
    try:
        # the run is driven through another world object (as by another process)
        run = durable.start_run(ask_twice, (1,), world=there)
        assert await asyncio.wait_for(run.wait_suspended(), 5) is True
        eng = get_engine("native", world=here)
        result = await eng.resume(ask_twice, run.run_id, step=f"ask:{run.run_id}:1",
                                  resume_data={"value": 10})
        assert result.status == "suspended"
        assert result.suspended == [[f"ask:{run.run_id}:2"]]
        assert eng.polls >= 3  # three quiet polls in a row
    finally:
        here.close()
        there.close()
