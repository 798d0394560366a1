"""Generated Temporal workflows are deterministic: the history of a finished run replays with
Temporal's own Replayer (in the sandbox) without a NondeterminismError."""

from __future__ import annotations

import pytest
from temporalio.worker import Replayer

from engines.temporal.compiler import program_for
from engines.temporal.worker import sandbox_runner
from tests.engines import engine_workflows as W

pytestmark = pytest.mark.temporal


@pytest.mark.parametrize("name", ["orders", "parallel", "foreach", "dynamic_sleep", "suspend_resume"])
async def test_history_replays(name, engine):
    wf = getattr(W, name)
    inp = {"lines": ["a", "bb", "ccc"], "express": True} if name == "orders" else (
        [1, 2, 3, 4] if name == "foreach" else {"value": 3})
    result = await engine.run(wf, input_data=inp)
    if name == "suspend_resume":
        result = await engine.resume(wf, result.run_id, step="approve", resume_data={"ok": True})
    assert result.status == "success", result.error
    client = await engine.client()
    history = await client.get_workflow_handle(result.run_id).fetch_history()
    replayer = Replayer(workflows=[program_for(wf).workflow_class], workflow_runner=sandbox_runner())
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
