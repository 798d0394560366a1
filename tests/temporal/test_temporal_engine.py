"""The `temporal` engine's interface: failures, cancellation, a changed workflow, its own dev server,
and clear errors."""

from __future__ import annotations

import asyncio

import pytest

from engines import EngineError
from engines.temporal import engine as engine_mod
from engines.temporal.compiler import program_for
from engines.temporal.devserver import DevServer
from engines.temporal.engine import TemporalEngine
from engines.temporal.runtime import WorkflowChanged
from flow import create_step, create_workflow
from tests.engines import engine_workflows as W

pytestmark = pytest.mark.temporal


class CardDeclined(Exception):
    pass


def _decline(ctx):
    raise CardDeclined("card 4242 declined")


charge = create_step("charge", _decline)
after = create_step("after", lambda ctx: {"never": True})
failing = create_workflow(id="temporal-failing").then(W.add_one).then(charge).then(after).commit()


async def test_a_failing_step_fails_the_run_with_its_own_exception(engine):
    result = await engine.run(failing, input_data={"value": 1})
    assert result.status == "failed"
    assert isinstance(result.error, CardDeclined)  # the worker ran in this process
    assert str(result.error) == "card 4242 declined"
    assert result.steps["add_one"].status == "success"
    assert result.steps["charge"].status == "failed"
    assert "after" not in result.steps
    # the Temporal execution itself is failed, with the flow result as the failure's details
    client = await engine.client()
    desc = await client.get_workflow_handle(result.run_id).describe()
    assert desc.status.name == "FAILED"


async def test_cancel_ends_the_run_canceled(engine):
    wf = create_workflow(id="temporal-cancel").then(W.add_one).sleep(30).then(W.double).commit()
    run = asyncio.ensure_future(engine.run(wf, input_data={"value": 1}, run_id="cancel-me"))
    client = await engine.client()
    handle = client.get_workflow_handle("cancel-me")
    for _ in range(200):  # until the run sleeps (its sleep record exists)
        await asyncio.sleep(0.05)
        try:
            state = await handle.query("result")
        except Exception:
            continue
        if "sleep_1" in (state.get("steps") or {}):
            break
    await engine.cancel(wf, "cancel-me")
    result = await asyncio.wait_for(run, 30)
    assert result.status == "canceled"
    assert result.steps["add_one"].status == "success"
    assert "double" not in result.steps
    assert (await handle.describe()).status.name == "CANCELED"


async def test_a_run_whose_workflow_changed_fails_with_nondeterminism(engine):
    # a run of an older graph of `sequential` (another hash) reaches a worker whose target now
    # compiles to a different type: it fails instead of retrying its workflow task for ever
    engine.program(W.sequential, "tests.engines.engine_workflows:sequential")
    client = await engine.client()
    await client.start_workflow(
        "wfbench:sequential@000000000000",
        {"target": "tests.engines.engine_workflows:sequential", "input_data": {"value": 1}},
        id="changed-graph", task_queue=engine.task_queue)
    result = await asyncio.wait_for(engine.recover(W.sequential, "changed-graph"), 30)
    assert result.status == "failed"
    # durable's class, as a codegen run of a changed workflow fails (not a RestoredError)
    assert type(result.error).__name__ == "NondeterminismError"
    assert type(result.error).__module__.startswith("durable")
    assert str(result.error) == changed_message(
        "wfbench:sequential@000000000000", program_for(W.sequential).type_name)
    assert result.steps == {}  # no step of the old run ran with the new code


def changed_message(old_type: str, new_type: str) -> str:
    """The text written in runtime.WorkflowChanged.of, by hand."""
    return (f"run of workflow type '{old_type}' cannot be served: workflow 'sequential' now "
            f"compiles to '{new_type}' (the workflow changed; the run's history cannot be "
            "replayed with it)")


def test_a_fresh_worker_names_a_changed_workflow_the_same_way():
    # the path of a standalone worker that has not compiled the workflow yet: it rebuilds the
    # program from the run's target and finds another type
    from engines.temporal.compiler import load_program

    with pytest.raises(WorkflowChanged) as info:
        load_program("wfbench:sequential@000000000000", "tests.engines.engine_workflows:sequential")
    assert str(info.value) == changed_message("wfbench:sequential@000000000000",
                                              program_for(W.sequential).type_name)
    assert program_for(W.sequential).type_name.startswith("wfbench:sequential@")


async def test_without_an_address_the_engine_starts_a_local_dev_server(monkeypatch):
    monkeypatch.delenv("WFBENCH_TEMPORAL_ADDRESS", raising=False)
    monkeypatch.setattr(engine_mod, "_LOCAL", {})
    eng = TemporalEngine(task_queue="local-dev-server")
    try:
        result = await eng.run(W.sequential, input_data={"value": 3})
        assert result.status == "success"
        assert result.result == {"value": 64}
        server = engine_mod._LOCAL["server"]
        assert server.address.startswith("127.0.0.1:")
    finally:
        if "server" in engine_mod._LOCAL:
            engine_mod._LOCAL["server"].stop()


def test_a_missing_binary_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("WFBENCH_TEMPORAL_BIN", str(tmp_path / "no-such-temporal"))
    with pytest.raises(EngineError, match="WFBENCH_TEMPORAL_BIN=.*is not an executable file"):
        DevServer.start()


async def test_a_bad_address_is_named():
    eng = TemporalEngine(temporal_address="127.0.0.1:1", task_queue="nowhere")
    with pytest.raises(EngineError, match="cannot connect to the Temporal server at '127.0.0.1:1'"):
        await asyncio.wait_for(eng.run(W.sequential, input_data={"value": 1}), 60)


def _forget_live_run(ctx):
    from engines.temporal.runtime import LIVE

    LIVE.pop(ctx.run_id)  # as if the workflow ran in another worker process
    return ctx.input_data


async def test_step_results_come_from_the_workflow_when_it_runs_elsewhere(engine):
    from engines.temporal.runtime import LIVE

    reader = create_step("reader", lambda ctx: {
        "first": ctx.get_step_result("add_one"), "init": ctx.get_init_data(),
        "missing": ctx.get_step_result("nope"), "live_here": ctx.run_id in LIVE})
    wf = (create_workflow(id="temporal-remote-results").then(W.add_one)
          .then(create_step("forget", _forget_live_run)).then(reader).commit())
    result = await engine.run(wf, input_data={"value": 1})
    assert result.status == "success", result.error
    assert result.result == {"first": {"value": 2}, "init": {"value": 1}, "missing": None,
                             "live_here": False}


async def test_local_activities_give_the_same_results(temporal_server, task_queue):
    eng = TemporalEngine(temporal_address=temporal_server.address, task_queue=task_queue,
                         local_activities=True)
    async with eng:
        assert (await eng.run(W.nested, input_data={"value": 3})).result == {"value": 100}
        assert (await eng.run(W.foreach, input_data=[1, 2, 3])).result == [1, 4, 9]
        first = await eng.run(W.suspend_resume, input_data={"value": 3})
        assert first.status == "suspended"
        done = await eng.resume(W.suspend_resume, first.run_id, step="approve",
                                resume_data={"ok": True})
        assert done.result == {"done": True, "value": 4}
        failed = await eng.run(failing, input_data={"value": 1})
        assert failed.status == "failed"
        assert isinstance(failed.error, CardDeclined)
        client = await eng.client()
        history = await client.get_workflow_handle(done.run_id).fetch_history()
        kinds = {e.WhichOneof("attributes") for e in history.events}
        assert "marker_recorded_event_attributes" in kinds  # local activities are markers
        assert "activity_task_scheduled_event_attributes" not in kinds
