"""`run.stream()`: the event sequence of reference 4.4."""

from __future__ import annotations

from typing import Any

from flow import StepContext, create_step, create_workflow


def _s(sid: str, out: Any) -> Any:
    return create_step(id=sid, execute=lambda ctx: out)


async def _collect(stream: Any) -> list[dict[str, Any]]:
    return [event async for event in stream]


async def test_two_step_stream_has_six_events_in_order() -> None:
    wf = (create_workflow(id="w").then(_s("step1", {"result": "success1"}))
          .then(_s("step2", {"result": "success2"})).commit())
    run = wf.create_run(run_id="test-run-id")
    stream = run.stream(input_data={})
    events = await _collect(stream)
    assert [(e["type"], e["payload"].get("id")) for e in events] == [
        ("workflow-start", None),
        ("workflow-step-start", "step1"),
        ("workflow-step-result", "step1"),
        ("workflow-step-start", "step2"),
        ("workflow-step-result", "step2"),
        ("workflow-finish", None),
    ]
    assert all(e["run_id"] == "test-run-id" and e["from"] == "WORKFLOW" for e in events)
    assert events[1]["payload"]["payload"] == {}
    assert events[2]["payload"]["output"] == {"result": "success1"}
    assert events[2]["payload"]["status"] == "success"
    assert events[3]["payload"]["payload"] == {"result": "success1"}
    assert events[5]["payload"]["workflow_status"] == "success"
    assert events[5]["payload"]["metadata"] == {}
    res = await stream.result()
    assert res.status == "success" and res.result == {"result": "success2"}


async def test_sleep_adds_waiting_and_result() -> None:
    wf = (create_workflow(id="w").then(_s("step1", {"result": "success1"})).sleep(0.001)
          .then(_s("step2", {"result": "success2"})).commit())
    events = await _collect(wf.create_run().stream(input_data={}))
    assert len(events) == 8
    waiting, slept = events[3], events[4]
    assert waiting["type"] == "workflow-step-waiting"
    assert waiting["payload"]["id"] == "sleep_1" and waiting["payload"]["status"] == "waiting"
    assert waiting["payload"]["payload"] == {"result": "success1"}
    assert slept["type"] == "workflow-step-result"
    assert slept["payload"]["output"] == {"result": "success1"}


async def test_suspend_failure_and_writer_events() -> None:
    async def talk(ctx: StepContext) -> None:
        await ctx.writer.write({"progress": 50})
        if ctx.resume_data is None:
            await ctx.suspend({"ask": "why"})

    wf = create_workflow(id="w").then(create_step(id="talk", execute=talk)).commit()
    run = wf.create_run()
    stream = run.stream(input_data={})
    events = await _collect(stream)
    assert [e["type"] for e in events] == ["workflow-start", "workflow-step-start",
                                           "workflow-step-output", "workflow-step-suspended",
                                           "workflow-finish"]
    assert events[2]["from"] == "USER"
    assert events[2]["payload"] == {"output": {"progress": 50}, "run_id": run.run_id,
                                    "step_name": "talk"}
    assert events[3]["payload"]["suspend_payload"] == {"ask": "why"}
    assert events[4]["payload"]["workflow_status"] == "suspended"

    resumed = await _collect(run.resume_stream(resume_data={"ok": 1}))
    assert [e["type"] for e in resumed][0] == "workflow-start"
    assert resumed[-1]["payload"]["workflow_status"] == "success"

    def boom(ctx: StepContext) -> None:
        raise RuntimeError("nope")

    wf2 = create_workflow(id="w2").then(create_step(id="b", execute=boom)).commit()
    ev2 = await _collect(wf2.create_run().stream(input_data={}))
    assert ev2[2]["payload"]["status"] == "failed"
    assert ev2[-1]["payload"]["metadata"]["error_message"] == "nope"


async def test_nested_events_are_prefixed_and_foreach_emits_once() -> None:
    inner = create_workflow(id="inner").then(_s("x", 1)).commit()
    wf = (create_workflow(id="w").then(inner).then(_s("list", [1, 2, 3]))
          .foreach(create_step(id="each", execute=lambda c: c.input_data), concurrency=2).commit())
    events = await _collect(wf.create_run().stream(input_data={}))
    ids = [(e["type"], e["payload"].get("id")) for e in events[1:-1]]
    assert ids == [
        ("workflow-step-start", "inner"),
        ("workflow-step-start", "inner.x"),
        ("workflow-step-result", "inner.x"),
        ("workflow-step-result", "inner"),
        ("workflow-step-start", "list"),
        ("workflow-step-result", "list"),
        ("workflow-step-start", "each"),
        ("workflow-step-result", "each"),
    ]
