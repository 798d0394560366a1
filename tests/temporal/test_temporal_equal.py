"""The twelve workflows of issue 4 on `temporal`: the same results as `default` and `codegen`
(the whole JSON result without run ids and timestamps), plus hand-written checks of status,
result and per-step records."""

from __future__ import annotations

import asyncio

import pytest

import durable
from engines import get_engine
from flow import create_step, create_workflow
from tests.engines import engine_workflows as W

pytestmark = pytest.mark.temporal


def v(n):
    return {"value": n}


# workflow, input, expected result (by hand, from the semantics of each workflow)
CASES = {
    "sequential": (W.sequential, v(3), v(64)),          # (3+1)*2 = 8, squared
    "parallel": (W.parallel, v(3), v(10)),              # add_one 4 + double 6
    "branch": (W.branch, v(3), {"label": "small"}),
    "branch_big": (W.branch, v(30), {"label": "big"}),
    "dountil": (W.dountil, v(0), v(5)),
    "dowhile": (W.dowhile, v(1), v(32)),                # 2, 4, 8, 16, 32
    "foreach": (W.foreach, [1, 2, 3, 4, 5, 6, 7], [1, 4, 9, 16, 25, 36, 49]),
    "static_sleep": (W.static_sleep, v(3), v(8)),
    "dynamic_sleep": (W.dynamic_sleep, v(3), v(8)),
    "function_map": (W.function_map, v(3), v(80)),      # 4 -> 40 -> 80
    "mapping_object": (W.mapping_object, v(3),
                       {"from_step": 4, "const": {"k": [1, 2]}, "from_input": 3, "tenant": "acme"}),
    "nested": (W.nested, v(3), v(100)),                 # 4 -> inner (5, 10) -> 100
}

TIMESTAMPS = {"started_at", "ended_at", "suspended_at", "resumed_at"}


def comparable(result):
    d = result.to_dict()
    d.pop("run_id")
    d["steps"] = {k: {f: x for f, x in r.items() if f not in TIMESTAMPS} for k, r in d["steps"].items()}
    return d


def reference_engines():
    world = durable.MemoryWorld()
    return get_engine("default"), get_engine("codegen", world=world)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_same_results_as_default_and_codegen(case, engine):
    wf, inp, expected = CASES[case]
    W.ACTIVE.update(now=0, max=0)
    result = await engine.run(wf, input_data=inp, initial_state={"s": 1},
                              request_context={"tenant": "acme"})
    assert result.status == "success", result.error
    assert result.result == expected
    if case == "foreach":
        assert 1 <= W.ACTIVE["max"] <= 3  # concurrency 3 holds across activities
    if case in ("dountil", "dowhile"):
        assert result.steps[next(iter(result.steps))].metadata == {"iteration_count": 5}
    for ref in reference_engines():
        other = await ref.run(wf, input_data=inp, initial_state={"s": 1},
                              request_context={"tenant": "acme"})
        assert comparable(result) == comparable(other), ref.name


async def test_suspend_and_resume_by_signal(engine):
    first = await engine.run(W.suspend_resume, input_data=v(3))
    assert first.status == "suspended"
    assert first.suspended == [["approve"]]
    assert first.steps["approve"].suspend_payload == {"ask": "approve 4?"}
    assert first.steps["add_one"].output == v(4)
    done = await engine.resume(W.suspend_resume, first.run_id, step="approve", resume_data={"ok": True})
    assert done.status == "success", done.error
    assert done.result == {"done": True, "value": 4}
    assert done.steps["approve"].status == "success"
    assert done.steps["approve"].resume_payload == {"ok": True}
    assert done.steps["approve"].suspend_payload == {"ask": "approve 4?"}
    assert done.steps["approve"].output == {"value": 4, "approved": True}
    # the same records as the codegen engine
    ref = get_engine("codegen", world=durable.MemoryWorld())
    r1 = await ref.run(W.suspend_resume, input_data=v(3))
    r2 = await ref.resume(W.suspend_resume, r1.run_id, step="approve", resume_data={"ok": True})
    assert comparable(first) == comparable(r1)
    assert comparable(done) == comparable(r2)


async def test_resume_of_a_finished_run_is_refused(engine):
    done = await engine.run(W.sequential, input_data=v(1))
    assert done.status == "success"
    from flow.errors import FlowError

    with pytest.raises(FlowError, match="no suspended step to resume"):
        await engine.resume(W.sequential, done.run_id, step="add_one", resume_data={})


# --- flow's precedence in a parallel entry: failed > suspended > success ---------------------
async def _ask(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"q": ctx.input_data["value"]})
        return None
    return ctx.input_data


async def _fail_late(ctx):
    await asyncio.sleep(0.05)  # fails after its sibling has suspended
    raise RuntimeError("sibling failed")


_after = create_step("after", lambda c: c.input_data)
_ok = create_step("ok", lambda c: {"ok": c.input_data["value"]})
suspend_then_fail = (create_workflow(id="t_suspend_then_fail")
                     .parallel([create_step("ask", _ask), create_step("bad", _fail_late), _ok])
                     .then(_after).commit())
suspend_and_ok = (create_workflow(id="t_suspend_and_ok")
                  .parallel([create_step("ask", _ask), _ok]).then(_after).commit())


async def test_a_failed_sibling_beats_a_suspended_one(engine):
    result = await asyncio.wait_for(engine.run(suspend_then_fail, input_data=v(1)), 30)
    assert result.status == "failed"
    assert type(result.error) is RuntimeError and str(result.error) == "sibling failed"
    assert result.suspended == []
    assert {k: r.status for k, r in result.steps.items()} == {
        "ask": "suspended", "bad": "failed", "ok": "success"}
    assert "after" not in result.steps


async def test_a_suspended_sibling_beats_success(engine):
    result = await engine.run(suspend_and_ok, input_data=v(1))
    assert result.status == "suspended"
    assert result.suspended == [["ask"]]
    assert result.steps["ok"].output == {"ok": 1}
    done = await engine.resume(suspend_and_ok, result.run_id, step="ask", resume_data={})
    assert done.status == "success"
    assert done.result == {"ask": v(1), "ok": {"ok": 1}}
