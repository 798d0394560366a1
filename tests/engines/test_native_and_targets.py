"""The native engine, targets carrying both definitions, and Unsupported for wrong targets."""

from __future__ import annotations

import engine_workflows as W
import pytest

import durable
from engines import BadTarget, Unsupported, get_engine


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


async def test_wrong_kind_of_target_is_a_bad_target(world):
    with pytest.raises(BadTarget, match="is a durable workflow function; engine 'codegen' runs "
                                        "Mastra-syntax workflows \\(use engine 'native'\\)"):
        await get_engine("codegen", world=world).run(W.native_sequential, input_data={"value": 1})
    with pytest.raises(BadTarget, match="^workflow 'sequential' is a Mastra-syntax workflow; "
                                        "engine 'native' runs hand-written"):
        await get_engine("native", world=world).run(W.sequential, input_data={"value": 1})


async def test_a_target_without_the_engines_definition_is_unsupported(world):
    class OnlyMastra:
        id = "only-mastra"
        workflow = W.sequential
        native = None
        native_reason = "no hand-written version"

    class OnlyNative:
        id = "only-native"
        workflow = None
        workflow_reason = "Mastra syntax cannot express it"
        native = W.native_sequential

    with pytest.raises(Unsupported, match="has no `.native` definition: no hand-written version"):
        await get_engine("native", world=world).run(OnlyMastra(), input_data={"value": 1})
    for name in ("default", "codegen", "stepmode"):
        eng = get_engine(name, world=world) if name == "codegen" else get_engine(name)
        with pytest.raises(Unsupported, match="has no Mastra-syntax definition: Mastra syntax "
                                              "cannot express it"):
            await eng.run(OnlyNative(), input_data={"value": 1})


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


# a step called several times keeps its last call (issue 6: the engine reads only those records)
repeat_wf = durable.Workflows(namespace="test_native_repeat")


@repeat_wf.step
async def r_inc(data: dict) -> dict:
    return {"value": data["value"] + 1}


@repeat_wf.step(max_retries=0)
async def r_fail(data: dict) -> dict:
    raise ValueError(f"no {data['value']}")


@repeat_wf.step
async def r_ten(data: dict) -> dict:
    return {"value": data["value"] * 10}


@repeat_wf.workflow
async def r_flow(data: dict) -> dict:
    for _ in range(3):
        data = await r_inc(data)
    try:
        await r_fail(data)
    except ValueError:
        pass
    data = await r_ten(data)
    return await r_inc(data)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_native_step_records_are_each_steps_last_call(kind, tmp_path):
    w = durable.MemoryWorld() if kind == "memory" else durable.SqliteWorld(tmp_path / "n.db")
    result = await get_engine("native", world=w).run(r_flow, input_data={"value": 1})
    assert result.status == "success" and result.result == {"value": 41}
    got = {k: (r.status, r.payload, r.output, type(r.error).__name__ if r.error else None)
           for k, r in result.steps.items()}
    # keys in order of each step's first call; values from its last call
    assert list(got) == ["r_inc", "r_fail", "r_ten"]
    assert got == {"r_inc": ("success", {"value": 40}, {"value": 41}, None),
                   "r_fail": ("failed", {"value": 4}, None, "ValueError"),
                   "r_ten": ("success", {"value": 4}, {"value": 40}, None)}
    last = [s for s in w.list_steps(result.run_id) if s.correlation_id == "step_6"][0]
    assert (result.steps["r_inc"].started_at, result.steps["r_inc"].ended_at) == (
        last.started_at, last.completed_at)
    assert result.to_dict()["steps"]["r_fail"]["error"]["message"] == "no 4"
    w.close()
