"""Codegen runs: tracebacks through the generated file, injection-safe ids at run time, and
flow's semantics for errors, retries, bail, abort, state and request context (equal to default)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

import durable
from engines import get_engine
from engines.codegen.program import program_for
from flow import create_step, create_workflow
from flow.errors import FlowError


@pytest.fixture
def world():
    return durable.MemoryWorld()


def _eng(name, world):
    return get_engine(name, world=world) if name.startswith("codegen") else get_engine(name)


def explode(ctx):
    raise ValueError(f"boom at {ctx.input_data['value']}")


async def test_traceback_names_generated_file_and_line(world):
    wf = (create_workflow(id="tb").then(create_step("ok", lambda c: c.input_data))
          .then(create_step("explode", explode)).commit())
    result = await get_engine("codegen", world=world).run(wf, input_data={"value": 7})
    assert result.status == "failed"
    assert isinstance(result.error, ValueError) and str(result.error) == "boom at 7"
    assert result.steps["explode"].status == "failed"
    compiled = program_for(wf).compiled
    text = "".join(traceback.format_exception(result.error))
    lineno = compiled.source.splitlines().index("    r = await use_step('explode')(prev)") + 1
    assert f'File "{compiled.filename}", line {lineno}, in workflow_tb' in text
    assert "r = await use_step('explode')(prev)" in text  # the generated line, via linecache
    assert "in explode" in text  # and the step's own frame


INJECTION = 'x"); import os; os.system("echo pwned'


async def test_injected_step_id_runs_as_data(world, tmp_path: Path, capfd):
    marker = tmp_path / "pwned"
    evil = f'x"); import os; os.system("touch {marker}'
    wf = (create_workflow(id=evil + "_wf")
          .then(create_step(INJECTION, lambda c: {"value": c.input_data["value"] + 1}))
          .then(create_step(evil, lambda c: {"value": c.input_data["value"] * 2}))
          .map({evil: {"step": evil, "path": "value"}}, id=evil + "_map")
          .commit())
    result = await get_engine("codegen", world=world).run(wf, input_data={"value": 1})
    assert result.status == "success"
    assert result.result == {evil: 4}
    assert set(result.steps) == {INJECTION, evil, evil + "_map"}
    assert not marker.exists()
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_retries_then_success(engine_name, world):
    calls = []

    def flaky(ctx):
        calls.append(ctx.retry_count)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return {"attempts": len(calls)}

    wf = (create_workflow(id=f"retry_{engine_name}", retry_config={"attempts": 2, "delay": 0})
          .then(create_step("flaky", flaky)).commit())
    result = await _eng(engine_name, world).run(wf, input_data={})
    assert result.status == "success", result.error
    assert result.result == {"attempts": 3}
    assert calls == [0, 1, 2]  # retry_count counts attempts (reference 1.3)


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_retries_exhausted_fail_the_run(engine_name, world):
    calls = []

    def always(ctx):
        calls.append(1)
        raise KeyError("missing")

    wf = (create_workflow(id=f"fail_{engine_name}")
          .then(create_step("always", always, retries=1))
          .then(create_step("never", lambda c: 1)).commit())
    result = await _eng(engine_name, world).run(wf, input_data={"value": 1})
    assert result.status == "failed"
    assert isinstance(result.error, KeyError)
    assert len(calls) == 2
    assert {k: r.status for k, r in result.steps.items()} == {"always": "failed"}
    assert result.steps["always"].payload == {"value": 1}


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_bail_ends_the_run_successfully(engine_name, world):
    def early(ctx):
        return ctx.bail({"bailed": ctx.input_data["value"]}) or {"ignored": True}

    wf = (create_workflow(id=f"bail_{engine_name}").then(create_step("early", early))
          .then(create_step("later", lambda c: {"later": True})).commit())
    result = await _eng(engine_name, world).run(wf, input_data={"value": 5})
    assert result.status == "success"
    assert result.result == {"bailed": 5}
    assert {k: (r.status, r.output) for k, r in result.steps.items()} == {
        "early": ("success", {"bailed": 5})}


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_abort_cancels_after_the_step(engine_name, world):
    def stop(ctx):
        ctx.abort()
        return {"stopped": True}

    wf = (create_workflow(id=f"abort_{engine_name}").then(create_step("stop", stop))
          .then(create_step("later", lambda c: {"later": True})).commit())
    result = await _eng(engine_name, world).run(wf, input_data={})
    assert result.status == "canceled"
    assert {k: (r.status, r.output) for k, r in result.steps.items()} == {
        "stop": ("success", {"stopped": True})}


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_state_and_request_context(engine_name, world):
    def first(ctx):
        ctx.set_state({"count": ctx.state.get("count", 0) + 1})
        ctx.request_context.set("seen", ctx.request_context.get("user"))
        return {"value": 1}

    def second(ctx):
        ctx.set_state({"count": ctx.state["count"] + 10, "last": "second"})
        return {"count": ctx.state["count"], "seen": ctx.request_context.get("seen"),
                "first": ctx.get_step_result("first"), "init": ctx.get_init_data()}

    wf = (create_workflow(id=f"state_{engine_name}").then(create_step("first", first))
          .then(create_step("second", second)).commit())
    result = await _eng(engine_name, world).run(wf, input_data={"in": 1}, initial_state={"count": 5},
                                                request_context={"user": "ada"})
    assert result.status == "success", result.error
    assert result.result == {"count": 6, "seen": "ada", "first": {"value": 1}, "init": {"in": 1}}
    assert result.state == {"count": 16, "last": "second"}


@pytest.mark.parametrize("engine_name", ["default", "codegen", "stepmode"])
async def test_failing_loop_condition_fails_the_run(engine_name, world):
    def cond(ctx):
        raise ZeroDivisionError("bad condition")

    wf = (create_workflow(id=f"loopfail_{engine_name}")
          .dountil(create_step("body", lambda c: {"v": 1}), cond).commit())
    result = await _eng(engine_name, world).run(wf, input_data={})
    assert result.status == "failed"
    assert isinstance(result.error, ZeroDivisionError)
    assert result.steps["body"].status == "success"


async def test_resume_sent_before_the_step_suspends_is_kept(world):
    import asyncio

    from engine_workflows import suspend_resume

    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx):
        started.set()
        await release.wait()
        return {"value": ctx.input_data["value"] + 1}

    wf = (create_workflow(id="persistent").then(create_step("add_one", slow))
          .then(suspend_resume.steps["approve"]).commit())
    eng = get_engine("codegen", world=world)
    run = asyncio.ensure_future(eng.run(wf, input_data={"value": 1}, run_id="persist-1"))
    await started.wait()
    early = asyncio.ensure_future(eng.resume(wf, "persist-1", step="approve", resume_data={"ok": True}))
    await asyncio.sleep(0)
    release.set()
    first = await run
    assert first.status in ("suspended", "success")  # the resume may already have landed
    done = await early
    assert done.status == "success"
    assert done.result == {"value": 2, "approved": True}


async def test_closure_value_by_kind_shared_by_both_backends() -> None:
    """`closure_value` (used by the codegen and temporal backends) turns a closure's value into
    its journaled result by kind, and keeps a failure's exception for the body."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from engines.codegen import runtime as rt

    def cb(kind: str, fn: Any) -> Any:
        return SimpleNamespace(kind=kind, fn=fn, record_id="wf/entry1/x")

    def boom(ctx: Any) -> Any:
        raise ValueError("no")

    async def later(ctx: Any) -> int:
        return 0

    doc = rt.error_json
    key = ("run-cv", "", "wf/entry1/x")
    assert await rt.closure_value(cb("branch_condition", boom), None, key, doc) == {
        "kind": "branch_condition", "value": False}
    assert key not in rt._ERRORS  # a raising branch condition is false, not a failure
    assert await rt.closure_value(cb("loop_condition", later), None, key, doc) == {
        "kind": "loop_condition", "value": False}
    aware = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert await rt.closure_value(cb("sleep_until", lambda ctx: aware), None, key, doc) == {
        "kind": "sleep_until", "value": "2030-01-02T03:04:05+00:00"}
    out = await rt.closure_value(cb("sleep_until", lambda ctx: 5), None, key, doc)
    assert out["status"] == "failed" and "needs a datetime, got 5" in out["error"]["message"]
    assert isinstance(rt._ERRORS.pop(key), FlowError)
    out = await rt.closure_value(cb("loop_condition", boom), None, key, doc)
    assert out["status"] == "failed" and isinstance(rt._ERRORS.pop(key), ValueError)


@pytest.fixture
def tokyo_time(monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process's local time zone is UTC+9 for the test (restored afterwards)."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_a_naive_sleep_date_is_local_time_as_in_flow(tokyo_time: Any) -> None:
    """flow reads a naive `sleep_until` date as local time (Python's convention); codegen (and
    temporal, through `closure_value` and the compiler) write it out with the local offset."""
    from datetime import datetime
    from types import SimpleNamespace

    from engines.codegen import runtime as rt
    from engines.codegen.compiler import compile_workflow

    naive = datetime(2030, 1, 2, 3, 4, 5)
    got = await rt.closure_value(SimpleNamespace(kind="sleep_until", fn=lambda ctx: naive,
                                                 record_id="d"), None, ("r", "", "d"), rt.error_json)
    assert got == {"kind": "sleep_until", "value": "2030-01-02T03:04:05+09:00"}
    step = create_step(id="s", execute=lambda ctx: ctx.input_data)
    wf = create_workflow(id="tz-static").sleep_until(naive).then(step).commit()
    source = compile_workflow(wf, extra_globals={}).source
    assert "run.until('2030-01-02T03:04:05+09:00')" in source
