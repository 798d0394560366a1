"""The `temporal` engine's interface: failures, cancellation, a changed workflow, its own dev server,
and clear errors."""

from __future__ import annotations

import asyncio

import pytest

from engines import EngineError
from engines.temporal import engine as engine_mod
from engines.temporal.devserver import DevServer
from engines.temporal.engine import TemporalEngine
from flow import create_step, create_workflow
from flow.errors import RestoredError
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
    assert isinstance(result.error, RestoredError)
    assert result.error.name == "NondeterminismError"
    assert "now compiles to" in str(result.error)


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
