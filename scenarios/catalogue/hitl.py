"""Human-in-the-loop scenarios: suspend/resume, parallel and nested suspensions, foreach resumed
by index, WCP-16 deferred choice, WCP-24 persistent trigger.

Expectations from reference/mastra-semantics.md 1.3 (suspend), 3.2 (a resumed record keeps its
payload and suspend_payload and gains resume_payload), 3.4 (parallel: suspended paths per child),
3.7 (foreach resume by index), 3.10 (nested path), 4.3 and C18-C21. A suspending body records no
span: only the execution that does the work after a resume is traced, so counts are the same for
the Mastra and the native definitions."""

from __future__ import annotations

import time
from typing import Any

from flow import create_step, create_workflow
from scenarios.base import Expect, Scenario, StepExpect, TraceExpect
from scenarios.catalogue._util import present, tstep
from scenarios.trace import span

N = "scenarios.natives.hitl:"


def _waiting(id: str, payload: dict[str, Any], on_resume: Any) -> Any:
    """A step that suspends with `payload` until resumed, then records span `id` and returns
    `on_resume(ctx)`."""

    async def execute(ctx: Any) -> Any:
        if ctx.resume_data is None:
            await ctx.suspend(payload)
            return None
        with span(id):
            return on_resume(ctx)

    return create_step(id=id, execute=execute)


def _suspend_resume() -> Any:
    return (
        create_workflow(id="hitl-suspend-resume")
        .then(tstep("fetch", lambda c: {"item": c.input_data["item"]}))
        .then(_waiting("approve", {"ask": "approve report?"},
                       lambda c: {"approved": c.resume_data["approved"], "item": c.input_data["item"]}))
        .then(tstep("finish", lambda c: {"done": True, **c.input_data}))
        .commit()
    )


def _parallel_suspend() -> Any:
    return (
        create_workflow(id="hitl-parallel-suspend")
        .parallel([
            _waiting("p1", {"need": "mult"}, lambda c: {"result": c.input_data["value"] * c.resume_data["mult"]}),
            _waiting("p2", {"need": "div"}, lambda c: {"result": c.input_data["value"] // c.resume_data["div"]}),
        ])
        .commit()
    )


def _nested_suspend() -> Any:
    level_a = (
        create_workflow(id="level-a")
        .then(_waiting("ask", {"question": "meaning?"}, lambda c: {"answer": c.resume_data["answer"]}))
        .commit()
    )
    level_b = create_workflow(id="level-b").then(level_a).commit()
    return (
        create_workflow(id="hitl-nested-suspend")
        .then(tstep("prep", lambda c: {"q": "meaning?"}))
        .then(level_b)
        .then(tstep("done", lambda c: {"final": c.input_data["answer"]}))
        .commit()
    )


def _foreach_index() -> Any:
    return (
        create_workflow(id="hitl-foreach-resume-index")
        .then(tstep("items", lambda c: [{"value": n} for n in c.input_data["items"]]))
        .foreach(_waiting("approve-item", {"need": "add"},
                          lambda c: {"value": c.input_data["value"] + c.resume_data["add"]}),
                 concurrency=3)
        .commit()
    )


def _deferred_choice() -> Any:
    def decide_on_resume(ctx: Any) -> Any:
        # Lazy timeout: the deadline is only looked at when a resume arrives.
        late = time.time() > ctx.input_data["deadline"]
        return {"decision": "timeout" if late else "approved"}

    return (
        create_workflow(id="wcp16-deferred-choice")
        .then(tstep("offer", lambda c: {"deadline": time.time() + c.input_data["timeout"]}))
        .then(_waiting("decide", {"options": ["approve", "timeout"]}, decide_on_resume))
        .branch([
            (lambda c: c.input_data["decision"] == "approved", tstep("approved-path", lambda c: {"decision": "approved"})),
            (lambda c: c.input_data["decision"] == "timeout", tstep("timeout-path", lambda c: {"decision": "timeout"})),
        ])
        .commit()
    )


def _persistent_trigger() -> Any:
    return (
        create_workflow(id="wcp24-persistent-trigger")
        .then(tstep("slow-work", lambda c: {"ready": True}, delay=0.3))
        .then(_waiting("await-signal", {"waiting": "signal"}, lambda c: {"signal": c.resume_data["signal"]}))
        .then(tstep("after-signal", lambda c: present(c.input_data)))
        .commit()
    )


SCENARIOS: list[Scenario] = [
    Scenario(
        id="hitl-suspend-resume", title="Suspend, then resume with data", family="human-in-the-loop",
        workflow_factory=_suspend_resume, native_ref=N + "hitl_suspend_resume", input_data={"item": "report"},
        actions=(
            ("expect", {"status": "suspended", "suspended": [["approve"]]}),
            ("resume", {"step": "approve", "resume_data": {"approved": True}}),
        ),
        expect=Expect(
            status="success", result={"done": True, "approved": True, "item": "report"},
            steps={
                "fetch": StepExpect("success", output={"item": "report"}),
                "approve": StepExpect("success", output={"approved": True, "item": "report"},
                                      payload={"item": "report"}, suspend_payload={"ask": "approve report?"},
                                      resume_payload={"approved": True}),
            },
            trace=TraceExpect(runs={"fetch": 1, "approve": 1, "finish": 1},
                              before=(("fetch", "approve"), ("approve", "finish"))),
        ),
        notes="fetch must not run again after the resume.",
    ),
    Scenario(
        id="hitl-parallel-suspend", title="Two parallel suspensions resumed one at a time",
        family="human-in-the-loop", workflow_factory=_parallel_suspend, native_ref=N + "hitl_parallel_suspend",
        input_data={"value": 100},
        actions=(
            ("expect", {"status": "suspended", "suspended": [["p1"], ["p2"]]}),
            ("resume", {"step": "p1", "resume_data": {"mult": 2}}),
            ("expect", {"status": "suspended", "suspended": [["p2"]]}),
            ("resume", {"step": "p2", "resume_data": {"div": 5}}),
        ),
        expect=Expect(
            status="success", result={"p1": {"result": 200}, "p2": {"result": 20}},
            steps={"p1": StepExpect("success", output={"result": 200}, resume_payload={"mult": 2}),
                   "p2": StepExpect("success", output={"result": 20}, resume_payload={"div": 5})},
            trace=TraceExpect(runs={"p1": 1, "p2": 1}, before=(("p1", "p2"),)),
        ),
    ),
    Scenario(
        id="hitl-nested-suspend", title="Suspension inside two nested workflows (path)",
        family="human-in-the-loop", workflow_factory=_nested_suspend, native_ref=N + "hitl_nested_suspend",
        input_data={},
        actions=(
            ("expect", {"status": "suspended", "suspended": [["level-b", "level-a", "ask"]]}),
            ("resume", {"step": ["level-b", "level-a", "ask"], "resume_data": {"answer": 42}}),
        ),
        expect=Expect(
            status="success", result={"final": 42},
            steps={"level-b": StepExpect("success", output={"answer": 42}, payload={"q": "meaning?"}),
                   "prep": StepExpect("success", output={"q": "meaning?"})},
            trace=TraceExpect(runs={"prep": 1, "ask": 1, "done": 1}, before=(("prep", "ask"), ("ask", "done"))),
        ),
    ),
    Scenario(
        id="hitl-foreach-resume-index", title="foreach suspension resumed item by item (for_each_index)",
        family="human-in-the-loop", wcp=("WCP-14",), workflow_factory=_foreach_index,
        native_ref=N + "hitl_foreach_resume_index", input_data={"items": [1, 2, 3]},
        actions=(
            ("expect", {"status": "suspended", "suspended": [["approve-item"]]}),
            ("resume", {"step": "approve-item", "for_each_index": 2, "resume_data": {"add": 30}}),
            ("expect", {"status": "suspended"}),
            ("resume", {"step": "approve-item", "for_each_index": 0, "resume_data": {"add": 10}}),
            ("expect", {"status": "suspended"}),
            ("resume", {"step": "approve-item", "for_each_index": 1, "resume_data": {"add": 20}}),
        ),
        expect=Expect(
            status="success", result=[{"value": 11}, {"value": 22}, {"value": 33}],
            steps={"approve-item": StepExpect("success", output=[{"value": 11}, {"value": 22}, {"value": 33}])},
            trace=TraceExpect(runs={"items": 1, "approve-item": 3}),
        ),
    ),
    Scenario(
        id="wcp16-deferred-choice", title="Deferred choice: the resume arrives before the timeout",
        family="human-in-the-loop", wcp=("WCP-16",), workflow_factory=_deferred_choice,
        native_ref=N + "wcp16_deferred_choice", input_data={"timeout": 0.5},
        actions=(("resume", {"step": "decide", "resume_data": {"choice": "approve"}, "at": 0.1}),),
        expect=Expect(
            status="success", result={"approved-path": {"decision": "approved"}},
            absent_steps=("timeout-path",),
            trace=TraceExpect(runs={"offer": 1, "decide": (0, 1), "approved-path": 1}),
        ),
        notes="Mastra workaround (+/-): no timer races the suspension; the step checks a deadline "
        "when the resume arrives (lazy timeout). Natively: asyncio.wait([hook, sleep(timeout)], "
        "FIRST_COMPLETED). The timeout-first case is wcp16-deferred-choice-timeout.",
    ),
    Scenario(
        id="wcp16-deferred-choice-timeout", title="Deferred choice: the timeout fires first",
        family="human-in-the-loop", wcp=("WCP-16",),
        workflow_reason="Mastra syntax cannot race a suspension against a timer: a suspended run "
        "only continues when resume() is called, so the timeout branch cannot fire by itself "
        "(workaround: an external poller that resumes it with a 'timeout' payload).",
        native_ref=N + "wcp16_deferred_choice_timeout", input_data={"timeout": 0.2},
        expect=Expect(
            status="success", result={"timeout-path": {"decision": "timeout"}},
            trace=TraceExpect(runs={"offer": 1, "timeout-path": 1}, min_gap=(("offer", "timeout-path", 0.2),)),
        ),
    ),
    Scenario(
        id="wcp24-persistent-trigger", title="Persistent trigger: resume sent before the wait is reached",
        family="human-in-the-loop", wcp=("WCP-24",), workflow_factory=_persistent_trigger,
        native_ref=N + "wcp24_persistent_trigger", input_data={},
        actions=(("resume", {"step": "await-signal", "resume_data": {"signal": "go"}, "at": 0.1}),),
        expect=Expect(
            status="success", result={"signal": "go"},
            trace=TraceExpect(runs={"slow-work": 1, "await-signal": 1, "after-signal": 1},
                              before=(("slow-work", "await-signal"), ("await-signal", "after-signal"))),
        ),
        mastra_gap="Mastra's resume() only accepts a run that is already suspended ('This workflow run "
        "was not suspended'): a trigger sent while the run is still in slow-work is lost (a transient "
        "trigger, WCP-23). Workaround: the sender polls until the run is suspended.",
        notes="Natively the hook is created at the start of the run (a task awaiting it), so a "
        "payload that arrives before the body awaits it is buffered.",
    ),
]
