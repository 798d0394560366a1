"""More patterns on default, codegen and stepmode, with hand-written expectations: suspend inside
a nested workflow and inside a foreach, a failing parallel child, branches that select nothing or
whose condition raises, foreach over a nested workflow, parallel state changes."""

from __future__ import annotations

import pytest

import durable
from engines import get_engine
from flow import create_step, create_workflow

ENGINES = ("default", "codegen", "stepmode")


@pytest.fixture
def world():
    return durable.MemoryWorld()


def _eng(name, world):
    return get_engine(name, world=world) if name.startswith("codegen") else get_engine(name)


def recs(result):
    return {k: (r.status, r.payload, r.output if r.status == "success" else None)
            for k, r in result.steps.items()}


async def _ask(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"q": ctx.input_data["value"]})
        return None
    return {"value": ctx.input_data["value"] + ctx.resume_data["add"]}


inc = create_step("inc", lambda c: {"value": c.input_data["value"] + 1})
ask = create_step("ask", _ask)
inner = create_workflow(id="inner_ask").then(inc).then(ask).commit()
outer = create_workflow(id="outer_ask").then(inner).then(
    create_step("fin", lambda c: c.input_data)).commit()


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_suspend_inside_nested_workflow(engine_name, world):
    eng = _eng(engine_name, world)
    first = await eng.run(outer, input_data={"value": 1})
    assert first.status == "suspended"
    assert first.suspended == [["inner_ask", "ask"]]
    assert recs(first) == {"inner_ask": ("suspended", {"value": 1}, None)}
    meta = first.steps["inner_ask"].suspend_payload
    assert meta["q"] == 2 and meta["__workflow_meta"]["path"] == ["ask"]
    done = await eng.resume(outer, first.run_id, step=["inner_ask", "ask"], resume_data={"add": 10})
    assert done.status == "success", done.error
    assert done.result == {"value": 12}
    assert recs(done) == {"inner_ask": ("success", {"value": 1}, {"value": 12}),
                          "fin": ("success", {"value": 12}, {"value": 12})}
    assert done.steps["inner_ask"].resume_payload == {"add": 10}


async def _gate(ctx):
    if ctx.input_data == 2 and ctx.resume_data is None:
        await ctx.suspend({"item": 2})
        return None
    return ctx.input_data * 10 + (ctx.resume_data or {}).get("x", 0)


gated = (create_workflow(id="gated").foreach(create_step("gate", _gate), concurrency=1)
         .then(create_step("total", lambda c: sum(c.input_data))).commit())


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_suspend_inside_foreach(engine_name, world):
    eng = _eng(engine_name, world)
    first = await eng.run(gated, input_data=[1, 2, 3])
    assert first.status == "suspended"
    assert first.suspended == [["gate"]]
    assert recs(first) == {"gate": ("suspended", [1, 2, 3], None)}
    meta = first.steps["gate"].suspend_payload["__workflow_meta"]
    assert meta["foreach_index"] == 1
    assert meta["foreach_status"] == ["success", "suspended", "success"]
    assert meta["foreach_output"] == [10, None, 30]
    done = await eng.resume(gated, first.run_id, step="gate", resume_data={"x": 5})
    assert done.status == "success", done.error
    assert done.result == 65
    assert recs(done) == {"gate": ("success", [1, 2, 3], [10, 25, 30]),
                          "total": ("success", [10, 25, 30], 65)}


def _boom(ctx):
    raise RuntimeError("child failed")


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_failed_parallel_child_fails_the_run_after_siblings(engine_name, world):
    wf = (create_workflow(id=f"pfail_{engine_name}")
          .parallel([inc, create_step("boom", _boom)])
          .then(create_step("never", lambda c: 1)).commit())
    result = await _eng(engine_name, world).run(wf, input_data={"value": 1})
    assert result.status == "failed"
    assert str(result.error) == "child failed"
    assert recs(result) == {"inc": ("success", {"value": 1}, {"value": 2}),
                            "boom": ("failed", {"value": 1}, None)}


def _raises(ctx):
    raise ValueError("bad predicate")


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_branch_with_no_true_condition_and_a_raising_one(engine_name, world):
    wf = (create_workflow(id=f"nobranch_{engine_name}")
          .branch([(_raises, create_step("a", lambda c: "a")),
                   (lambda c: False, create_step("b", lambda c: "b"))])
          .then(create_step("after", lambda c: {"got": c.input_data})).commit())
    result = await _eng(engine_name, world).run(wf, input_data={"value": 1})
    assert result.status == "success"
    assert result.result == {"got": {}}
    assert recs(result) == {"after": ("success", {}, {"got": {}})}


double_wf = create_workflow(id="double_wf").then(
    create_step("dbl", lambda c: c.input_data * 2)).commit()


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_foreach_over_a_nested_workflow(engine_name, world):
    wf = create_workflow(id=f"fenested_{engine_name}").foreach(double_wf, concurrency=2).commit()
    result = await _eng(engine_name, world).run(wf, input_data=[1, 2, 3])
    assert result.status == "success", result.error
    assert result.result == [2, 4, 6]
    assert recs(result) == {"double_wf": ("success", [1, 2, 3], [2, 4, 6])}


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_parallel_children_merge_their_state(engine_name, world):
    def left(ctx):
        ctx.set_state({"left": 1})
        return "l"

    def right(ctx):
        ctx.set_state({"right": 2})
        return "r"

    wf = (create_workflow(id=f"pstate_{engine_name}")
          .parallel([create_step("left", left), create_step("right", right)]).commit())
    result = await _eng(engine_name, world).run(wf, input_data={}, initial_state={"base": 0})
    assert result.status == "success"
    assert result.result == {"left": "l", "right": "r"}
    assert result.state == {"base": 0, "left": 1, "right": 2}


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_cancel_while_a_step_runs(engine_name, world):
    import asyncio

    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx):
        started.set()
        await release.wait()
        return {"slow": True}

    wf = (create_workflow(id=f"cancel_{engine_name}").then(create_step("slow", slow))
          .then(create_step("after", lambda c: {"after": True})).commit())
    eng = _eng(engine_name, world)
    task = asyncio.ensure_future(eng.run(wf, input_data={}, run_id=f"cancel-{engine_name}"))
    await asyncio.wait_for(started.wait(), 10)
    await eng.cancel(wf, f"cancel-{engine_name}")
    release.set()
    result = await asyncio.wait_for(task, 10)
    assert result.status == "canceled"
    assert recs(result) == {"slow": ("success", {}, {"slow": True})}


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_cancel_during_a_long_sleep(engine_name, world):
    import asyncio

    sleeping = asyncio.Event()

    def duration(ctx):  # the sleep's own function: the run is in its sleep entry
        sleeping.set()
        return 3600

    wf = (create_workflow(id=f"csleep_{engine_name}").then(create_step("mark", lambda c: {"v": 1}))
          .sleep(duration).then(create_step("after", lambda c: {"after": True})).commit())
    eng = _eng(engine_name, world)
    task = asyncio.ensure_future(eng.run(wf, input_data={}, run_id=f"csleep-{engine_name}"))
    await asyncio.wait_for(sleeping.wait(), 10)
    await eng.cancel(wf, f"csleep-{engine_name}")
    result = await asyncio.wait_for(task, 10)
    assert result.status == "canceled"
    assert {k: r.status for k, r in result.steps.items()} == {"mark": "success", "sleep_1": "canceled"}


async def _labelled(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"why": "review"}, resume_label="review")
        return None
    return {"reviewed": ctx.resume_data["by"]}


labelled = create_workflow(id="labelled").then(create_step("check", _labelled)).commit()


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_resume_by_label(engine_name, world):
    eng = _eng(engine_name, world)
    first = await eng.run(labelled, input_data={})
    assert first.status == "suspended"
    with pytest.raises(ValueError, match='Resume label "nope" not found'):
        await eng.resume(labelled, first.run_id, label="nope", resume_data={})
    done = await eng.resume(labelled, first.run_id, label="review", resume_data={"by": "ada"})
    assert done.status == "success"
    assert done.result == {"reviewed": "ada"}
