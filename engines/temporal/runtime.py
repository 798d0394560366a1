"""Runtime glue of the Temporal backend: what generated Temporal workflow modules call.

A generated module (see `engines.temporal.compiler`) holds the codegen workflow functions (the
same visitor output as `codegen`) and a `@workflow.defn` class deriving from `FlowWorkflowBase`.
Inside a Temporal workflow the generated functions talk to a `engines.codegen.runtime.FlowRun`
(flow's records, state, request context, suspended paths) whose `program` is a `RunProgram`:

- `use_step(...)` runs a Temporal **activity** named `<type>/<workflow id>/<step id>` with flow's
  retries as a `RetryPolicy` (the activity runs the flow step once per attempt, like codegen's
  durable step body);
- `use_closure(...)` runs a lifted closure as an activity `<type>/<closure id>`;
- `sleep(...)` is `workflow.sleep` (a durable server timer);
- Mastra `suspend()` waits for the `resume` **signal** `(token, resume_data)`; the token is the
  one codegen uses (`mastra:<run_id>:<step path>`, `#<i>` for a foreach item);
- the `settle` **update** returns the run's `WorkflowResult` JSON when the run ends or waits only
  on resume signals; the `waiting` query lists the suspended tokens.

Everything the workflow knows comes from activity results, so replay rebuilds the same FlowRun.
All activities are served by one dynamic activity (`flow_activity`), which finds the program by
the workflow type name (or rebuilds it from the target reference carried in the arguments), so a
standalone worker serves any wfbench workflow.

This module is imported by generated modules inside Temporal's sandbox with
`imports_passed_through()`: it must stay free of import-time side effects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
)

from engines.codegen.runtime import (
    _ERRORS,
    CRASH_ALLOWANCE,
    FlowRun,
    closure_value,
    enter_root_lane,
    hook_token,
    parked,
)
from flow.context import RequestContext, StepContext
from flow.errors import FlowError, RestoredError, error_name, error_to_dict
from flow.interpreter import Execution, Resume, call_step
from flow.results import StepResult, WorkflowResult, to_jsonable
from flow.validation import validate

RESUME_SIGNAL = "resume"
SETTLE_UPDATE = "settle"
WAITING_QUERY = "waiting"
RESULT_QUERY = "result"
SUSPENSION_QUERY = "suspension"
OUTPUTS_QUERY = "outputs"
TYPE_PREFIX = "wfbench:"
"""Workflow type names are `wfbench:<workflow id>@<graph hash 12>` (`compiler.workflow_type`)."""
ABANDON = workflow.HandlerUnfinishedPolicy.ABANDON
"""`settle` waits are abandoned when a run ends early: the client then reads the run's result."""
DEFAULT_ACTIVITY_TIMEOUT = 3600.0
DEFAULT_HEARTBEAT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ActivitySpec:
    """How generated code calls one step or closure: the activity type name, its retry policy,
    and flow's retries (failures that are retried before the step fails)."""

    name: str
    retry_policy: RetryPolicy
    retries: int = 0


def retry_policy(retries: int, delay: float) -> RetryPolicy:
    """flow's `retries` and retry `delay` (seconds) as a Temporal RetryPolicy.

    `CRASH_ALLOWANCE` extra attempts cover attempts cut short by a dead worker (a heartbeat or
    start-to-close timeout); a step's own failures stop at `retries` (the activity raises a
    non-retryable error then).
    """
    return RetryPolicy(initial_interval=timedelta(seconds=max(delay, 0.001)),
                       backoff_coefficient=1.0,
                       maximum_interval=timedelta(seconds=max(delay, 0.001)),
                       maximum_attempts=retries + 1 + CRASH_ALLOWANCE)


# ------------------------------------------------------------------------------------------
# Programs: compiled workflows known to this process, by Temporal workflow type name

_PROGRAMS: dict[str, Any] = {}
_LOADERS: list[Callable[[str, str | None], Any]] = []
LIVE: dict[str, FlowRun] = {}
"""run id -> root FlowRun of the run's latest workflow instance in this process."""


class WorkflowChanged(ValueError):
    """The run's workflow type no longer matches what its target compiles to."""

    @classmethod
    def of(cls, type_name: str, now: Sequence[str]) -> WorkflowChanged:
        """The one message for a changed workflow (raised by this module and by
        `engines.temporal.compiler.load_program`): the run's type and what the workflow
        compiles to in this worker now."""
        workflow_id = type_name[len(TYPE_PREFIX):].rpartition("@")[0] \
            if type_name.startswith(TYPE_PREFIX) else type_name
        return cls(f"run of workflow type {type_name!r} cannot be served: workflow {workflow_id!r} "
                   f"now compiles to {', '.join(map(repr, now))} (the workflow changed; the run's "
                   "history cannot be replayed with it)")


def register_program(type_name: str, program: Any) -> None:
    """Make a compiled program findable by its workflow type name."""
    _PROGRAMS[type_name] = program


def set_program_loader(loader: Callable[[str, str | None], Any]) -> None:
    """`loader(type_name, target_ref)` builds a program that is not registered yet."""
    if loader not in _LOADERS:
        _LOADERS.append(loader)


def program_named(type_name: str, target_ref: str | None) -> Any:
    """The program of a workflow type (rebuilt from `target_ref` when not known here)."""
    program = _PROGRAMS.get(type_name)
    if program is not None:
        return program
    base = type_name.rpartition("@")[0] + "@"
    changed = sorted(t for t in _PROGRAMS if t.startswith(base))
    if changed:
        raise WorkflowChanged.of(type_name, changed)
    for loader in _LOADERS:
        program = loader(type_name, target_ref)
        if program is not None:
            return program
    from engines.base import EngineError

    raise EngineError(f"temporal: this worker does not know workflow type {type_name!r} and cannot "
                    f"rebuild it (target {target_ref!r}); start the worker with the target importable")


def load_for_workflow(type_name: str, params: dict[str, Any]) -> Any:
    """`program_named` from workflow code. A graph that compiles to another type now fails the
    run with a `NondeterminismError` (its history cannot be replayed with the changed workflow);
    a program this worker cannot build fails only the workflow task, so Temporal retries it (on
    this or another worker)."""
    from engines.base import EngineError

    try:
        if workflow.unsafe.in_sandbox():
            # importing user modules here would bind them to the sandbox's restricted stdlib
            program = _PROGRAMS.get(type_name)
            if program is None:
                raise EngineError(
                    f"workflow type {type_name!r} is not compiled in this worker; compile it first "
                    "(engines.temporal.compiler.program_for) or use engines.temporal.worker")
            return program
        return program_named(type_name, params.get("target"))
    except WorkflowChanged as exc:
        raise nondeterminism_failure(str(exc)) from None


def nondeterminism_failure(message: str) -> ApplicationError:
    """The failure of a run that cannot be replayed: durable's `NondeterminismError` (the class a
    codegen run fails with in the same case), as the result JSON in the failure's details."""
    from durable import NondeterminismError
    from engines.codegen.errors import error_json

    result = {"status": "failed", "error": error_json(NondeterminismError(message)),
              "run_id": workflow.info().workflow_id}
    return ApplicationError(message, result, type="NondeterminismError", non_retryable=True)


async def temporal_sleep(duration: Any) -> None:
    """`sleep(seconds | timedelta | datetime)` in generated code: a Temporal durable timer."""
    if isinstance(duration, datetime):
        seconds = (duration - workflow.now()).total_seconds()
    elif isinstance(duration, timedelta):
        seconds = duration.total_seconds()
    else:
        seconds = float(duration or 0)
    if seconds > 0:
        await workflow.sleep(seconds)


def _restored(exc: BaseException) -> BaseException:
    """A flow-style error for a failed activity (name and message of the step's exception)."""
    cause = exc.__cause__ if isinstance(exc, ActivityError) else exc
    if isinstance(cause, ApplicationError):
        return RestoredError(cause.type or "Error", cause.message)
    if isinstance(cause, BaseException) and not isinstance(cause, ActivityError):
        return RestoredError(type(cause).__name__, str(cause))
    return RestoredError(type(exc).__name__, str(exc))


# ------------------------------------------------------------------------------------------
# The workflow side


class RunProgram:
    """`FlowRun.program` for one workflow execution: steps and closures become activities."""

    def __init__(self, program: Any, type_name: str, activities: dict[Any, ActivitySpec],
                 params: dict[str, Any], owner: FlowWorkflowBase) -> None:
        self.program = program
        self.compiled = program.compiled
        self.type_name = type_name
        self.activities = activities
        self.params = params
        self.owner = owner
        self.target = params.get("target")
        self.activity_timeout = timedelta(seconds=float(params.get("activity_timeout")
                                                        or DEFAULT_ACTIVITY_TIMEOUT))
        hb = params.get("heartbeat_timeout", DEFAULT_HEARTBEAT_TIMEOUT)
        self.heartbeat_timeout = timedelta(seconds=float(hb)) if hb else None
        self.local = bool(params.get("local_activities"))

    def _scope(self, scope: Sequence[str]) -> FlowRun | None:
        run: FlowRun | None = self.owner.root
        for key in scope:
            if run is None:
                return None
            run = run.children.get(key)
        return run

    def _context(self, scope: Sequence[str]) -> dict[str, Any]:
        """What an activity needs of the run besides its input: the scope's init data. Earlier
        step outputs (`get_step_result`) are not sent (that would make every call O(steps)):
        the activity reads them from the live run when the workflow runs in its process, else
        with the `outputs` query."""
        run = self._scope(scope)
        return {"init": None if run is None else run.input}

    def outputs(self, scope: Sequence[str]) -> dict[str, Any]:
        run = self._scope(scope)
        if run is None:
            return {}
        return {sid: rec.output for sid, rec in run.records.items() if rec.status == "success"}

    async def _activity(self, spec: ActivitySpec, args: dict[str, Any]) -> Any:
        try:
            if self.local:
                return await workflow.execute_local_activity(
                    spec.name, args, start_to_close_timeout=self.activity_timeout,
                    retry_policy=spec.retry_policy)
            return await workflow.execute_activity(
                spec.name, args, start_to_close_timeout=self.activity_timeout,
                heartbeat_timeout=self.heartbeat_timeout, retry_policy=spec.retry_policy)
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):
                raise asyncio.CancelledError() from exc
            raise _restored(exc) from None

    def step_fn(self, workflow_id: str, step_id: str) -> Callable[..., Any]:
        spec = self.activities[(workflow_id, step_id)]

        async def call(**kw: Any) -> Any:
            args = {"kind": "step", "type": self.type_name, "target": self.target,
                    "retries": spec.retries, **self._context(kw["scope"]), **kw}
            return await self._activity(spec, args)

        return call

    def closure_fn(self, closure_id: str) -> Callable[..., Any]:
        spec = self.activities[closure_id]

        async def call(**kw: Any) -> Any:
            args = {"kind": "closure", "type": self.type_name, "target": self.target,
                    **self._context(kw["scope"]), **kw}
            return await self._activity(spec, args)

        return call

    async def wait_for_resume(self, run: FlowRun, path: list[str], index: int | None,
                              labels: list[str] | None = None) -> Any:
        """A suspended step: wait for the `resume` signal with its token (or one of its resume
        labels, kept in `root.labels`)."""
        root = run.root
        token = hook_token(run.run_id, path, index)
        resumes = self.owner.resumes
        root_labels = _labels_of(root)
        # parked before the run is seen waiting on the token: `FlowRun.gather` then knows this
        # child waits for a resume, so a failed sibling fails the entry (flow's failed >
        # suspended) instead of the entry waiting for the signal
        with parked():
            root.waiting_hooks[token] = list(path)
            for label in labels or []:
                root_labels[label] = token
            await workflow.wait_condition(lambda: token in resumes)
        root.waiting_hooks.pop(token, None)
        for label in labels or []:
            if root_labels.get(label) == token:
                del root_labels[label]
        return resumes.pop(token)


def _labels_of(root: FlowRun) -> dict[str, str]:
    labels = getattr(root, "labels", None)
    if labels is None:
        labels = {}
        root.labels = labels  # type: ignore[attr-defined]
    return labels  # type: ignore[no-any-return]


class FlowWorkflowBase:
    """What every generated Temporal workflow class shares (its handlers delegate here)."""

    def __init__(self) -> None:
        self.root: FlowRun | None = None
        self.resumes: dict[str, Any] = {}
        self.canceled = False

    async def execute(self, params: dict[str, Any], type_name: str, entry: Callable[..., Any],
                      activities: dict[Any, ActivitySpec]) -> Any:
        """Run the generated workflow function; returns the run's `WorkflowResult` JSON.

        A failed run fails the Temporal workflow with an `ApplicationError` whose details hold
        the result JSON; a canceled one ends canceled.
        """
        program = load_for_workflow(type_name, params)
        run_id = workflow.info().workflow_id
        rp = RunProgram(program, type_name, activities, params, self)
        input_data = params.get("input_data")
        root = FlowRun(rp, program.compiled.workflow_id, run_id, input_data,
                       dict(params.get("initial_state") or {}),
                       dict(params.get("request_context") or {}))
        self.root = root
        root.lane = enter_root_lane()
        LIVE[run_id] = root
        try:
            out = await root.execute(entry, input_data)
        except asyncio.CancelledError:
            self.canceled = True
            root.final = WorkflowResult(status="canceled", steps=dict(root.records),
                                        input=root.input, state=dict(root.state), run_id=run_id)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        except Exception as exc:  # a step error (or a closure's) fails the run
            out = root.fail(exc)
        root.waiting_hooks.clear()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if out.get("status") == "failed":
            err = root.final.error if root.final is not None else None
            raise ApplicationError(str(err) if err is not None else "workflow failed", out,
                                   type=error_name(err) if err is not None else "Error",
                                   non_retryable=True)
        return out

    # -- handlers (the generated class exposes them under fixed names) ----------------------

    def on_resume(self, token: str, resume_data: Any = None) -> None:
        self.resumes[token] = resume_data

    def settled(self, pending: str | None) -> bool:
        root = self.root
        if root is None:
            return False
        if root.final is not None or self.canceled:
            return True
        if pending is not None and (pending in self.resumes or pending in root.waiting_hooks):
            return False
        return root.is_quiescent_suspended()

    async def settle(self, pending: str | None = None) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.settled(pending))
        return self.current()

    def current(self) -> dict[str, Any]:
        root = self.root
        if root is None:
            return {"status": "running"}
        if root.final is not None:
            return root.final.to_dict()
        return root.snapshot().to_dict()

    def busy(self) -> bool:
        """True while the run is still working (not ended, not waiting only on resumes)."""
        root = self.root
        if root is None:
            return True
        return root.final is None and not self.canceled and not root.is_quiescent_suspended()

    def outputs(self, scope: list[str]) -> dict[str, Any]:
        """Successful step outputs of a (nested) scope of the run, for activities elsewhere."""
        root = self.root
        program = root.program if root is not None else None
        return program.outputs(scope) if isinstance(program, RunProgram) else {}

    def suspension(self) -> dict[str, Any]:
        """One consistent view for a resume: suspended tokens (-> step path), resume labels
        (-> token), and whether the run is still working."""
        labels = {} if self.root is None else dict(_labels_of(self.root))
        return {"waiting": self.waiting(), "labels": labels, "busy": self.busy()}

    def waiting(self) -> dict[str, list[str]]:
        root = self.root
        return {} if root is None else {k: list(v) for k, v in root.waiting_hooks.items()}


# ------------------------------------------------------------------------------------------
# The activity side (one dynamic activity serves every step and closure)


async def _outputs(args: dict[str, Any]) -> dict[str, Any]:
    """Successful step outputs of the activity's scope: from the live run when its workflow
    runs in this process (as codegen reads them), else asked of the workflow (`outputs` query)."""
    live: FlowRun | None = LIVE.get(args["run_id"])
    for key in args.get("scope") or []:
        live = live.children.get(key) if live is not None else None
    if live is not None:
        return {sid: rec.output for sid, rec in live.records.items() if rec.status == "success"}
    info = activity.info()
    handle = activity.client().get_workflow_handle(str(info.workflow_id), run_id=info.workflow_run_id)
    return await handle.query(OUTPUTS_QUERY, list(args.get("scope") or []))  # type: ignore[no-any-return]


async def _execution(program: Any, args: dict[str, Any],
                     workflow_id: str) -> tuple[Execution, RequestContext]:
    wf = program.compiled.workflows[workflow_id].workflow
    rc = RequestContext(dict(args.get("request_context") or {}))
    results = {sid: StepResult(status="success", output=out)
               for sid, out in (await _outputs(args)).items()}
    ex = Execution(wf, args["run_id"], input=args.get("init"), state=dict(args.get("state") or {}),
                   step_results=results, request_context=rc, validate_inputs=False)
    ex.retry_attempts = 0
    return ex, rc


def _is_fatal(error: BaseException) -> bool:
    """durable's `FatalError` (and subclasses) stops retries, as on the durable runtime."""
    from durable import FatalError

    return isinstance(error, FatalError)


def _retry_after(error: BaseException) -> timedelta | None:
    """durable's `RetryableError(retry_after=...)` as the next attempt's delay."""
    from durable import RetryableError

    if not isinstance(error, RetryableError):
        return None
    ra = error.retry_after
    if ra is None:
        return timedelta(seconds=1)
    if isinstance(ra, datetime):
        target = ra if ra.tzinfo is not None else ra.replace(tzinfo=UTC)
        return max(timedelta(0), target - datetime.now(UTC))
    from durable._internal.durations import parse_seconds

    return timedelta(seconds=parse_seconds(ra, "retry_after"))


async def _heartbeat(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)


async def _step(program: Any, args: dict[str, Any]) -> dict[str, Any]:
    run_id, scope, workflow_id, step_id = args["run_id"], args["scope"], args["workflow_id"], args["step_id"]
    step = program.compiled.workflows[workflow_id].steps[step_id].step
    attempt = activity.info().attempt
    started = time.time()
    key = (run_id, "/".join(scope), step_id)
    input_data = args.get("input_data")
    resume = bool(args.get("resume"))
    root_wf = program.compiled.workflows[program.compiled.workflow_id].workflow
    if getattr(root_wf, "validate_inputs", True) and getattr(step, "input_schema", None) is not None \
            and not resume:
        try:
            input_data = validate(step.input_schema, input_data, "Step input validation failed:")
        except FlowError as exc:
            _ERRORS[key] = exc
            return {"status": "failed", "input": to_jsonable(input_data), "error": error_to_dict(exc),
                    "attempts": 1, "started_at": started, "ended_at": time.time()}
    ex, rc = await _execution(program, args, workflow_id)
    ex.run_counts[step_id] = int(args.get("retry_base") or 0) + attempt - 2
    rc_before = dict(args.get("request_context") or {})
    res = Resume([step_id], args.get("resume_data"), [], None, args.get("item")) if resume else None
    outcome = await call_step(ex, replace(step, retries=0), input_data, resume=res,
                              iteration_count=args.get("iteration"))
    if outcome.status == "failed":
        assert outcome.error is not None
        _ERRORS[key] = outcome.error
        last = attempt > int(args.get("retries") or 0)
        raise ApplicationError(str(outcome.error), type=error_name(outcome.error),
                               non_retryable=last or _is_fatal(outcome.error),
                               next_retry_delay=_retry_after(outcome.error),
                               category=ApplicationErrorCategory.BENIGN) from outcome.error
    _ERRORS.pop(key, None)
    state = args.get("state") or {}
    changes = {k: v for k, v in ex.state.items() if k not in state or state[k] != v}
    after = rc.to_dict()
    rc_set = {k: v for k, v in after.items() if k not in rc_before or rc_before[k] != v}
    rc_deleted = [k for k in rc_before if k not in after]
    out = {"status": outcome.status, "input": outcome.input, "output": outcome.output,
           "suspend_payload": outcome.suspend_payload, "label": outcome.label,
           "state_changes": changes, "rc_set": rc_set, "rc_deleted": rc_deleted,
           "aborted": ex.aborted, "attempts": 1, "started_at": started, "ended_at": time.time()}
    return to_jsonable(out)  # type: ignore[no-any-return]


async def _closure(program: Any, args: dict[str, Any]) -> dict[str, Any]:
    closure_id, run_id, scope = args["closure_id"], args["run_id"], args["scope"]
    cb = program.compiled.closures[closure_id]
    ex, _rc = await _execution(program, args, cb.workflow_id)
    key = (run_id, "/".join(scope), closure_id)
    if cb.kind == "mapping_fn":
        ctx = StepContext(ex, cb.record_id or closure_id, args.get("input_data"), retry_count=0)
    else:
        ctx = StepContext(ex, cb.record_id or closure_id, args.get("input_data"), is_step=False,
                          retry_count=-1, iteration_count=args.get("iteration"))
    return await closure_value(cb, ctx, key, error_to_dict)


@activity.defn(dynamic=True)
async def flow_activity(raw: Sequence[RawValue]) -> Any:
    """Every wfbench step and closure activity: `kind` "step" or "closure" in the arguments."""
    args = activity.payload_converter().from_payload(raw[0].payload, dict)
    program = program_named(args["type"], args.get("target"))
    info = activity.info()
    beat = None
    if info.heartbeat_timeout:
        every = max(info.heartbeat_timeout.total_seconds() / 4, 0.05)
        beat = asyncio.ensure_future(_heartbeat(every))
    try:
        if args.get("kind") == "closure":
            return await _closure(program, args)
        return await _step(program, args)
    finally:
        if beat is not None:
            beat.cancel()
