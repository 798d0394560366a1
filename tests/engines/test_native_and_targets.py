"""The native engine, targets carrying both definitions, and Unsupported for wrong targets."""

from __future__ import annotations

import engine_workflows as W
import pytest

import durable
from engines import Unsupported, get_engine


@pytest.fixture
def world():
    return durable.MemoryWorld()


async def test_native_runs_hand_written_workflow(world):
    result = await get_engine("native", world=world).run(W.both, input_data={"value": 3})
    assert result.status == "success"
    assert result.result == {"value": 8}
    steps = {k: (r.status, r.payload, r.output) for k, r in result.steps.items()}
    assert steps == {"n_add_one": ("success", {"value": 3}, {"value": 4}),
                     "n_double": ("success", {"value": 4}, {"value": 8})}


async def test_scenario_target_gives_each_engine_its_definition(world):
    for name in ("default", "codegen", "stepmode"):
        eng = get_engine(name, world=world) if name == "codegen" else get_engine(name)
        result = await eng.run(W.both, input_data={"value": 3})
        assert (name, result.result) == (name, {"value": 64})


async def test_wrong_kind_of_target_is_unsupported(world):
    with pytest.raises(Unsupported, match="durable workflow function"):
        await get_engine("codegen", world=world).run(W.native_sequential, input_data={"value": 1})
    with pytest.raises(Unsupported, match="has no `.native` definition"):
        await get_engine("native", world=world).run(W.sequential, input_data={"value": 1})


async def test_native_suspends_on_a_hook_and_resumes(world):
    eng = get_engine("native", world=world)
    first = await eng.run(W.native_approval, input_data={"value": 3})
    assert first.status == "suspended"
    assert first.suspended == [["approve:4"]]
    assert {k: r.status for k, r in first.steps.items()} == {"n_add_one": "success"}
    done = await eng.resume(W.native_approval, first.run_id, step="approve:4",
                            resume_data={"ok": True})
    assert done.status == "success"
    assert done.result == {"value": 4, "approved": True}
