"""Durability and determinism scenarios, driven by the harness through subprocesses
(see `scenarios.base.DurabilitySpec`): the process running the scenario is SIGKILLed at a kill
point read from the shared trace file, then a recovery process completes the run.

Expectations from workflow-runtime-semantics.md 1.4/2.4 (replay feeds recorded results back; a
completed step is not executed again; a step in flight at the crash runs again: at-least-once),
1.6 (an interrupted sleep resumes for the remainder: the total gap is still >= the duration),
1.7 (hook payloads survive the process), 1.2/2.6 (deterministic time/randomness; a changed
workflow is detected)."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from typing import Any

from flow import create_step, create_workflow
from scenarios.base import DurabilitySpec, ErrorExpect, Expect, KillPoint, Scenario, TraceExpect
from scenarios.catalogue._util import tstep
from scenarios.catalogue.hitl import _waiting
from scenarios.trace import span

N = "scenarios.natives.durability:"

VARIANT_ENV = "WFBENCH_SCENARIO_VARIANT"
"""det-changed-workflow: the recovery process sets this to "2" to load the changed workflow."""

CHAIN = 20
SLOW_STEP = 11
"""dur-kill-mid-chain: the step in flight when the kill (after s-10 ends) lands."""
SLOW_STEP_DELAY = 0.5


def _chain() -> Any:
    wf = create_workflow(id="dur-kill-mid-chain")
    for i in range(1, CHAIN + 1):
        # s-11 is slow: the kill after s-10 lands while it is in flight even on a loaded machine
        wf = wf.then(tstep(f"s-{i}", lambda c: {"value": c.input_data["value"] + 1},
                           delay=SLOW_STEP_DELAY if i == SLOW_STEP else 0.05))
    return wf.commit()


def _sleep() -> Any:
    return (
        create_workflow(id="dur-kill-during-sleep")
        .then(tstep("before-sleep", lambda c: {"value": 1}))
        .sleep(0.8)
        .then(tstep("after-sleep", lambda c: {"value": c.input_data["value"] + 1}))
        .commit()
    )


def _foreach() -> Any:
    async def process(ctx: Any) -> Any:
        with span(f"process-{ctx.input_data['value']}"):
            await asyncio.sleep(0.15)
            return {"value": ctx.input_data["value"] * 10}

    return (
        create_workflow(id="dur-kill-in-foreach")
        .then(tstep("items", lambda c: [{"value": n} for n in c.input_data["items"]]))
        .foreach(create_step(id="process", execute=process), concurrency=2)
        .commit()
    )


def _hook() -> Any:
    return (
        create_workflow(id="dur-hook-other-process")
        .then(tstep("ask", lambda c: {"asked": True}))
        .then(_waiting("approve", {"ask": "ok?"}, lambda c: {"approved": c.resume_data["ok"]}))
        .then(tstep("record", lambda c: dict(c.input_data)))
        .commit()
    )


def _time_random() -> Any:
    def draw(ctx: Any) -> Any:
        with span("draw"):
            return {"t": time.time(), "r": random.random(), "u": str(uuid.uuid4())}

    return (
        create_workflow(id="det-time-random")
        .map(draw, id="draw")
        .then(tstep("echo"))
        .then(tstep("hold", delay=0.4))
        .map(lambda c: {"stable": c.get_step_result("draw") == c.get_step_result("echo")}, id="compare")
        .commit()
    )


def _changed() -> Any:
    second = "step-x" if os.environ.get(VARIANT_ENV) == "2" else "step-b"
    return (
        create_workflow(id="det-changed-workflow")
        .then(tstep("step-a", lambda c: {"value": 1}))
        .then(tstep(second, lambda c: {"value": 2}, delay=0.5))
        .then(tstep("step-c", lambda c: {"value": 3}))
        .commit()
    )


_chain_runs: dict[str, Any] = {f"s-{i}": 1 for i in range(1, CHAIN + 1)}
_chain_runs.update({"s-10": (1, 2), "s-11": (1, 2)})

SCENARIOS: list[Scenario] = [
    Scenario(
        id="dur-kill-mid-chain", title="SIGKILL in the middle of a 20-step chain, then recover",
        family="durability", workflow_factory=_chain, native_ref=N + "dur_kill_mid_chain",
        input_data={"value": 0},
        durability=DurabilitySpec(kind="mid-chain", kill=KillPoint("s-10", "end")),
        expect=Expect(
            status="success", result={"value": CHAIN},
            trace=TraceExpect(runs=_chain_runs, completed=_chain_runs, max_in_flight={"*": 1}),
        ),
        notes="Steps 1-9 completed before the kill: exactly once. s-10 (its completion may not be "
        "committed yet) and s-11 (in flight; it takes 0.5 s so the kill lands during it) may run "
        "twice: at-least-once.",
    ),
    Scenario(
        id="dur-kill-during-sleep", title="SIGKILL during a sleep; the sleep resumes for the remainder",
        family="durability", workflow_factory=_sleep, native_ref=N + "dur_kill_during_sleep",
        input_data={},
        durability=DurabilitySpec(kind="during-sleep", kill=KillPoint("before-sleep", "end", delay=0.3)),
        expect=Expect(
            status="success", result={"value": 2},
            trace=TraceExpect(runs={"before-sleep": 1, "after-sleep": 1},
                              min_gap=(("before-sleep", "after-sleep", 0.8),)),
        ),
    ),
    Scenario(
        id="dur-kill-in-foreach", title="SIGKILL inside a foreach (concurrency 2), then recover",
        family="durability", wcp=("WCP-14",), workflow_factory=_foreach, native_ref=N + "dur_kill_in_foreach",
        input_data={"items": [1, 2, 3, 4, 5, 6]},
        durability=DurabilitySpec(kind="in-foreach", kill=KillPoint("process-*", "end", count=3)),
        expect=Expect(
            status="success", result=[{"value": n * 10} for n in range(1, 7)],
            trace=TraceExpect(runs={"items": 1, **{f"process-{n}": (1, 2) for n in range(1, 7)}},
                              completed={"items": 1, **{f"process-{n}": (1, 2) for n in range(1, 7)}}),
        ),
        notes="Per-item counts are 1..2: how many completed items are re-run depends on whether the "
        "engine journals foreach items one by one (a per-item journal re-runs only the in-flight ones).",
    ),
    Scenario(
        id="dur-hook-other-process", title="A suspension resumed from another process",
        family="durability", workflow_factory=_hook, native_ref=N + "dur_hook_other_process",
        input_data={},
        durability=DurabilitySpec(
            kind="hook-other-process", kill=KillPoint("ask", "end", delay=0.3),
            resume=("resume", {"step": "approve", "resume_data": {"ok": True}}),
        ),
        expect=Expect(
            status="success", result={"approved": True},
            trace=TraceExpect(runs={"ask": 1, "approve": 1, "record": 1}, before=(("ask", "approve"),)),
        ),
    ),
    Scenario(
        id="det-time-random", title="Time and randomness read by the workflow are identical after recovery",
        family="determinism", workflow_factory=_time_random, native_ref=N + "det_time_random",
        input_data={},
        durability=DurabilitySpec(kind="replay-time-random", kill=KillPoint("hold", "start", delay=0.1)),
        expect=Expect(
            status="success", result={"stable": True},
            trace=TraceExpect(runs={"draw": (0, 1), "echo": 1, "hold": (1, 2)}),
        ),
        notes="Natively the body reads durable.now()/random()/uuid4() before a step and compares them "
        "with the step's journaled echo after replay. In Mastra syntax the reads happen in a map "
        "closure; codegen journals it as a step, so after recovery it is not drawn again.",
    ),
    Scenario(
        id="det-changed-workflow", title="A workflow changed between crash and recovery is detected",
        family="determinism", workflow_factory=_changed, native_ref=N + "det_changed_workflow",
        input_data={},
        durability=DurabilitySpec(kind="changed-workflow", kill=KillPoint("step-b", "start", delay=0.1),
                                  recover_env={VARIANT_ENV: "2"}),
        expect=Expect(
            status="failed", error=ErrorExpect("NondeterminismError"),
            trace=TraceExpect(runs={"step-a": 1, "step-b": 1}, completed={"step-b": 0}),
        ),
        notes="The recovery process loads variant 2 (step-x where step-b was): replay finds step-b "
        "at position 1 of the log where the code calls step-x.",
    ),
]
