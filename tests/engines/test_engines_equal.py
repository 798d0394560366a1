"""The twelve workflows of issue 4 give equal results on default, codegen and stepmode (status,
result, per-step status/output/payload, written by hand below); codegen-strict refuses exactly
the ones that need a Python closure."""

from __future__ import annotations

import asyncio

import engine_workflows as W
import pytest

import durable
from engines import ENGINE_NAMES, Unsupported, get_engine
from flow import create_step, create_workflow

ENGINES = ("default", "codegen", "stepmode")


@pytest.fixture
def world():
    return durable.MemoryWorld()


def engine(name, world):
    if name.startswith("codegen"):
        return get_engine(name, world=world)
    return get_engine(name)


def records(result):
    return {sid: (rec.status, rec.payload, rec.output if rec.status == "success" else None)
            for sid, rec in result.steps.items()}


def v(n):
    return {"value": n}


CASES = {
    "sequential": (W.sequential, v(3), v(64), {
        "add_one": ("success", v(3), v(4)), "double": ("success", v(4), v(8)),
        "square": ("success", v(8), v(64))}),
    "parallel": (W.parallel, v(3), v(10), {
        "add_one": ("success", v(3), v(4)), "double": ("success", v(3), v(6)),
        "combine": ("success", {"add_one": v(4), "double": v(6)}, v(10))}),
    "branch": (W.branch, v(3), {"label": "small"}, {
        "small": ("success", v(3), {"size": "small", "value": 3}),
        "label": ("success", {"small": {"size": "small", "value": 3}}, {"label": "small"})}),
    "branch_big": (W.branch, v(30), {"label": "big"}, {
        "big": ("success", v(30), {"size": "big", "value": 30}),
        "label": ("success", {"big": {"size": "big", "value": 30}}, {"label": "big"})}),
    "dountil": (W.dountil, v(0), v(5), {"add_one": ("success", v(4), v(5))}),
    "dowhile": (W.dowhile, v(1), v(32), {"double": ("success", v(16), v(32))}),
    "foreach": (W.foreach, [1, 2, 3, 4, 5, 6, 7], [1, 4, 9, 16, 25, 36, 49], {
        "item_square": ("success", [1, 2, 3, 4, 5, 6, 7], [1, 4, 9, 16, 25, 36, 49])}),
    "static_sleep": (W.static_sleep, v(3), v(8), {
        "add_one": ("success", v(3), v(4)), "sleep_1": ("success", v(4), v(4)),
        "double": ("success", v(4), v(8))}),
    "dynamic_sleep": (W.dynamic_sleep, v(3), v(8), {
        "add_one": ("success", v(3), v(4)), "sleep_1": ("success", v(4), v(4)),
        "double": ("success", v(4), v(8))}),
    "function_map": (W.function_map, v(3), v(80), {
        "add_one": ("success", v(3), v(4)),
        "mapping_1": ("success", v(4), {"value": 40, "note": "mapped"}),
        "double": ("success", {"value": 40, "note": "mapped"}, v(80))}),
    "mapping_object": (W.mapping_object, v(3),
                       {"from_step": 4, "const": {"k": [1, 2]}, "from_input": 3, "tenant": "acme"}, {
        "add_one": ("success", v(3), v(4)),
        "mapping_1": ("success", v(4), {"from_step": 4, "const": {"k": [1, 2]}, "from_input": 3,
                                        "tenant": "acme"})}),
    "nested": (W.nested, v(3), v(100), {
        "add_one": ("success", v(3), v(4)), "inner": ("success", v(4), v(10)),
        "square": ("success", v(10), v(100))}),
}

CLOSURE_CASES = {"branch", "branch_big", "dountil", "dowhile", "dynamic_sleep", "function_map"}


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_workflow_results(case, engine_name, world):
    wf, inp, expected_result, expected_steps = CASES[case]
    W.ACTIVE.update(now=0, max=0)
    result = await engine(engine_name, world).run(wf, input_data=inp,
                                                  request_context={"tenant": "acme"})
    assert result.status == "success", result.error
    assert result.result == expected_result
    assert records(result) == expected_steps
    if case == "foreach":
        assert 1 <= W.ACTIVE["max"] <= 3
    if case in ("dountil", "dowhile"):
        assert result.steps[next(iter(expected_steps))].metadata == {
            "iteration_count": 5}


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_suspend_and_resume(engine_name, world):
    eng = engine(engine_name, world)
    first = await eng.run(W.suspend_resume, input_data=v(3))
    assert first.status == "suspended"
    assert first.suspended == [["approve"]]
    assert records(first) == {"add_one": ("success", v(3), v(4)), "approve": ("suspended", v(4), None)}
    assert first.steps["approve"].suspend_payload == {"ask": "approve 4?"}
    done = await eng.resume(W.suspend_resume, first.run_id, step="approve", resume_data={"ok": True})
    assert done.status == "success", done.error
    assert done.result == {"done": True, "value": 4}
    assert records(done) == {
        "add_one": ("success", v(3), v(4)),
        "approve": ("success", v(4), {"value": 4, "approved": True}),
        "after": ("success", {"value": 4, "approved": True}, {"done": True, "value": 4})}
    assert done.steps["approve"].resume_payload == {"ok": True}
    assert done.steps["approve"].suspend_payload == {"ask": "approve 4?"}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_codegen_strict_refuses_exactly_the_closures(case, world):
    wf, inp, expected_result, _ = CASES[case]
    eng = get_engine("codegen-strict", world=world)
    if case in CLOSURE_CASES:
        with pytest.raises(Unsupported, match="is a Python callable; codegen-strict compiles only"):
            await eng.run(wf, input_data=inp)
        assert world.list_runs() == []  # refused before anything ran
    else:
        result = await eng.run(wf, input_data=inp, request_context={"tenant": "acme"})
        assert result.status == "success"
        assert result.result == expected_result


async def test_codegen_strict_runs_suspend_resume(world):
    eng = get_engine("codegen-strict", world=world)
    first = await eng.run(W.suspend_resume, input_data=v(1))
    assert first.status == "suspended"
    done = await eng.resume(W.suspend_resume, first.run_id, resume_data={"ok": False})
    assert done.result == {"done": False, "value": 2}


def test_engine_names():
    assert ENGINE_NAMES == ("default", "codegen", "codegen-strict", "stepmode", "native")
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        get_engine("nope")


TIMESTAMPS = {"started_at", "ended_at", "suspended_at", "resumed_at"}


def comparable(result):
    """The whole JSON result without run id and timestamps."""
    d = result.to_dict()
    d.pop("run_id")
    d["steps"] = {k: {f: v for f, v in r.items() if f not in TIMESTAMPS} for k, r in d["steps"].items()}
    return d


@pytest.mark.parametrize("case", sorted(CASES))
async def test_whole_results_are_equal_across_engines(case, world):
    wf, inp, _, _ = CASES[case]
    results = []
    for name in ENGINES:
        result = await engine(name, world).run(wf, input_data=inp, initial_state={"s": 1},
                                               request_context={"tenant": "acme"})
        results.append(comparable(result))
    assert results[0] == results[1] == results[2]


async def test_whole_suspend_resume_results_are_equal_across_engines(world):
    firsts, dones = [], []
    for name in ENGINES:
        eng = engine(name, world)
        first = await eng.run(W.suspend_resume, input_data=v(3))
        firsts.append(comparable(first))
        dones.append(comparable(await eng.resume(W.suspend_resume, first.run_id,
                                                 resume_data={"ok": True})))
    assert firsts[0] == firsts[1] == firsts[2]
    assert dones[0] == dones[1] == dones[2]


# --- precedence inside a block: failed > suspended > canceled > success (reference 3.4) -------
# One child suspends and a sibling fails: the entry fails (the suspended child keeps its
# suspended record, nothing after the entry runs), whichever of the two finishes first.

async def _ask_late(ctx):
    await asyncio.sleep(0.02)  # suspends after the sibling has failed
    if ctx.resume_data is None:
        await ctx.suspend({"q": ctx.input_data["value"]})
        return None
    return ctx.input_data


async def _ask_now(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"q": ctx.input_data["value"]})
        return None
    return ctx.input_data


async def _fail_late(ctx):
    await asyncio.sleep(0.02)  # fails after the sibling has suspended
    raise RuntimeError("sibling failed")


def _fail_now(ctx):
    raise RuntimeError("sibling failed")


async def _item(ctx):
    if ctx.input_data == 1:
        await asyncio.sleep(0.02)  # fails after items 0 and 2 have suspended
        raise ValueError("item 1 failed")
    if ctx.resume_data is None:
        await ctx.suspend({"item": ctx.input_data})
        return None
    return ctx.input_data


_after = create_step("after", lambda c: c.input_data)
_ok = create_step("ok", lambda c: {"ok": c.input_data["value"]})
_inner = create_workflow(id="inner_asks").then(create_step("ask", _ask_now)).commit()
PRECEDENCE = {
    "suspend_then_fail": create_workflow(id="p_suspend_then_fail").parallel(
        [create_step("ask", _ask_now), create_step("bad", _fail_late), _ok]).then(_after).commit(),
    "fail_then_suspend": create_workflow(id="p_fail_then_suspend").parallel(
        [create_step("ask", _ask_late), create_step("bad", _fail_now), _ok]).then(_after).commit(),
    "branch_both_true": create_workflow(id="p_branch").branch(
        [(lambda c: True, create_step("ask", _ask_now)),
         (lambda c: True, create_step("bad", _fail_late))]).then(_after).commit(),
    "nested_suspends": create_workflow(id="p_nested").parallel(
        [_inner, create_step("bad", _fail_late)]).then(_after).commit(),
}
SUSPENDED_ASK = ("suspended", v(1), None)
FAILED_BAD = ("failed", v(1), None)
PRECEDENCE_STEPS = {
    "suspend_then_fail": {"ask": SUSPENDED_ASK, "bad": FAILED_BAD, "ok": ("success", v(1), {"ok": 1})},
    "fail_then_suspend": {"ask": SUSPENDED_ASK, "bad": FAILED_BAD, "ok": ("success", v(1), {"ok": 1})},
    "branch_both_true": {"ask": SUSPENDED_ASK, "bad": FAILED_BAD},
    "nested_suspends": {"inner_asks": SUSPENDED_ASK, "bad": FAILED_BAD},
}


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("case", sorted(PRECEDENCE))
async def test_failed_sibling_beats_a_suspended_one(case, engine_name, world):
    result = await asyncio.wait_for(
        engine(engine_name, world).run(PRECEDENCE[case], input_data=v(1)), 20)
    assert result.status == "failed"
    assert type(result.error) is RuntimeError and str(result.error) == "sibling failed"
    assert result.suspended == []
    assert records(result) == PRECEDENCE_STEPS[case]
    susp = "inner_asks" if case == "nested_suspends" else "ask"
    payload = result.steps[susp].suspend_payload
    assert {k: x for k, x in payload.items() if k != "__workflow_meta"} == {"q": 1}
    assert type(result.steps["bad"].error) is RuntimeError


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_foreach_item_failure_beats_a_suspended_item(engine_name, world):
    wf = (create_workflow(id="p_foreach").foreach(create_step("each", _item), concurrency=3)
          .then(_after).commit())
    result = await asyncio.wait_for(engine(engine_name, world).run(wf, input_data=[0, 1, 2]), 20)
    assert result.status == "failed"
    assert type(result.error) is ValueError and str(result.error) == "item 1 failed"
    assert records(result) == {"each": ("failed", [0, 1, 2], None)}


@pytest.mark.parametrize("engine_name", ENGINES)
async def test_suspended_sibling_beats_success(engine_name, world):
    wf = create_workflow(id="p_suspend_ok").parallel(
        [create_step("ask", _ask_late), _ok]).then(_after).commit()
    result = await asyncio.wait_for(engine(engine_name, world).run(wf, input_data=v(1)), 20)
    assert result.status == "suspended"
    assert result.suspended == [["ask"]]
    assert records(result) == {"ask": SUSPENDED_ASK, "ok": ("success", v(1), {"ok": 1})}
