"""Error scenarios: a failing step, failure inside parallel, retries (workflow retry_config, step
retries override), RetryableError(retry_after) and FatalError, WCP-43 bail, WCP-20 cancel.

Expectations from reference/mastra-semantics.md 3.3 (retries = step.retries ?? retry_config.attempts;
attempts = retries + 1; fixed delay), 3.4 (a failing parallel child cancels nothing), 3.12 (bail),
3.13 (cancel) and workflow-runtime-semantics.md 1.9 (RetryableError / FatalError)."""

from __future__ import annotations

from typing import Any

from flow import create_step, create_workflow
from scenarios.base import ErrorExpect, Expect, Scenario, StepExpect, TraceExpect
from scenarios.catalogue._util import tstep
from scenarios.trace import span

N = "scenarios.natives.errors:"


def _raise(exc: BaseException) -> Any:
    raise exc


def _step_fails() -> Any:
    return (
        create_workflow(id="err-step-fails")
        .then(tstep("prepare", lambda c: {"ready": True}))
        .then(tstep("explode", lambda c: _raise(ValueError("boom failed"))))
        .then(tstep("never", lambda c: {"reached": True}))
        .commit()
    )


def _parallel_fails() -> Any:
    return (
        create_workflow(id="err-parallel-fails")
        .parallel([
            tstep("steady", lambda c: {"ok": True}, delay=0.1),
            tstep("broken", lambda c: _raise(RuntimeError("broken branch"))),
        ])
        .then(tstep("after", lambda c: {"reached": True}))
        .commit()
    )


def _attempt_step(id: str, fail_until: int, make_error: Any, retries: int | None = None) -> Any:
    """A step whose attempt n (1-based, = retry_count + 1) records span '<id>-<n>' and raises
    `make_error()` while n < fail_until, then returns {"attempts": n}."""

    def execute(ctx: Any) -> Any:
        n = ctx.retry_count + 1
        with span(f"{id}-{n}"):
            if n < fail_until:
                raise make_error()
            return {"attempts": n}

    return create_step(id=id, execute=execute, retries=retries)


def _retry_config() -> Any:
    return (
        create_workflow(id="err-retry-config", retry_config={"attempts": 2, "delay": 0.05})
        .then(_attempt_step("flaky", 3, lambda: RuntimeError("flaky failure")))
        .commit()
    )


def _retries_override() -> Any:
    return (
        create_workflow(id="err-step-retries-override", retry_config={"attempts": 5, "delay": 0})
        .then(_attempt_step("stubborn", 99, lambda: RuntimeError("still broken"), retries=1))
        .commit()
    )


def _retryable() -> Any:
    def err() -> Exception:
        from durable import RetryableError

        return RetryableError("rate limited", retry_after=0.2)

    return (
        create_workflow(id="err-retryable-error", retry_config={"attempts": 3, "delay": 0})
        .then(_attempt_step("rate-limited", 2, err))
        .commit()
    )


def _fatal() -> Any:
    def err() -> Exception:
        from durable import FatalError

        return FatalError("card declined")

    return (
        create_workflow(id="err-fatal-error", retry_config={"attempts": 3, "delay": 0})
        .then(_attempt_step("charge", 99, err))
        .commit()
    )


def _bail() -> Any:
    def check(ctx: Any) -> Any:
        with span("check"):
            if ctx.input_data["value"] == "bail":
                return ctx.bail({"result": "bailed"})
            return {"result": "continued"}

    return (
        create_workflow(id="wcp43-bail")
        .then(create_step(id="check", execute=check))
        .then(tstep("later", lambda c: {"result": "later"}))
        .commit()
    )


def _cancel() -> Any:
    return (
        create_workflow(id="wcp20-cancel-sleep")
        .then(tstep("first", lambda c: {"value": 1}))
        .sleep(1.0)
        .then(tstep("second", lambda c: {"value": 2}))
        .commit()
    )


SCENARIOS: list[Scenario] = [
    Scenario(
        id="err-step-fails", title="A step error fails the run", family="errors",
        workflow_factory=_step_fails, native_ref=N + "err_step_fails", input_data={},
        expect=Expect(
            status="failed", error=ErrorExpect("ValueError", "boom failed"),
            steps={"prepare": StepExpect("success", output={"ready": True}),
                   "explode": StepExpect("failed", payload={"ready": True}, error=ErrorExpect("ValueError", "boom failed"))},
            absent_steps=("never",),
            trace=TraceExpect(runs={"prepare": 1, "explode": 1}, completed={"explode": 0}),
        ),
        notes="No retry_config: one attempt (native: max_retries=0).",
    ),
    Scenario(
        id="err-parallel-fails", title="An error inside parallel fails the run; the sibling completes",
        family="errors", workflow_factory=_parallel_fails, native_ref=N + "err_parallel_fails", input_data={},
        expect=Expect(
            status="failed", error=ErrorExpect("RuntimeError", "broken branch"),
            steps={"steady": StepExpect("success", output={"ok": True}),
                   "broken": StepExpect("failed", error=ErrorExpect("RuntimeError", "broken branch"))},
            absent_steps=("after",),
            trace=TraceExpect(runs={"steady": 1, "broken": 1}, completed={"steady": 1, "broken": 0}),
        ),
    ),
    Scenario(
        id="err-retry-config", title="Retries from the workflow retry_config", family="errors",
        workflow_factory=_retry_config, native_ref=N + "err_retry_config", input_data={},
        expect=Expect(
            status="success", result={"attempts": 3},
            steps={"flaky": StepExpect("success", output={"attempts": 3})},
            trace=TraceExpect(
                runs={"flaky-1": 1, "flaky-2": 1, "flaky-3": 1},
                completed={"flaky-1": 0, "flaky-2": 0, "flaky-3": 1},
                min_gap=(("flaky-1", "flaky-2", 0.05), ("flaky-2", "flaky-3", 0.05)),
            ),
        ),
        notes="retry_config attempts=2 means 3 attempts with 0.05 s between them. Native: "
        "max_retries=2 and RetryableError(retry_after=0.05).",
    ),
    Scenario(
        id="err-step-retries-override", title="Step retries override the workflow retry_config",
        family="errors", workflow_factory=_retries_override, native_ref=N + "err_step_retries_override",
        input_data={},
        expect=Expect(
            status="failed", error=ErrorExpect(message="still broken"),
            steps={"stubborn": StepExpect("failed")},
            trace=TraceExpect(runs={"stubborn-1": 1, "stubborn-2": 1}, completed={"stubborn-*": 0}),
        ),
        notes="retry_config attempts=5 but the step says retries=1: 2 attempts.",
    ),
    Scenario(
        id="err-retryable-error", title="RetryableError(retry_after) delays the retry", family="errors",
        workflow_factory=_retryable, native_ref=N + "err_retryable_error", input_data={},
        expect=Expect(
            status="success", result={"attempts": 2},
            trace=TraceExpect(runs={"rate-limited-1": 1, "rate-limited-2": 1},
                              min_gap=(("rate-limited-1", "rate-limited-2", 0.2),)),
        ),
        mastra_gap="Mastra has no RetryableError: the default interpreter retries after "
        "retry_config.delay (0 here) and ignores retry_after.",
    ),
    Scenario(
        id="err-fatal-error", title="FatalError is not retried", family="errors",
        workflow_factory=_fatal, native_ref=N + "err_fatal_error", input_data={},
        expect=Expect(
            status="failed", error=ErrorExpect("FatalError", "card declined"),
            trace=TraceExpect(runs={"charge-1": 1}),
        ),
        mastra_gap="Mastra has no FatalError: the default interpreter retries every error "
        "retry_config.attempts times (here 4 attempts).",
    ),
    Scenario(
        id="wcp43-bail", title="Explicit termination with bail()", family="errors", wcp=("WCP-43",),
        workflow_factory=_bail, native_ref=N + "wcp43_bail", input_data={"value": "bail"},
        expect=Expect(
            status="success", result={"result": "bailed"},
            steps={"check": StepExpect("success", output={"result": "bailed"}, payload={"value": "bail"})},
            absent_steps=("later",),
            trace=TraceExpect(runs={"check": 1}),
        ),
        notes="Natively: an early return.",
    ),
    Scenario(
        id="wcp20-cancel-sleep", title="Cancel the run during a sleep", family="errors", wcp=("WCP-20",),
        workflow_factory=_cancel, native_ref=N + "wcp20_cancel_sleep", input_data={},
        actions=(("cancel_after", 0.2),),
        expect=Expect(
            status="canceled",
            steps={"first": StepExpect("success", output={"value": 1})},
            absent_steps=("second",),
            trace=TraceExpect(runs={"first": 1}),
        ),
        notes="Natively: run.cancel() (terminate) while the body waits in sleep(1.0).",
    ),
]
