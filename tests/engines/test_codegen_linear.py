"""A codegen run's cost is linear in its steps: counted with the world's stats, not timed."""

from __future__ import annotations

import durable
from engines import get_engine
from flow import create_step, create_workflow


def chain(n: int):
    wf = create_workflow(id=f"chain{n}")
    for i in range(n):
        wf.then(create_step(f"s{i}", lambda c: {"v": c.input_data["v"] + 1}))
    return wf.commit()


async def _stats(n: int):
    world = durable.MemoryWorld()
    result = await get_engine("codegen", world=world).run(chain(n), input_data={"v": 0})
    assert result.result == {"v": n}
    return world.stats


async def test_codegen_chain_costs_one_commit_and_three_events_per_step():
    s10, s20, s40 = await _stats(10), await _stats(20), await _stats(40)
    for s in (s10, s20, s40):
        assert s["body_executions"] == 1  # the body ran once, never replayed
        assert s["replays"] == 0
    # step_created + step_started + step_completed, in one commit, per step
    assert s20["writes"] - s10["writes"] == 10
    assert s40["writes"] - s20["writes"] == 20
    assert s20["events_appended"] - s10["events_appended"] == 30
    assert s40["events_appended"] - s20["events_appended"] == 60
