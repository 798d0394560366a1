"""The public API: decorators, names, start/get_run/Run, metadata, gather, bad input."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable import Workflows

wf = Workflows()
TRACE: list[str] = []


@wf.step
async def add(a: int, b: int) -> int:
    return a + b


@wf.step
async def slow(tag: str) -> str:
    TRACE.append(f"start {tag}")
    await asyncio.sleep(0.05)
    TRACE.append(f"end {tag}")
    return tag


@wf.workflow
async def add_ten(x: int) -> int:
    a = await add(x, 2)
    b = await add(a, 3)
    return await add(b, 5)


@wf.workflow
async def fan() -> list[str]:
    return list(await asyncio.gather(slow("a"), slow("b"), slow("c")))


@wf.step
async def meta_step() -> dict:
    m = durable.get_step_metadata()
    w = durable.get_workflow_metadata()
    return {"run_id": m.run_id, "step_id": m.step_id, "attempt": m.attempt,
            "wf_run": w.run_id, "wf_name": w.workflow_name}


@wf.workflow
async def meta_wf() -> dict:
    out = await meta_step()
    out["body_run"] = durable.get_workflow_metadata().run_id
    return out


async def test_sequence_returns_value(world: durable.World) -> None:
    run = await durable.start(add_ten, 1)
    assert await run.return_value(timeout=10) == 11
    assert await run.status() == "completed"
    steps = world.list_steps(run.run_id)
    assert [s.correlation_id for s in steps] == ["step_1", "step_2", "step_3"]
    assert [s.output for s in steps] == [3, 6, 11]
    assert all(s.status == "completed" and s.attempt == 1 for s in steps)
    types = [e.type for e in world.list_events(run.run_id)]
    assert types == ["run_created", "run_started"] + [
        "step_created", "step_started", "step_completed"] * 3 + ["run_completed"]


async def test_step_outside_workflow_is_plain_function() -> None:
    assert await add(2, 3) == 5
    with pytest.raises(RuntimeError, match="inside a step"):
        durable.get_step_metadata()


async def test_gather_runs_steps_concurrently(world: durable.World) -> None:
    TRACE.clear()
    run = await durable.start(fan)
    assert await run.return_value(timeout=10) == ["a", "b", "c"]
    # all three started before any ended: they ran concurrently
    assert TRACE[:3] == ["start a", "start b", "start c"]
    ids = sorted(s.correlation_id for s in world.list_steps(run.run_id))
    assert ids == ["step_1", "step_2", "step_3"]


async def test_metadata(world: durable.World) -> None:
    run = await durable.start(meta_wf)
    out = await run.return_value(timeout=10)
    assert out == {"run_id": run.run_id, "step_id": "step_1", "attempt": 1,
                   "wf_run": run.run_id, "wf_name": meta_wf.name, "body_run": run.run_id}


def test_default_and_explicit_names() -> None:
    assert add.name == f"{__name__}:add"
    assert add_ten.name == f"{__name__}:add_ten"
    reg = Workflows(namespace="ns")

    @reg.step(name="custom-step", max_retries=7)
    async def s1() -> int:
        return 1

    async def dyn() -> int:
        return 2

    st = reg.register_step(dyn, name="dyn-step", max_retries=0)
    wfn = reg.register_workflow(dyn, name="dyn-wf")
    assert (s1.name, s1.max_retries) == ("custom-step", 7)
    assert (st.name, st.max_retries) == ("dyn-step", 0)
    assert wfn.name == "dyn-wf"

    @reg.workflow
    async def nsw() -> None:
        return None

    assert nsw.name.startswith("ns/")


def test_non_async_is_rejected_at_decoration() -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="not async"):
        wf.step(plain)
    with pytest.raises(TypeError, match="not async"):
        wf.workflow(plain)
    with pytest.raises(ValueError, match="max_retries"):
        wf.step(max_retries=-1)(add.fn)


async def test_start_run_attributes_and_record(world: durable.World) -> None:
    run = durable.start_run(add_ten, args=(5,), run_id="my-run", attributes={"engine": "codegen"})
    assert run.run_id == "my-run"
    assert await run.return_value(timeout=10) == 15
    rec = world.get_run("my-run")
    assert rec.attributes == {"engine": "codegen"}
    assert rec.input == {"args": [5], "kwargs": {}}
    assert rec.output == 15 and rec.status == "completed"
    assert rec.workflow_name == add_ten.name
    assert rec.entrypoint == f"{__name__}:add_ten"
    assert [r.run_id for r in world.list_runs()] == ["my-run"]
    with pytest.raises(ValueError, match="already exists"):
        durable.start_run(add_ten, args=(5,), run_id="my-run")


async def test_get_run_and_unknown_run(world: durable.World) -> None:
    run = await durable.start(add_ten, 0)
    again = durable.get_run(run.run_id)
    assert await again.return_value(timeout=10) == 10
    with pytest.raises(durable.RunNotFoundError, match="nope"):
        durable.get_run("nope")


async def test_bad_inputs(world: durable.World) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        durable.start_run(add_ten, args=(object(),))
    with pytest.raises(TypeError, match="workflow"):
        durable.start_run(add, args=(1, 2))
    with pytest.raises(TypeError, match="World"):
        durable.set_world("nope")  # type: ignore[arg-type]
    assert world.list_runs() == []


@wf.workflow
async def failing_wf() -> None:
    await add(1, 1)
    raise KeyError("missing")


async def test_failed_run_reports_error(world: durable.World) -> None:
    run = await durable.start(failing_wf)
    with pytest.raises(durable.WorkflowRunFailedError) as ei:
        await run.return_value(timeout=10)
    assert isinstance(ei.value.cause, KeyError)
    assert await run.status() == "failed"
    rec = world.get_run(run.run_id)
    assert rec.error is not None and rec.error["type"] == "KeyError"


async def test_pydantic_and_dataclass_values(world: durable.World) -> None:
    import dataclasses

    import pydantic

    class M(pydantic.BaseModel):
        a: int

    @dataclasses.dataclass
    class D:
        b: str

    @wf.step(name="test_api.model_step")
    async def model_step() -> M:
        return M(a=3)

    @wf.workflow(name="test_api.model_wf")
    async def model_wf(d: dict) -> list:
        m = await model_step()
        return [m, D(b=d["b"])]

    run = durable.start_run(model_wf, args=(D(b="x"),))
    assert await run.return_value(timeout=10) == [{"a": 3}, {"b": "x"}]


async def test_call_step_outside_workflow() -> None:
    calls: list[int] = []

    @wf.step(name="test_api.flaky", max_retries=2, retry_delay=0.001)
    async def flaky(x: int) -> int:
        m = durable.get_step_metadata()
        calls.append(m.attempt)
        if m.attempt < 3:
            raise ValueError("again")
        return x * 2

    assert await durable.call_step(flaky, 4) == 8
    assert calls == [1, 2, 3]
    with pytest.raises(TypeError, match="registered"):
        await durable.call_step(add.fn, 1, 2)


@wf.workflow
async def stuck() -> None:
    await asyncio.Event().wait()


async def test_body_blocked_on_nothing_fails(world: durable.World) -> None:
    run = await durable.start(stuck)
    with pytest.raises(durable.WorkflowRunFailedError, match="not a step, sleep or hook"):
        await run.return_value(timeout=10)


async def test_wrong_arguments_fail_the_run(world: durable.World) -> None:
    run = durable.start_run(add_ten, args=(1, 2, 3))
    with pytest.raises(durable.WorkflowRunFailedError) as ei:
        await run.return_value(timeout=10)
    assert isinstance(ei.value.cause, TypeError)
