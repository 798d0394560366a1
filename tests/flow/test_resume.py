"""Suspend/resume through each kind of store (no store, memory, SQLite with a fresh Run object
per call): parallel double suspension, nested path, foreach by index and label, errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import flow
from flow import FlowError, StepContext, ValidationError, create_step, create_workflow


def _stores(tmp_path: Path) -> dict[str, Any]:
    return {"none": None, "memory": flow.MemorySnapshotStore(),
            "sqlite": flow.SqliteSnapshotStore(tmp_path / "s.db")}


KINDS = ["none", "memory", "sqlite"]


def _run(wf: flow.Workflow, store: Any, run_id: str) -> flow.Run:
    # a new Run object each time when a store is used (as another process would)
    if store is not None:
        return flow.Run(wf, run_id, store)
    return wf.create_run(run_id=run_id)


def _gate(sid: str, calls: Counter[str], factor: int = 1) -> flow.Step:
    def body(ctx: StepContext) -> Any:
        calls[sid] += 1
        if ctx.resume_data is None:
            ctx.suspend({"at": sid})
            return None
        return {"result": ctx.input_data["value"] * factor + ctx.resume_data["add"]}
    return create_step(id=sid, execute=body)


@pytest.mark.parametrize("kind", KINDS)
async def test_parallel_two_suspensions_resumed_one_at_a_time(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()
    wf = (create_workflow(id="w")
          .parallel([_gate("p1", calls, 2), _gate("p2", calls, 3)])
          .then(create_step(id="after", execute=lambda c: c.input_data)).commit())
    res = await _run(wf, store, "r").start(input_data={"value": 10})
    assert res.status == "suspended" and res.suspended == [["p1"], ["p2"]]
    with pytest.raises(FlowError, match=r'Multiple suspended steps found: \[p1\], \[p2\]\. '
                                        r'Please specify which step to resume using the "step"'):
        await _run(wf, store, "r").resume(resume_data={"add": 1})
    res = await _run(wf, store, "r").resume(step="p1", resume_data={"add": 1})
    assert res.status == "suspended" and res.suspended == [["p2"]]
    assert res.steps["p1"].status == "success"
    res = await _run(wf, store, "r").resume(resume_data={"add": 2})  # auto: only p2 left
    assert res.status == "success"
    assert res.result == {"p1": {"result": 21}, "p2": {"result": 32}}
    assert res.steps["after"].payload == {"p1": {"result": 21}, "p2": {"result": 32}}
    assert calls == Counter({"p1": 2, "p2": 2})


@pytest.mark.parametrize("kind", KINDS)
async def test_nested_suspend_path_and_resume(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()
    count = create_step(id="count", execute=lambda c: calls.update(["count"]) or {"value": 1})
    inner = create_workflow(id="inner").then(_gate("step", calls)).commit()
    middle = create_workflow(id="middle").then(inner).commit()
    outer = (create_workflow(id="outer").then(count).then(middle)
             .then(create_step(id="tail", execute=lambda c: {"final": c.input_data})).commit())
    res = await _run(outer, store, "n").start(input_data={})
    assert res.status == "suspended"
    assert res.suspended == [["middle", "inner", "step"]]
    meta = res.steps["middle"].suspend_payload["__workflow_meta"]
    assert meta["path"] == ["inner", "step"]
    assert res.steps["middle"].suspend_payload["at"] == "step"
    res = await _run(outer, store, "n").resume(step=res.suspended[0], resume_data={"add": 5})
    assert res.status == "success", res.error
    assert res.result == {"final": {"result": 6}}
    assert calls == Counter({"count": 1, "step": 2})


@pytest.mark.parametrize("kind", KINDS)
async def test_nested_resume_by_outer_id_only(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()
    inner = create_workflow(id="inner").then(_gate("step", calls)).commit()
    outer = create_workflow(id="outer").then(inner).commit()
    res = await _run(outer, store, "n").start(input_data={"value": 1})
    assert res.suspended == [["inner", "step"]]
    res = await _run(outer, store, "n").resume(step="inner", resume_data={"add": 1})
    assert res.status == "success" and res.result == {"result": 2}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("by", ["index", "label"])
async def test_foreach_resume_by_index_and_label(kind: str, by: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()

    def item(ctx: StepContext) -> Any:
        calls["item"] += 1
        if ctx.resume_data is None:
            ctx.suspend({"i": ctx.input_data["value"]}, resume_label=f"label-{ctx.input_data['value']}")
            return None
        return {"value": ctx.input_data["value"] + ctx.resume_data["add"]}

    wf = (create_workflow(id="w")
          .foreach(create_step(id="each", execute=item), concurrency=3).commit())
    items = [{"value": 0}, {"value": 1}, {"value": 2}]
    res = await _run(wf, store, "f").start(input_data=items)
    assert res.status == "suspended" and res.suspended == [["each"]] and calls["item"] == 3

    async def resume(i: int, add: int) -> flow.WorkflowResult:
        run = _run(wf, store, "f")
        if by == "index":
            return await run.resume(resume_data={"add": add}, for_each_index=i)
        return await run.resume(resume_data={"add": add}, label=f"label-{i}")

    res = await resume(2, 100)
    assert res.status == "suspended" and calls["item"] == 4
    res = await resume(0, 10)
    assert res.status == "suspended" and calls["item"] == 5
    res = await resume(1, 20)
    assert res.status == "success" and calls["item"] == 6
    assert res.result == [{"value": 10}, {"value": 21}, {"value": 102}]
    assert res.steps["each"].payload == items
    assert res.steps["each"].resume_payload == {"add": 20}


@pytest.mark.parametrize("kind", KINDS)
async def test_resume_errors(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()

    class R(BaseModel):
        add: int

    gate = create_step(id="gate", execute=_gate("gate", calls).execute, resume_schema=R)
    other = create_step(id="other", execute=lambda c: c.input_data)
    wf = create_workflow(id="w").then(other).then(gate).commit()
    res = await _run(wf, store, "e").start(input_data={"value": 1})
    assert res.status == "suspended"
    with pytest.raises(FlowError, match=r'^This workflow step "other" was not suspended\. '
                                        r"Available suspended steps: \[gate\]$"):
        await _run(wf, store, "e").resume(step=other, resume_data={"add": 1})
    with pytest.raises(ValidationError, match=r"^Invalid resume data: \n- add: "):
        await _run(wf, store, "e").resume(step="gate", resume_data={})
    with pytest.raises(FlowError, match='Resume label "nope" not found'):
        await _run(wf, store, "e").resume(label="nope", resume_data={"add": 1})
    # still suspended after the bad attempts
    res = await _run(wf, store, "e").resume(step=[gate], resume_data={"add": 2})
    assert res.status == "success" and res.result == {"result": 3}
    if store is not None:
        with pytest.raises(FlowError, match="^This workflow run was not suspended$"):
            await _run(wf, store, "e").resume(step="gate", resume_data={"add": 1})
        with pytest.raises(FlowError, match="^No suspended steps found in this workflow run$"):
            await _run(wf, store, "e").resume(resume_data={"add": 1})


async def test_loop_suspend_resume_keeps_iteration(tmp_path: Path) -> None:
    store = flow.SqliteSnapshotStore(tmp_path / "s.db")

    def body(ctx: StepContext) -> Any:
        if ctx.input_data["value"] == 2 and ctx.resume_data is None:
            ctx.suspend({})
            return None
        return {"value": ctx.input_data["value"] + 1}

    wf = (create_workflow(id="w")
          .dountil(create_step(id="inc", execute=body), lambda c: c.input_data["value"] >= 5)
          .commit())
    res = await flow.Run(wf, "l", store).start(input_data={"value": 0})
    assert res.status == "suspended" and res.steps["inc"].metadata == {"iteration_count": 3}
    res = await flow.Run(wf, "l", store).resume(resume_data={"go": True})
    assert res.status == "success" and res.result == {"value": 5}
    assert res.steps["inc"].metadata == {"iteration_count": 5}


@pytest.mark.parametrize("kind", KINDS)
async def test_branch_suspension_resumes_into_that_branch(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()
    conds: Counter[str] = Counter()

    def cond(name: str, result: bool) -> Any:
        def check(ctx: StepContext) -> bool:
            conds[name] += 1
            return result
        return check

    wf = (create_workflow(id="w")
          .branch([(cond("no", False), _gate("never", calls)),
                   (cond("yes", True), _gate("chosen", calls, 2))])
          .then(create_step(id="after", execute=lambda c: c.input_data)).commit())
    res = await _run(wf, store, "b").start(input_data={"value": 4})
    assert res.status == "suspended" and res.suspended == [["chosen"]]
    res = await _run(wf, store, "b").resume(resume_data={"add": 1})
    assert res.status == "success"
    assert res.result == {"chosen": {"result": 9}}
    assert conds == Counter({"no": 1, "yes": 1})  # conditions are not re-evaluated on resume
    assert calls == Counter({"chosen": 2})


@pytest.mark.parametrize("kind", KINDS)
async def test_nested_workflow_in_parallel_suspends_and_resumes(kind: str, tmp_path: Path) -> None:
    store = _stores(tmp_path)[kind]
    calls: Counter[str] = Counter()
    inner = create_workflow(id="inner").then(_gate("deep", calls)).commit()
    wf = (create_workflow(id="w")
          .parallel([inner, create_step(id="side", execute=lambda c: {"side": True})]).commit())
    res = await _run(wf, store, "p").start(input_data={"value": 1})
    assert res.suspended == [["inner", "deep"]]
    assert res.steps["side"].status == "success"
    res = await _run(wf, store, "p").resume(step=["inner", "deep"], resume_data={"add": 1})
    assert res.status == "success"
    assert res.result == {"inner": {"result": 2}, "side": {"side": True}}
