"""Time scenarios: static sleep, dynamic sleep (a closure), sleep_until a fixed date.

reference/mastra-semantics.md 3.8: a sleep passes its input through unchanged; the next step
starts no earlier than the duration after the previous one ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flow import create_workflow
from scenarios.base import Expect, Scenario, StepExpect, TraceExpect
from scenarios.catalogue._util import tstep

N = "scenarios.natives.timing:"


def _sleep() -> Any:
    return (
        create_workflow(id="time-sleep")
        .then(tstep("before", lambda c: {"value": c.input_data["value"] + 1}))
        .sleep(0.2)
        .then(tstep("after", lambda c: {"value": c.input_data["value"] + 1}))
        .commit()
    )


def _sleep_dynamic() -> Any:
    return (
        create_workflow(id="time-sleep-dynamic")
        .then(tstep("plan", lambda c: {"delay": c.input_data["delay"]}))
        .sleep(lambda c: c.input_data["delay"])
        .then(tstep("after", lambda c: {"slept": c.input_data["delay"]}))
        .commit()
    )


def _sleep_until() -> Any:
    until = datetime.now(UTC) + timedelta(seconds=0.3)  # fixed at build time (rebuild=True)
    return (
        create_workflow(id="time-sleep-until")
        .then(tstep("before", lambda c: {"value": 1}))
        .sleep_until(until)
        .then(tstep("after", lambda c: {"value": c.input_data["value"] + 1}))
        .commit()
    )


SCENARIOS: list[Scenario] = [
    Scenario(
        id="time-sleep", title="Static sleep between two steps", family="time",
        workflow_factory=_sleep, native_ref=N + "time_sleep", input_data={"value": 1},
        expect=Expect(
            status="success", result={"value": 3},
            steps={"after": StepExpect("success", payload={"value": 2})},
            trace=TraceExpect(runs={"before": 1, "after": 1}, min_gap=(("before", "after", 0.2),)),
        ),
        notes="Time pattern TP1 (time lag between two activities).",
    ),
    Scenario(
        id="time-sleep-dynamic", title="Dynamic sleep: duration computed from the previous output",
        family="time", workflow_factory=_sleep_dynamic, native_ref=N + "time_sleep_dynamic",
        input_data={"delay": 0.15},
        expect=Expect(
            status="success", result={"slept": 0.15},
            trace=TraceExpect(runs={"plan": 1, "after": 1}, min_gap=(("plan", "after", 0.15),)),
        ),
        notes="sleep(fn) is a closure: codegen lifts it into a step, codegen-strict refuses it.",
    ),
    Scenario(
        id="time-sleep-until", title="sleep_until a fixed date", family="time",
        workflow_factory=_sleep_until, native_ref=N + "time_sleep_until", input_data={}, rebuild=True,
        expect=Expect(
            status="success", result={"value": 2},
            trace=TraceExpect(runs={"before": 1, "after": 1}, min_gap=(("before", "after", 0.1),)),
        ),
        notes="Time pattern TP4 (fixed date). The date is fixed when the workflow is built (now + "
        "0.3 s; `rebuild=True` builds it per run), so only a 0.1 s lower bound is asserted.",
    ),
]
