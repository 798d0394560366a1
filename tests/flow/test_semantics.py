"""Interpreter semantics: state, request context, cancel, retries, foreach pool, branch, loops,
bail, validation, errors. Expected values are written from the reference, not from output."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

import flow
from flow import FlowError, StepContext, ValidationError, create_step, create_workflow


def _echo(sid: str) -> flow.Step:
    return create_step(id=sid, execute=lambda ctx: ctx.input_data)


# -- state -------------------------------------------------------------------------------------
async def test_set_state_applied_after_step_returns() -> None:
    seen: list[Any] = []

    def first(ctx: StepContext) -> dict[str, Any]:
        ctx.set_state({"n": ctx.state["n"] + 1})
        seen.append(dict(ctx.state))  # not yet applied inside the step
        return {}

    def second(ctx: StepContext) -> dict[str, Any]:
        seen.append(dict(ctx.state))
        return {}

    wf = (create_workflow(id="w").then(create_step(id="a", execute=first))
          .then(create_step(id="b", execute=second)).commit())
    res = await wf.create_run().start(input_data={}, initial_state={"n": 1, "keep": "x"})
    assert res.status == "success"
    assert seen == [{"n": 1, "keep": "x"}, {"n": 2, "keep": "x"}]
    assert res.state == {"n": 2, "keep": "x"}


async def test_parallel_children_state_merged() -> None:
    async def a(ctx: StepContext) -> int:
        await ctx.set_state({"a": 1})
        return 1

    def b(ctx: StepContext) -> int:
        ctx.set_state({"b": 2})
        return 2

    wf = create_workflow(id="w").parallel([create_step(id="a", execute=a),
                                           create_step(id="b", execute=b)]).commit()
    res = await wf.create_run().start(input_data={}, initial_state={"c": 3})
    assert res.state == {"a": 1, "b": 2, "c": 3}
    assert res.result == {"a": 1, "b": 2}


async def test_initial_state_validated_against_state_schema() -> None:
    class S(BaseModel):
        count: int

    wf = create_workflow(id="w", state_schema=S).then(_echo("a")).commit()
    with pytest.raises(ValidationError, match=r"(?s)Invalid input data:.*- count:"):
        await wf.create_run().start(input_data={}, initial_state={"count": "x"})


# -- request context ------------------------------------------------------------------------------
async def test_request_context_shared_and_mapped() -> None:
    def setter(ctx: StepContext) -> dict[str, Any]:
        ctx.request_context.set("life", 42)
        ctx.request_context.delete("gone")
        return {}

    def reader(ctx: StepContext) -> Any:
        return {"has_gone": ctx.request_context.has("gone"), **ctx.input_data}

    wf = (create_workflow(id="w")
          .then(create_step(id="set", execute=setter))
          .map({"life": flow.map_request_context("life"), "user": {"request_context_path": "user"}})
          .then(create_step(id="read", execute=reader))
          .commit())
    rc = flow.RequestContext({"user": "ann", "gone": 1})
    res = await wf.create_run().start(input_data={}, request_context=rc)
    assert res.result == {"has_gone": False, "life": 42, "user": "ann"}
    assert rc.get("life") == 42 and "gone" not in rc


# -- cancel ---------------------------------------------------------------------------------
async def test_cancel_during_sleep_interrupts_it() -> None:
    ran: list[str] = []

    def s(name: str) -> flow.Step:
        def body(ctx: StepContext) -> dict[str, str]:
            ran.append(name)
            return {"v": name}
        return create_step(id=name, execute=body)

    wf = create_workflow(id="w").then(s("step1")).sleep(30).then(s("step2")).commit()
    run = wf.create_run()
    task = asyncio.ensure_future(run.start(input_data={}))
    while not ran:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await run.cancel()
    res = await asyncio.wait_for(task, 5)  # a 30 s sleep must not hold the run
    assert res.status == "canceled"
    assert ran == ["step1"]
    assert res.steps["step1"].status == "success"
    assert "step2" not in res.steps
    assert res.result is None and res.error is None


async def test_abort_from_step_cancels_before_next_entry() -> None:
    def stopper(ctx: StepContext) -> int:
        ctx.abort()
        return 1

    wf = create_workflow(id="w").then(create_step(id="a", execute=stopper)).then(_echo("b")).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "canceled"
    assert res.steps["a"].status == "success" and "b" not in res.steps


# -- retries --------------------------------------------------------------------------------
async def test_no_retry_config_runs_once() -> None:
    calls = Counter[str]()

    def boom(ctx: StepContext) -> None:
        calls["x"] += 1
        raise RuntimeError("Step failed")

    wf = create_workflow(id="w").then(create_step(id="x", execute=boom)).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "failed" and calls["x"] == 1
    assert isinstance(res.error, RuntimeError) and str(res.error) == "Step failed"
    assert res.steps["x"].error is res.error
    assert res.to_dict()["error"] == {"name": "RuntimeError", "message": "Step failed"}
    assert res.steps["x"].to_dict()["error"] == {"name": "RuntimeError", "message": "Step failed"}


async def test_retry_config_and_retry_count() -> None:
    counts: list[int] = []

    def flaky(ctx: StepContext) -> dict[str, int]:
        counts.append(ctx.retry_count)
        if ctx.retry_count < 3:
            raise RuntimeError("not yet")
        return {"ok": ctx.retry_count}

    wf = (create_workflow(id="w", retry_config={"attempts": 5, "delay": 0.001})
          .then(create_step(id="x", execute=flaky)).commit())
    res = await wf.create_run().start(input_data={})
    assert res.status == "success" and res.result == {"ok": 3}
    assert counts == [0, 1, 2, 3]


async def test_retries_exhausted_and_step_override() -> None:
    calls = Counter[str]()

    def boom(name: str) -> flow.Step:
        def body(ctx: StepContext) -> None:
            calls[name] += 1
            raise ValueError("Step failed")
        return create_step(id=name, execute=body, retries=1 if name == "own" else None)

    wf = create_workflow(id="w", retry_config={"attempts": 5, "delay": 0}).then(boom("all")).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "failed" and calls["all"] == 6
    wf2 = create_workflow(id="w2", retry_config={"attempts": 5}).then(boom("own")).commit()
    res2 = await wf2.create_run().start(input_data={})
    assert res2.status == "failed" and calls["own"] == 2


# -- foreach ----------------------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [1, 2, 3, 5])
async def test_foreach_pool_limit_and_order(concurrency: int) -> None:
    in_flight = 0
    peak = 0

    async def body(ctx: StepContext) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (7 - ctx.input_data))  # later items finish first
        in_flight -= 1
        return None if ctx.input_data == 3 else ctx.input_data * 10

    wf = (create_workflow(id="w").foreach(create_step(id="item", execute=body),
                                          concurrency=concurrency).commit())
    res = await wf.create_run().start(input_data=[1, 2, 3, 4, 5, 6])
    assert res.status == "success"
    assert res.result == [10, 20, None, 40, 50, 60]
    assert peak == min(concurrency, 6)
    assert res.steps["item"].payload == [1, 2, 3, 4, 5, 6]


async def test_foreach_fluid_pool_starts_next_item_when_a_slot_frees() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def body(ctx: StepContext) -> int:
        order.append(f"start{ctx.input_data}")
        if ctx.input_data == 0:
            await gate.wait()  # item 0 is slow
        else:
            await asyncio.sleep(0)
            if ctx.input_data == 2:
                gate.set()
        order.append(f"end{ctx.input_data}")
        return int(ctx.input_data)

    wf = create_workflow(id="w").foreach(create_step(id="i", execute=body), concurrency=2).commit()
    res = await wf.create_run().start(input_data=[0, 1, 2])
    assert res.result == [0, 1, 2]
    # item 2 started while item 0 was still running (a batch of 2 would wait for item 0)
    assert order.index("start2") < order.index("end0")


async def test_foreach_empty_and_failure() -> None:
    wf = create_workflow(id="w").foreach(_echo("i")).commit()
    res = await wf.create_run().start(input_data=[])
    assert res.status == "success" and res.result == []

    def body(ctx: StepContext) -> int:
        if ctx.input_data == 2:
            raise KeyError("bad item")
        return int(ctx.input_data)

    wf2 = create_workflow(id="w2").foreach(create_step(id="i", execute=body)).commit()
    res2 = await wf2.create_run().start(input_data=[1, 2, 3])
    assert res2.status == "failed" and isinstance(res2.error, KeyError)
    assert res2.steps["i"].status == "failed"

    wf3 = create_workflow(id="w3").foreach(_echo("i")).commit()
    res3 = await wf3.create_run().start(input_data={"not": "a list"})
    assert res3.status == "failed" and "needs a list" in str(res3.error)


# -- branch / loops / bail / map errors ------------------------------------------------------------
async def test_branch_semantics() -> None:
    def raises(ctx: StepContext) -> bool:
        raise RuntimeError("cond")

    a, b = _echo("a"), _echo("b")
    wf = create_workflow(id="w").branch([(raises, a), (lambda ctx: True, b)]).then(_echo("n")).commit()
    res = await wf.create_run().start(input_data={"x": 1})
    assert res.status == "success"
    assert "a" not in res.steps and res.steps["n"].payload == {"b": {"x": 1}}

    wf2 = create_workflow(id="w2").branch([(lambda c: False, a), (lambda c: 0, b)]).then(_echo("n")).commit()
    res2 = await wf2.create_run().start(input_data={"x": 1})
    assert res2.status == "success" and res2.steps["n"].payload == {}

    async def yes(ctx: StepContext) -> bool:
        return True

    wf3 = create_workflow(id="w3").branch([(yes, a), (lambda c: True, b)]).commit()
    res3 = await wf3.create_run().start(input_data=5)
    assert res3.result == {"a": 5, "b": 5}


async def test_loop_condition_error_fails_run() -> None:
    def cond(ctx: StepContext) -> bool:
        if ctx.iteration_count == 3:
            raise RuntimeError("too many iterations")
        return False

    inc = create_step(id="inc", execute=lambda ctx: ctx.input_data + 1)
    wf = create_workflow(id="w").then(_echo("a")).dountil(inc, cond).then(_echo("z")).commit()
    res = await wf.create_run().start(input_data=0)
    assert res.status == "failed"
    assert str(res.error) == "too many iterations"
    assert res.steps["inc"].output == 3 and "z" not in res.steps


async def test_dowhile_and_iteration_metadata() -> None:
    seen: list[int] = []

    def cond(ctx: StepContext) -> bool:
        seen.append(ctx.iteration_count)  # type: ignore[arg-type]
        return bool(ctx.input_data < 4)

    inc = create_step(id="inc", execute=lambda ctx: ctx.input_data + 1)
    wf = create_workflow(id="w").dowhile(inc, cond).commit()
    res = await wf.create_run().start(input_data=0)
    assert res.result == 4 and seen == [1, 2, 3, 4]
    assert res.steps["inc"].metadata == {"iteration_count": 4}
    assert res.steps["inc"].payload == 3


async def test_bail_top_level_and_in_loop() -> None:
    def bailer(ctx: StepContext) -> str:
        ctx.bail({"result": "bailed"})
        return "ignored"

    wf = create_workflow(id="w").then(create_step(id="b", execute=bailer)).then(_echo("z")).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "success" and res.result == {"result": "bailed"} and "z" not in res.steps
    wf2 = create_workflow(id="w2").dountil(create_step(id="b", execute=bailer),
                                           lambda c: False).then(_echo("z")).commit()
    res2 = await wf2.create_run().start(input_data={})
    assert res2.status == "success" and res2.result == {"result": "bailed"}


async def test_map_function_error_fails_run() -> None:
    def bad(ctx: StepContext) -> Any:
        raise LookupError("no such key")

    wf = create_workflow(id="w").then(_echo("a")).map(bad).then(_echo("z")).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "failed" and isinstance(res.error, LookupError)
    assert res.steps["mapping_1"].status == "failed" and "z" not in res.steps


async def test_map_invalid_path() -> None:
    wf = (create_workflow(id="w").then(create_step(id="s", execute=lambda c: {}))
          .map({"x": flow.map_step("s", "a.b")}).commit())
    res = await wf.create_run().start(input_data={})
    assert res.status == "failed" and str(res.error) == "Invalid path a.b in step s"


async def test_map_fn_spec_and_init_data() -> None:
    async def double(ctx: StepContext) -> int:
        return int(ctx.input_data["v"]) * 2

    wf = (create_workflow(id="w").then(_echo("s"))
          .map({"d": flow.map_fn(double), "i": flow.map_init("v"), "c": {"value": None}}).commit())
    res = await wf.create_run().start(input_data={"v": 4})
    assert res.result == {"d": 8, "i": 4, "c": None}


# -- validation ---------------------------------------------------------------------------------
class Nested(BaseModel):
    value: int = 1


class Inp(BaseModel):
    required: str
    nested: Nested = Nested()


async def test_start_input_validation_names_each_field() -> None:
    wf = create_workflow(id="w", input_schema=Inp).then(_echo("a")).commit()
    with pytest.raises(ValidationError) as info:
        await wf.create_run().start(input_data={"nested": {"value": "nope"}})
    msg = str(info.value)
    assert msg.startswith("Invalid input data:")
    assert "\n- required:" in msg and "\n- nested.value:" in msg
    assert [p for p, _ in info.value.issues] == ["required", "nested.value"]
    res = await wf.create_run().start(input_data={"required": "test"})
    assert res.input == {"required": "test", "nested": {"value": 1}}
    assert res.steps["a"].payload == {"required": "test", "nested": {"value": 1}}


async def test_step_input_validation_fails_the_step() -> None:
    class Need(BaseModel):
        start: str

    class WithDefault(BaseModel):
        start: str = "test"

    bad = create_step(id="bad", input_schema=Need, execute=lambda ctx: ctx.input_data)
    wf = create_workflow(id="w").then(_echo("a")).then(bad).commit()
    res = await wf.create_run().start(input_data={"result": "success"})
    assert res.status == "failed"
    assert res.steps["bad"].status == "failed"
    assert res.steps["bad"].payload == {"result": "success"}
    assert str(res.error).startswith("Step input validation failed:")
    assert "\n- start:" in str(res.error)

    good = create_step(id="good", input_schema=WithDefault, execute=lambda ctx: ctx.input_data)
    wf2 = create_workflow(id="w2").then(good).commit()
    res2 = await wf2.create_run().start(input_data={})
    assert res2.steps["good"].payload == {"start": "test"}

    off = create_workflow(id="w3", validate_inputs=False).then(bad).commit()
    res3 = await off.create_run().start(input_data={"x": 1})
    assert res3.status == "success" and res3.result == {"x": 1}


# -- nested workflows, run api -------------------------------------------------------------------
async def test_nested_workflow_same_run_id_and_error_class() -> None:
    seen: list[str] = []

    def inner_body(ctx: StepContext) -> dict[str, int]:
        seen.append(ctx.run_id)
        return {"v": ctx.input_data["v"] + 1}

    inner = create_workflow(id="inner").then(create_step(id="i", execute=inner_body)).commit()
    outer = create_workflow(id="outer").then(inner).then(_echo("z")).commit()
    run = outer.create_run(run_id="r1")
    res = await run.start(input_data={"v": 1})
    assert res.result == {"v": 2} and seen == ["r1"]
    assert res.steps["inner"].output == {"v": 2} and "i" not in res.steps

    class MyError(Exception):
        pass

    def boom(ctx: StepContext) -> None:
        raise MyError("deep")

    bad_inner = create_workflow(id="bad").then(create_step(id="x", execute=boom)).commit()
    res2 = await create_workflow(id="o2").then(bad_inner).commit().create_run().start(input_data={})
    assert res2.status == "failed" and isinstance(res2.error, MyError)
    assert res2.steps["bad"].status == "failed"


async def test_start_twice_is_an_error() -> None:
    wf = create_workflow(id="w").then(_echo("a")).commit()
    run = wf.create_run()
    await run.start(input_data={})
    with pytest.raises(FlowError, match="already started"):
        await run.start(input_data={})


async def test_writer_and_sync_suspend_without_await() -> None:
    def body(ctx: StepContext) -> None:
        ctx.suspend({"why": "x"})  # not awaited: must still work

    wf = create_workflow(id="w").then(create_step(id="s", execute=body)).commit()
    res = await wf.create_run().start(input_data={})
    assert res.status == "suspended" and res.suspended == [["s"]]
    assert res.steps["s"].suspend_payload == {"why": "x"}
    assert res.to_dict()["suspended"] == [["s"]]


async def test_branch_condition_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def raises(ctx: StepContext) -> bool:
        raise RuntimeError("cond exploded")

    wf = create_workflow(id="w").branch([(raises, _echo("a"))]).commit()
    with caplog.at_level("WARNING", logger="flow"):
        res = await wf.create_run().start(input_data=1)
    assert res.status == "success" and res.result == {}
    assert any("cond exploded" in r.getMessage() and "'a'" in r.getMessage()
               for r in caplog.records)


async def test_bail_inside_parallel_child_ends_only_that_child() -> None:
    def bailer(ctx: StepContext) -> int:
        ctx.bail(99)
        return 0

    wf = (create_workflow(id="w")
          .parallel([create_step(id="b", execute=bailer), _echo("e")])
          .then(_echo("z")).commit())
    res = await wf.create_run().start(input_data=1)
    assert res.status == "success"
    assert res.steps["b"].status == "success" and res.steps["b"].output == 99
    assert res.steps["z"].status == "success"
    assert res.result == {"b": 99, "e": 1}  # the next entry sees every succeeded child


async def test_cancel_during_retry_delay_stops_retrying() -> None:
    calls = Counter[str]()

    def boom(ctx: StepContext) -> None:
        calls["x"] += 1
        raise RuntimeError("again")

    wf = (create_workflow(id="w", retry_config={"attempts": 100, "delay": 30})
          .then(create_step(id="x", execute=boom)).commit())
    run = wf.create_run()
    task = asyncio.ensure_future(run.start(input_data={}))
    while not calls:
        await asyncio.sleep(0.01)
    await run.cancel()
    res = await asyncio.wait_for(task, 5)
    assert calls["x"] == 1
    assert res.steps["x"].status == "failed"  # the record keeps its own status
    assert res.status == "canceled"


async def test_cancel_stops_foreach_from_launching_items() -> None:
    started: list[int] = []

    async def body(ctx: StepContext) -> int:
        started.append(ctx.input_data)
        if ctx.input_data == 1:
            ctx.abort()
        await asyncio.sleep(0)
        return int(ctx.input_data)

    wf = create_workflow(id="w").foreach(create_step(id="i", execute=body)).commit()
    res = await wf.create_run().start(input_data=[0, 1, 2, 3])
    assert res.status == "canceled"
    assert started == [0, 1]
    assert res.steps["i"].status == "canceled"
