"""A nested workflow as the body of a foreach whose step suspends (reference 3.7 + 3.10, C11, C21).

Each item runs its own nested run, so items that suspend keep apart: the foreach record is
suspended, the run lists `[[nested id, inner step]]` (the nested path, 3.10 point 6), and
`resume(for_each_index=i)` (C11) resumes item i's inner step only; the other items' inner steps
are not re-run. Checked without a store, with the memory store and with SQLite (a fresh Run object
per call, as another process would).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import flow
from flow import StepContext, create_step, create_workflow

KINDS = ["none", "memory", "sqlite"]


def _store(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return flow.MemorySnapshotStore()
    if kind == "sqlite":
        return flow.SqliteSnapshotStore(tmp_path / "s.db")
    return None


def _run(wf: flow.Workflow, store: Any, run_id: str) -> flow.Run:
    if store is not None:
        return flow.Run(wf, run_id, store)
    return wf.create_run(run_id=run_id)


def _workflows(calls: Counter[str], concurrency: int) -> flow.Workflow:
    def before(ctx: StepContext) -> Any:
        calls[f"before-{ctx.input_data}"] += 1
        return {"n": ctx.input_data}

    def ask(ctx: StepContext) -> Any:
        n = ctx.input_data["n"]
        calls[f"ask-{n}"] += 1
        if ctx.resume_data is None:
            return ctx.suspend({"item": n})
        return {"n": n, "answer": ctx.resume_data["answer"]}

    inner = (create_workflow(id="inner")
             .then(create_step(id="before", execute=before))
             .then(create_step(id="ask", execute=ask))
             .commit())
    return create_workflow(id="outer").foreach(inner, concurrency=concurrency).commit()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("concurrency", [1, 3])
async def test_foreach_of_nested_workflow_resumes_each_item_by_index(
        kind: str, concurrency: int, tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    wf = _workflows(calls, concurrency)
    store = _store(kind, tmp_path)
    r = await _run(wf, store, "r1").start(input_data=[1, 2, 3])
    assert r.status == "suspended"
    assert r.steps["inner"].status == "suspended"
    assert r.suspended == [["inner", "ask"]]
    assert calls == Counter({"before-1": 1, "before-2": 1, "before-3": 1,
                             "ask-1": 1, "ask-2": 1, "ask-3": 1})

    r = await _run(wf, store, "r1").resume(resume_data={"answer": "b"}, for_each_index=1)
    assert r.status == "suspended"
    r = await _run(wf, store, "r1").resume(step=["inner", "ask"], resume_data={"answer": "c"},
                                           for_each_index=2)
    assert r.status == "suspended"
    r = await _run(wf, store, "r1").resume(resume_data={"answer": "a"}, for_each_index=0)
    assert r.status == "success"
    assert r.result == [{"n": 1, "answer": "a"}, {"n": 2, "answer": "b"},
                        {"n": 3, "answer": "c"}]
    assert r.steps["inner"].output == r.result
    # each inner step ran once to suspend and once on its own resume; `before` never again
    assert calls == Counter({"before-1": 1, "before-2": 1, "before-3": 1,
                             "ask-1": 2, "ask-2": 2, "ask-3": 2})


@pytest.mark.parametrize("kind", KINDS)
async def test_plain_resume_targets_the_first_suspended_item(kind: str, tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    wf = _workflows(calls, 2)
    store = _store(kind, tmp_path)
    await _run(wf, store, "r2").start(input_data=[7, 8])
    r = await _run(wf, store, "r2").resume(resume_data={"answer": "x"})
    assert r.status == "suspended"
    meta = r.steps["inner"].suspend_payload["__workflow_meta"]
    assert meta["foreach_status"] == ["success", "suspended"]
    assert meta["foreach_output"] == [{"n": 7, "answer": "x"}, None]
    r = await _run(wf, store, "r2").resume(resume_data={"answer": "y"})
    assert r.status == "success"
    assert r.result == [{"n": 7, "answer": "x"}, {"n": 8, "answer": "y"}]
