"""Snapshots: persistence points, incremental writes, resume by run id (also across processes),
and the clear errors for unknown runs and runs left `running`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import flow
from flow import (
    FlowError,
    MemorySnapshotStore,
    NotRecoverableError,
    SqliteSnapshotStore,
    StepContext,
    create_step,
    create_workflow,
)

HERE = Path(__file__).parent


def _chain(n: int) -> flow.Workflow:
    wf = create_workflow(id=f"chain{n}")
    for i in range(n):
        wf.then(create_step(id=f"s{i}", execute=lambda ctx: {"v": ctx.input_data["v"] + 1}))
    return wf.commit()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_store_writes_are_linear_in_steps(kind: str, tmp_path: Path) -> None:
    def store() -> flow.SnapshotStore:
        if kind == "memory":
            return MemorySnapshotStore()
        return SqliteSnapshotStore(tmp_path / f"{len(list(tmp_path.iterdir()))}.db")

    counts = {}
    for n in (10, 20, 100):
        s = store()
        res = await _chain(n).create_run(store=s).start(input_data={"v": 0})
        assert res.result == {"v": n}
        counts[n] = (s.stats["writes"], s.stats["step_records_written"])
    per_step_writes = (counts[20][0] - counts[10][0]) / 10
    per_step_records = (counts[20][1] - counts[10][1]) / 10
    # each step: one write before (record running), one after (final record); each record once each
    assert per_step_writes == 2 and per_step_records == 2
    assert counts[100][0] - counts[10][0] == 90 * per_step_writes
    assert counts[100][1] - counts[10][1] == 90 * per_step_records


async def test_persistence_points_and_snapshot_content(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    seen: list[str] = []

    def spy(ctx: StepContext) -> dict[str, Any]:
        snap = store.load("w", "r1")
        assert snap is not None
        seen.append(f"{snap.status}:{snap.steps['b'].status}")
        return {"ok": True}

    wf = (create_workflow(id="w").then(create_step(id="a", execute=lambda c: {"x": 1}))
          .sleep(0).then(create_step(id="b", execute=spy)).commit())
    run = wf.create_run(run_id="r1", store=store)
    pending = store.load("w", "r1")
    assert pending is not None and pending.status == "pending" and pending.graph[1]["type"] == "sleep"
    res = await run.start(input_data={"in": 1}, initial_state={"k": 1})
    assert res.status == "success"
    assert seen == ["running:running"]
    snap = store.load("w", "r1")
    assert snap is not None
    assert snap.status == "success" and snap.result == {"ok": True} and snap.input == {"in": 1}
    assert list(snap.steps) == ["a", "sleep_1", "b"]
    assert snap.steps["sleep_1"].to_dict()["output"] == {"x": 1}
    assert snap.state == {"k": 1}
    assert store.list_runs("w") == [("w", "r1", "success")]


async def test_failed_run_snapshot_keeps_error_dict(tmp_path: Path) -> None:
    def boom(ctx: StepContext) -> None:
        raise ZeroDivisionError("division by zero")

    store = SqliteSnapshotStore(tmp_path / "s.db")
    wf = create_workflow(id="w").then(create_step(id="a", execute=boom)).commit()
    await wf.create_run(run_id="r", store=store).start(input_data={})
    snap = store.load("w", "r")
    assert snap is not None and snap.status == "failed"
    assert flow.errors.error_to_dict(snap.error) == {"name": "ZeroDivisionError",
                                                     "message": "division by zero"}
    assert snap.steps["a"].to_dict()["error"] == {"name": "ZeroDivisionError",
                                                  "message": "division by zero"}


@pytest.mark.parametrize("kind", ["memory", "sqlite", "none"])
async def test_resume_by_run_id_with_a_new_run_object(kind: str, tmp_path: Path) -> None:
    store: flow.SnapshotStore | None = None
    if kind == "memory":
        store = MemorySnapshotStore()
    elif kind == "sqlite":
        store = SqliteSnapshotStore(tmp_path / "s.db")
    calls: list[str] = []

    def first(ctx: StepContext) -> dict[str, int]:
        calls.append("first")
        return {"n": 1}

    def gate(ctx: StepContext) -> Any:
        calls.append("gate")
        if ctx.resume_data is None:
            ctx.suspend({"need": "n"})
            return None
        return {"n": ctx.input_data["n"] + ctx.resume_data["add"]}

    wf = (create_workflow(id="w").then(create_step(id="first", execute=first))
          .then(create_step(id="gate", execute=gate)).commit())
    res = await wf.create_run(run_id="r9", store=store).start(input_data={})
    assert res.status == "suspended" and res.suspended == [["gate"]]
    res2 = await wf.create_run(run_id="r9", store=store).resume(resume_data={"add": 5})
    assert res2.status == "success" and res2.result == {"n": 6}
    assert calls == ["first", "gate", "gate"]
    assert res2.steps["gate"].payload == {"n": 1}
    assert res2.steps["gate"].resume_payload == {"add": 5}
    assert res2.steps["gate"].suspend_payload == {"need": "n"}
    if store is not None:
        with pytest.raises(FlowError, match="This workflow run was not suspended"):
            await wf.create_run(run_id="r9", store=store).resume(step="gate", resume_data={})
    else:  # without a store a finished run is forgotten
        with pytest.raises(FlowError, match="No snapshot found for this workflow run: w r9"):
            await wf.create_run(run_id="r9").resume(step="gate", resume_data={})


async def test_unknown_run_id_is_a_clear_error(tmp_path: Path) -> None:
    wf = create_workflow(id="w").then(create_step(id="a", execute=lambda c: 1)).commit()
    for store in (None, MemorySnapshotStore(), SqliteSnapshotStore(tmp_path / "s.db")):
        with pytest.raises(FlowError) as info:
            await wf.create_run(run_id="ghost", store=store).resume(resume_data={})
        msg = str(info.value)
        assert msg.startswith("No snapshot found for this workflow run: w ghost")
        assert "\n" not in msg


async def test_run_left_running_is_not_recoverable(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    wf = create_workflow(id="w").then(create_step(id="a", execute=lambda c: 1)).commit()
    # what a process that died mid-step leaves behind
    store.create(flow.RunSnapshot(workflow_id="w", run_id="dead"))
    store.write("w", "dead", {"status": "running", "input": {}},
                {"a": flow.StepResult(status="running", payload={}, started_at=1.0)})
    run = wf.create_run(run_id="dead", store=SqliteSnapshotStore(tmp_path / "s.db"))
    with pytest.raises(NotRecoverableError, match="not durable against crashes"):
        await run.resume(resume_data={})
    with pytest.raises(NotRecoverableError, match="cannot recover it"):
        run.restart()


async def test_cancel_marks_suspended_run_canceled(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    wf = (create_workflow(id="w")
          .then(create_step(id="a", execute=lambda c: c.suspend() and None)).commit())
    run = wf.create_run(run_id="c", store=store)
    assert (await run.start(input_data={})).status == "suspended"
    await run.cancel()
    snap = store.load("w", "c")
    assert snap is not None and snap.status == "canceled"
    with pytest.raises(FlowError, match="This workflow run was not suspended"):
        await wf.create_run(run_id="c", store=store).resume(step="a")


@pytest.mark.slow
def test_suspend_in_one_process_resume_in_another(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    script = str(HERE / "suspend_proc.py")
    first = subprocess.run([sys.executable, script, "start", db, "run-42"],
                           capture_output=True, text=True, timeout=120, check=True)
    started = json.loads(first.stdout)
    assert started["status"] == "suspended"
    assert started["suspended"] == [["approve"]]
    second = subprocess.run([sys.executable, script, "resume", db, "run-42"],
                            capture_output=True, text=True, timeout=120, check=True)
    done = json.loads(second.stdout)
    assert done["status"] == "success", done
    # resume_schema default applied ("by"), request context restored from the snapshot
    assert done["result"] == {"amount": 42, "approved": True, "by": "nobody", "tenant": "acme",
                              "done": True}
    assert done["steps"]["approve"]["resume_payload"] == {"approved": True, "by": "nobody"}
    assert done["steps"]["approve"]["suspend_payload"] == {"ask": "approve 42?"}
    assert list(done["steps"]) == ["prepare", "mapping_1", "approve", "finish"]
