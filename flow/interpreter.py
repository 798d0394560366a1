"""The default (direct) interpreter: walks a workflow graph and runs it (reference section 3).

`Execution` holds one engine call's mutable state (step records, state, suspended paths, resume
labels, request context, cancel signal, event sink, snapshot store); `run_graph(execution,
resume)` runs the graph from the start or from a resume point and returns a `WorkflowResult`.

Decisions (reference section 8): the next entry after a parallel/branch receives
`{child_id: output}` for the children that ran and succeeded; a branch condition that raises counts
as false (logged); a loop condition, a sleep function or other errors escaping an entry fail the run
with that error; cancel is checked before every entry and loop iteration and interrupts sleeps;
`set_state` is merged into the run state when the step returns; foreach runs a fluid pool of at
most `concurrency` items, a failed (or bailed) item stops launching new items, a suspended one does
not (each item waits for its own resume; not-yet-successful items are re-run only when targeted);
a re-run step starts from a fresh record, a resumed step keeps its payload/started_at/suspend fields (merge rule); a bail inside a
parallel/branch child ends that child (left out of the block output), inside a loop or foreach
body it ends the run with `success`.

A nested workflow as a foreach body runs one nested run per item (run id `<run id>[<index>]`), so
its suspended items resume by index; a suspend payload is validated against the step's
`suspend_schema` when inputs are validated (a bad one fails the step).

The children of a parallel/branch block (and branch conditions) start inline, in declaration order,
each in a copy of the context; only a child that has to wait (an async body, a retry) continues in a
Task of its own (`gather_started`), so a fan-out of synchronous bodies creates no Task at all.

The interpreter reads `step.execute` and `step.retries` at run time, so engines can wrap steps
with `dataclasses.replace`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flow.context import RequestContext, StepContext
from flow.errors import FlowError
from flow.graph import (
    ConditionalEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    SleepUntilEntry,
    StepEntry,
)
from flow.results import StepResult, WorkflowResult
from flow.signal import AbortSignal
from flow.storage import SnapshotStore
from flow.validation import validate

if TYPE_CHECKING:
    from flow.workflow import Workflow

log = logging.getLogger("flow")

META = "__workflow_meta"
Emit = Callable[[dict[str, Any]], None]


@dataclass
class Resume:
    """Where and with what a resume continues: `steps` = id path (outermost first),
    `path` = execution path (entry index, then child index)."""

    steps: list[str]
    payload: Any
    path: list[int]
    label: str | None = None
    for_each_index: int | None = None


class Outcome:
    """What one call of a step body ended with (after retries)."""

    __slots__ = ("status", "output", "error", "suspend_payload", "label", "input")

    def __init__(self, status: str, input: Any, output: Any = None, error: BaseException | None = None,
                 suspend_payload: Any = None, label: Any = None) -> None:
        self.status = status  # success | failed | suspended | bailed
        self.input = input
        self.output = output
        self.error = error
        self.suspend_payload = suspend_payload
        self.label = label


class EntryResult:
    """What one graph entry ended with. `status`: success|failed|suspended|canceled|bailed."""

    __slots__ = ("status", "output", "error")

    def __init__(self, status: str, output: Any = None, error: BaseException | None = None) -> None:
        self.status = status
        self.output = output
        self.error = error


def _now() -> float:
    return time.time()


class Execution:
    """One engine call (a start or a resume) of one workflow run."""

    def __init__(
        self,
        workflow: Workflow,
        run_id: str,
        *,
        input: Any,
        state: dict[str, Any] | None = None,
        step_results: dict[str, StepResult] | None = None,
        request_context: RequestContext | None = None,
        store: SnapshotStore | None = None,
        emit: Emit | None = None,
        signal: AbortSignal | None = None,
        validate_inputs: bool = True,
        suspended_paths: dict[str, list[int]] | None = None,
        resume_labels: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.workflow = workflow
        self.workflow_id = workflow.id
        self.run_id = run_id
        self.input = input
        self.state: dict[str, Any] = dict(state or {})
        self.step_results: dict[str, StepResult] = step_results if step_results is not None else {}
        self.request_context = request_context if request_context is not None else RequestContext()
        self.store = store
        self.emit = emit
        self.signal = signal if signal is not None else AbortSignal()
        self.validate_inputs = validate_inputs
        self.suspended_paths: dict[str, list[int]] = suspended_paths if suspended_paths is not None else {}
        self.resume_labels: dict[str, dict[str, Any]] = resume_labels if resume_labels is not None else {}
        self.run_counts: dict[str, int] = {}
        self._dirty: dict[str, StepResult] = {}
        self.persisted_status: str | None = None  # the run status this execution last wrote
        rc = workflow.retry_config
        self.retry_attempts = int(rc.get("attempts", 0) or 0)
        self.retry_delay = float(rc.get("delay", 0) or 0)

    @classmethod
    def for_step(cls, workflow: Workflow, run_id: str, *, input: Any, state: dict[str, Any],
                 step_results: dict[str, StepResult], request_context: RequestContext,
                 run_counts: dict[str, int] | None = None) -> Execution:
        """A light Execution for one step call made outside the interpreter (an engine that
        runs a flow step by itself, see `begin_step_call`): the same attributes as
        `Execution(workflow, run_id, input=..., state=..., step_results=...,
        request_context=..., validate_inputs=False)` with no retries of its own (the caller
        retries), built without the general constructor. `state` is used as is (pass a copy
        when the caller diffs it afterwards); `step_results` by reference."""
        ex = cls.__new__(cls)
        ex.workflow = workflow
        ex.workflow_id = workflow.id
        ex.run_id = run_id
        ex.input = input
        ex.state = state
        ex.step_results = step_results
        ex.request_context = request_context
        ex.store = None
        ex.emit = None
        ex.signal = AbortSignal()
        ex.validate_inputs = False
        ex.suspended_paths = {}
        ex.resume_labels = {}
        ex.run_counts = {} if run_counts is None else run_counts
        ex._dirty = {}
        ex.persisted_status = None
        ex.retry_attempts = 0
        ex.retry_delay = 0.0
        return ex

    # -- small helpers ------------------------------------------------------------------
    @property
    def aborted(self) -> bool:
        return self.signal.aborted

    def abort(self) -> None:
        self.signal.abort()

    def next_run_count(self, step_id: str) -> int:
        n = self.run_counts.get(step_id, -1) + 1
        self.run_counts[step_id] = n
        return n

    def set_record(self, step_id: str, record: StepResult) -> None:
        self.step_results[step_id] = record
        if self.store is not None:
            self._dirty[step_id] = record

    def persist(self, status: str | None = None, **fields: Any) -> None:
        """One snapshot write: the given run fields plus every step record changed since the
        last write (never the whole run). `status` is written only when it differs from the
        status this execution last wrote (the run is driven by one execution at a time), so
        the write of a step's record leaves the run row alone."""
        if self.store is None:
            return
        if status is not None and status != self.persisted_status:
            fields["status"] = status
        dirty = self._dirty
        self._dirty = {}
        self.store.write(self.workflow_id, self.run_id, fields or None, dirty or None)
        if status is not None:
            self.persisted_status = status

    def event(self, type: str, payload: dict[str, Any]) -> None:
        if self.emit is not None:
            self.emit({"type": type, "run_id": self.run_id, "from": "WORKFLOW", "payload": payload})

    def suspended_list(self) -> list[list[str]]:
        """Paths of the suspended steps: `[step_id, *nested path]`."""
        out: list[list[str]] = []
        for sid in self.suspended_paths:
            rec = self.step_results.get(sid)
            if rec is not None and rec.status == "suspended":
                out.append([sid, *_meta_path(rec.suspend_payload)])
        return out


def _meta_path(payload: Any) -> list[str]:
    if isinstance(payload, dict):
        meta = payload.get(META)
        if isinstance(meta, dict):
            return [str(p) for p in meta.get("path") or []]
    return []


# Plain values a step body returns; checked by type before the slower `inspect.isawaitable`.
_PLAIN = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


def _is_awaitable(value: Any) -> bool:
    return type(value) not in _PLAIN and inspect.isawaitable(value)


async def _maybe_await(value: Any) -> Any:
    if _is_awaitable(value):
        return await value
    return value


class Later:
    """What a branch's synchronous start returns when the branch must wait: the coroutine
    that finishes it, run by `gather_started` in a Task of the branch's own."""

    __slots__ = ("coro",)

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro


async def gather_started(start: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> list[Any]:
    """Run branches concurrently, like `asyncio.gather`, without a Task for a branch that never
    waits (a fan-out of synchronous step bodies needs none).

    For each `args` in order, `start(*args)` runs at once in a copy of the context (the isolation
    a Task would give); it returns the branch's result, or a `Later` whose coroutine then runs in a
    Task with that same context (so async user code sees its own `current_task()`). Results come
    back in order. Every branch runs to its end; then the first exception in order, if any, is
    raised. If the caller is canceled, the Tasks are canceled (as by `gather`)."""
    results: list[Any] = []
    errors: dict[int, BaseException] = {}
    pending: list[tuple[int, asyncio.Task[Any]]] = []
    loop: asyncio.AbstractEventLoop | None = None
    for i, a in enumerate(args):
        context = contextvars.copy_context()
        try:
            value = context.run(start, *a)
        except Exception as exc:
            errors[i] = exc
            value = None
        if type(value) is Later:
            if loop is None:
                loop = asyncio.get_running_loop()
            pending.append((i, loop.create_task(value.coro, context=context)))
            value = None
        results.append(value)
    if pending:
        outs = await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
        for (i, _), out in zip(pending, outs, strict=True):
            if isinstance(out, BaseException):
                errors[i] = out
            else:
                results[i] = out
    if errors:
        raise errors[min(errors)]
    return results


def _condition_ctx(ex: Execution, step_id: str, input_data: Any,
                   iteration_count: int | None = None) -> StepContext:
    return StepContext(ex, step_id, input_data, is_step=False, retry_count=-1,
                       iteration_count=iteration_count)


def _apply_state(ex: Execution, ctx: StepContext) -> None:
    if ctx._new_state is not None:
        merged = dict(ex.state)
        merged.update(ctx._new_state)
        ex.state = merged


# -- one step body ------------------------------------------------------------------------
# `call_step` = `_call_start` (synchronous: validation, the first call of the body) and, only when
# the body returned an awaitable or failed with retries left, `_call_rest` (async).

class _Pending:
    """A step call `_call_start` could not finish without waiting."""

    __slots__ = ("input", "ctx", "out", "error")

    def __init__(self, input: Any, ctx: StepContext, out: Any, error: BaseException | None) -> None:
        self.input = input
        self.ctx = ctx
        self.out = out
        self.error = error


def _attempts(ex: Execution, step: Any) -> int:
    retries = step.retries
    return ex.retry_attempts if retries is None else int(retries)


def _settle(ex: Execution, ctx: StepContext, input_data: Any, out: Any) -> Outcome:
    _apply_state(ex, ctx)
    if ctx._suspended:
        return Outcome("suspended", input_data, suspend_payload=ctx._suspend_payload,
                       label=ctx._resume_label)
    if ctx._bailed:
        return Outcome("bailed", input_data, output=ctx._bail_result)
    return Outcome("success", input_data, output=out)


async def call_step_once(ex: Execution, step: Any, input_data: Any, retry_count: int,
                         iteration_count: int | None = None) -> Outcome | Any:
    """One call of a step body on an Execution made for it (`Execution.for_step`), for an
    engine that retries the step itself: no input validation, no resume, no retries. Returns
    the body's output itself when the call was a plain success (no `set_state`, `suspend` or
    `bail`), else its `Outcome` (failed, suspended, bailed, or a success with a state change).
    The step context is the one `call_step` gives the body (`retry_count` as given)."""
    ctx = StepContext(ex, step.id, input_data, retry_count=retry_count,
                      iteration_count=iteration_count)
    ctx._suspend_schema = getattr(step, "suspend_schema", None)
    try:
        out = step.execute(ctx)
        if type(out) not in _PLAIN and inspect.isawaitable(out):
            out = await out
    except Exception as exc:
        return Outcome("failed", input_data, error=exc)
    if ctx._new_state is None and not ctx._suspended and not ctx._bailed:
        if type(out) is Outcome:  # (a body returning an Outcome object: not plain)
            return Outcome("success", input_data, output=out)
        return out
    return _settle(ex, ctx, input_data, out)


def _call_start(ex: Execution, step: Any, input_data: Any, resume: Resume | None,
                iteration_count: int | None, path: tuple[int, ...],
                foreach_index: int | None = None) -> Outcome | _Pending:
    sid = step.id
    if ex.validate_inputs and step.input_schema is not None:
        try:
            input_data = validate(step.input_schema, input_data, "Step input validation failed:")
        except FlowError as exc:
            ex.next_run_count(sid)
            return Outcome("failed", input_data, error=exc)
    ctx = StepContext(ex, sid, input_data,
                      resume_data=resume.payload if resume is not None else None,
                      retry_count=ex.next_run_count(sid), iteration_count=iteration_count,
                      resume=resume, path=path)
    ctx._suspend_schema = getattr(step, "suspend_schema", None)
    ctx._foreach_index = foreach_index
    try:
        out = step.execute(ctx)
    except Exception as exc:  # a step error: kept as the object, maybe retried
        if _attempts(ex, step) > 0 and not ex.signal.aborted:
            return _Pending(input_data, ctx, None, exc)
        return Outcome("failed", input_data, error=exc)
    if _is_awaitable(out):
        return _Pending(input_data, ctx, out, None)
    return _settle(ex, ctx, input_data, out)


async def _call_rest(ex: Execution, step: Any, pending: _Pending, resume: Resume | None,
                     iteration_count: int | None, path: tuple[int, ...],
                     foreach_index: int | None = None) -> Outcome:
    """Finish a call `_call_start` left pending: await the body, retry a failure."""
    input_data = pending.input
    ctx: StepContext | None = pending.ctx
    out = pending.out
    error = pending.error
    attempts = _attempts(ex, step)
    attempt = 0
    while True:
        if ctx is None:  # a retry: a fresh context and call
            ctx = StepContext(ex, step.id, input_data,
                              resume_data=resume.payload if resume is not None else None,
                              retry_count=ex.next_run_count(step.id),
                              iteration_count=iteration_count, resume=resume, path=path)
            ctx._suspend_schema = getattr(step, "suspend_schema", None)
            ctx._foreach_index = foreach_index
            try:
                out = step.execute(ctx)
            except Exception as exc:
                error = exc
        if error is None:
            try:
                if _is_awaitable(out):
                    out = await out
            except Exception as exc:
                error = exc
            else:
                return _settle(ex, ctx, input_data, out)
        if attempt < attempts and not ex.signal.aborted:
            attempt += 1
            if ex.retry_delay > 0 and await ex.signal.sleep(ex.retry_delay):
                break
            ctx = None
            error = None
            continue
        break
    return Outcome("failed", input_data, error=error)


def begin_step_call(
    ex: Execution,
    step: Any,
    input_data: Any,
    *,
    resume: Resume | None = None,
    iteration_count: int | None = None,
    path: tuple[int, ...] = (),
    foreach_index: int | None = None,
) -> Outcome | Coroutine[Any, Any, Outcome]:
    """`call_step` started synchronously: the `Outcome` when the body finished without waiting
    (the common case: no coroutine is made), else a coroutine to await for it."""
    started = _call_start(ex, step, input_data, resume, iteration_count, path, foreach_index)
    if type(started) is Outcome:
        return started
    assert isinstance(started, _Pending)
    return _call_rest(ex, step, started, resume, iteration_count, path, foreach_index)


async def call_step(
    ex: Execution,
    step: Any,
    input_data: Any,
    *,
    resume: Resume | None = None,
    iteration_count: int | None = None,
    path: tuple[int, ...] = (),
    foreach_index: int | None = None,
) -> Outcome:
    """Validate the input, run the body with retries, apply `set_state`; never raises for step
    errors (they are returned in the `Outcome`). `foreach_index`: the item, for a foreach body."""
    started = _call_start(ex, step, input_data, resume, iteration_count, path, foreach_index)
    if type(started) is Outcome:
        return started
    assert isinstance(started, _Pending)
    return await _call_rest(ex, step, started, resume, iteration_count, path, foreach_index)


def _labels(label: Any) -> list[str]:
    if label is None:
        return []
    if isinstance(label, str):
        return [label]
    return [str(x) for x in label]


def _step_begin(ex: Execution, step: Any, prev_output: Any, resume: Resume | None,
                iteration_count: int | None) -> StepResult:
    """The running record of a step (merged with the suspended one for a resume target), its
    start event and snapshot write."""
    sid = step.id
    now = _now()
    if resume is not None:  # this step is the resume target
        prev = ex.step_results.get(sid)
        base = prev if prev is not None else StepResult("running", payload=prev_output,
                                                        started_at=now)
        rec = replace(base, status="running", output=None, error=None, ended_at=None,
                      resume_payload=resume.payload, resumed_at=now)
    else:
        rec = StepResult("running", None, prev_output, None, now)
    if iteration_count:
        rec.metadata = {**(rec.metadata or {}), "iteration_count": iteration_count}
    if ex.emit is not None:
        ex.event("workflow-step-start", {"id": sid, "step_name": sid, "payload": rec.payload,
                                         "started_at": rec.started_at, "status": "running"})
    if ex.store is not None:
        ex.set_record(sid, rec)
        ex.persist("running")
    return rec


def _step_end(ex: Execution, sid: str, rec: StepResult, outcome: Outcome, is_target: bool,
              path: tuple[int, ...]) -> tuple[StepResult, bool]:
    """Store the final record of a step from its outcome and stream its end."""
    if not is_target:
        rec.payload = outcome.input
    end = _now()
    bailed = False
    st = outcome.status
    if st == "success" or st == "bailed":
        # a new record (a store may hold the running one): the fields of `rec`, changed
        rec = StepResult("success", outcome.output, rec.payload, None, rec.started_at, end,
                         rec.suspend_payload, rec.resume_payload, rec.suspended_at,
                         rec.resumed_at, rec.metadata)
        bailed = st == "bailed"
    elif st == "failed":
        rec = replace(rec, status="failed", error=outcome.error, ended_at=end)
    else:
        rec = replace(rec, status="suspended", suspend_payload=outcome.suspend_payload,
                      suspended_at=end)
        ex.suspended_paths[sid] = list(path)
        for lab in _labels(outcome.label):
            ex.resume_labels[lab] = {"step_id": sid, "foreach_index": None}
    ex.set_record(sid, rec)
    _emit_step_end(ex, sid, rec)
    return rec, bailed


async def execute_step(
    ex: Execution,
    step: Any,
    prev_output: Any,
    path: tuple[int, ...],
    resume: Resume | None,
    iteration_count: int | None = None,
) -> tuple[StepResult, bool]:
    """Run one step with its record, events and snapshot writes. Returns (record, bailed)."""
    is_target = resume is not None and bool(resume.steps) and resume.steps[0] == step.id
    if not is_target:
        resume = None
    rec = _step_begin(ex, step, prev_output, resume, iteration_count)
    outcome = await call_step(ex, step, prev_output, resume=resume,
                              iteration_count=iteration_count, path=path)
    return _step_end(ex, step.id, rec, outcome, is_target, path)


async def _step_rest(ex: Execution, step: Any, rec: StepResult, pending: _Pending,
                     path: tuple[int, ...]) -> tuple[StepResult, bool]:
    outcome = await _call_rest(ex, step, pending, None, None, path)
    return _step_end(ex, step.id, rec, outcome, False, path)


def _start_child(ex: Execution, step: Any, prev_output: Any,
                 path: tuple[int, ...]) -> tuple[StepResult, bool] | Later:
    """`execute_step` of a parallel/branch child as a `gather_started` branch: finished at once
    when its body does not wait, else a `Later` for the rest."""
    rec = _step_begin(ex, step, prev_output, None, None)
    started = _call_start(ex, step, prev_output, None, None, path)
    if type(started) is Outcome:
        return _step_end(ex, step.id, rec, started, False, path)
    assert isinstance(started, _Pending)
    return Later(_step_rest(ex, step, rec, started, path))


# -- entries ------------------------------------------------------------------------------
def entry_output(ex: Execution, entry: Entry | None) -> Any:
    """What the entry after `entry` receives as input (reference 3.1)."""
    if entry is None:
        return ex.input
    if isinstance(entry, StepEntry | LoopEntry | ForeachEntry):
        rec = ex.step_results.get(entry.step.id)
        return rec.output if rec is not None else None
    if isinstance(entry, SleepEntry | SleepUntilEntry):
        rec = ex.step_results.get(entry.id)
        return rec.output if rec is not None else None
    out: dict[str, Any] = {}
    for child in entry.steps:
        rec = ex.step_results.get(child.step.id)
        if rec is not None and rec.status == "success":
            out[child.step.id] = rec.output
    return out


def _block_result(ex: Execution, children: list[tuple[str, StepResult | None, bool]]) -> EntryResult:
    """Precedence: failed (the first) > suspended > canceled > success (reference 3.4)."""
    suspended = False
    for _sid, rec, _b in children:
        if rec is not None:
            st = rec.status
            if st == "failed":
                return EntryResult("failed", error=rec.error)
            if st == "suspended":
                suspended = True
    if suspended:
        return EntryResult("suspended")
    if ex.aborted:
        return EntryResult("canceled")
    return EntryResult("success", {sid: rec.output for sid, rec, bailed in children
                                   if rec is not None and rec.status == "success" and not bailed})


def _child_index(children: tuple[StepEntry, ...], resume: Resume) -> int:
    if len(resume.path) > 1 and 0 <= resume.path[1] < len(children):
        return resume.path[1]
    for i, child in enumerate(children):
        if child.step.id == resume.steps[0]:
            return i
    raise FlowError(f"resume: step {resume.steps[0]!r} is not a child of this block")


async def _run_children(ex: Execution, children: list[tuple[int, StepEntry]], prev: Any,
                        path: tuple[int, ...]) -> list[tuple[StepResult, bool]]:
    if len(children) == 1:
        i, child = children[0]
        return [await execute_step(ex, child.step, prev, (*path, i), None)]
    return await gather_started(_start_child, ((ex, c.step, prev, (*path, i))
                                               for i, c in children))


async def exec_parallel(ex: Execution, entry: ParallelEntry, prev: Any, path: tuple[int, ...],
                        resume: Resume | None) -> EntryResult:
    done: dict[str, tuple[StepResult | None, bool]] = {}
    if resume is not None:
        idx = _child_index(entry.steps, resume)
        rec, bailed = await execute_step(ex, entry.steps[idx].step, prev, (*path, idx), resume)
        done[entry.steps[idx].step.id] = (rec, bailed)
    else:
        results = await _run_children(ex, list(enumerate(entry.steps)), prev, path)
        done = {child.step.id: r for child, r in zip(entry.steps, results, strict=True)}
        if len(done) == len(results):  # distinct ids: each child's own record
            return _block_result(ex, [(child.step.id, rec, bailed) for child, (rec, bailed)
                                      in zip(entry.steps, results, strict=True)])
    children: list[tuple[str, StepResult | None, bool]] = []
    for child in entry.steps:
        sid = child.step.id
        got, was_bailed = done.get(sid, (ex.step_results.get(sid), False))
        children.append((sid, got, was_bailed))
    return _block_result(ex, children)


def _condition_failed(ex: Execution, step_id: str, index: int, exc: BaseException) -> bool:
    log.warning("workflow %r: branch condition %d (step %r) raised %r; treated as false",
                ex.workflow_id, index, step_id, exc)
    return False


async def _condition_rest(ex: Execution, value: Any, step_id: str, index: int) -> bool:
    try:
        return bool(await value)
    except Exception as exc:
        return _condition_failed(ex, step_id, index, exc)


def _start_condition(ex: Execution, cond: Any, step_id: str, prev: Any,
                     index: int) -> bool | Later:
    """A branch condition as a `gather_started` branch (a raising condition counts as false)."""
    try:
        value = cond(_condition_ctx(ex, step_id, prev))
        if not _is_awaitable(value):
            return bool(value)
    except Exception as exc:
        return _condition_failed(ex, step_id, index, exc)
    return Later(_condition_rest(ex, value, step_id, index))


async def exec_conditional(ex: Execution, entry: ConditionalEntry, prev: Any,
                           path: tuple[int, ...], resume: Resume | None) -> EntryResult:
    done: dict[str, tuple[StepResult | None, bool]] = {}
    if resume is not None:
        idx = _child_index(entry.steps, resume)
        rec, bailed = await execute_step(ex, entry.steps[idx].step, prev, (*path, idx), resume)
        done[entry.steps[idx].step.id] = (rec, bailed)
        selected = [i for i, c in enumerate(entry.steps)
                    if i == idx or c.step.id in ex.step_results]
    else:
        flags = await gather_started(_start_condition, (
            (ex, cond, child.step.id, prev, i)
            for i, (cond, child) in enumerate(zip(entry.conditions, entry.steps, strict=True))))
        selected = [i for i, ok in enumerate(flags) if ok]
        if selected:
            results = await _run_children(ex, [(i, entry.steps[i]) for i in selected], prev, path)
            for i, (rec, bailed) in zip(selected, results, strict=True):
                done[entry.steps[i].step.id] = (rec, bailed)
    children: list[tuple[str, StepResult | None, bool]] = []
    for i in selected:
        sid = entry.steps[i].step.id
        got, was_bailed = done.get(sid, (ex.step_results.get(sid), False))
        children.append((sid, got, was_bailed))
    return _block_result(ex, children)


async def exec_loop(ex: Execution, entry: LoopEntry, prev: Any, path: tuple[int, ...],
                    resume: Resume | None) -> EntryResult:
    step = entry.step
    iteration = 0
    data = prev
    if resume is not None:
        old = ex.step_results.get(step.id)
        if old is not None:
            data = old.payload
            n = (old.metadata or {}).get("iteration_count")
            iteration = int(n) - 1 if n else 0
    dowhile = entry.loop_type == "dowhile"
    while True:
        if ex.aborted:
            return EntryResult("canceled")
        rec, bailed = await execute_step(ex, step, data, path, resume, iteration_count=iteration + 1)
        resume = None
        if bailed:
            return EntryResult("bailed", rec.output)
        if rec.status != "success":
            return EntryResult(rec.status, error=rec.error)
        iteration += 1
        ok = bool(await _maybe_await(entry.condition(
            _condition_ctx(ex, step.id, rec.output, iteration_count=iteration))))
        data = rec.output
        if ok != dowhile:
            return EntryResult("success", rec.output)


async def exec_foreach(ex: Execution, entry: ForeachEntry, prev: Any, path: tuple[int, ...],
                       resume: Resume | None) -> EntryResult:
    step = entry.step
    sid = step.id
    now = _now()
    old = ex.step_results.get(sid)
    target: int | None = None
    meta: dict[str, Any] = {}
    if resume is not None and old is not None and isinstance(old.suspend_payload, dict):
        meta = old.suspend_payload.get(META) or {}
    if resume is not None and old is not None and meta:
        items = list(old.payload)
        statuses: list[str | None] = list(meta.get("foreach_status") or [None] * len(items))
        outputs: list[Any] = list(meta.get("foreach_output") or [None] * len(items))
        payloads: list[Any] = list(meta.get("foreach_suspend_payloads") or [None] * len(items))
        item_labels: dict[str, int] = dict(meta.get("resume_labels") or {})
        suspended_now = [i for i, s in enumerate(statuses) if s == "suspended"]
        target = resume.for_each_index
        if target is None:
            target = suspended_now[0] if suspended_now else None
        if target is not None and (target < 0 or target >= len(items)
                                   or statuses[target] != "suspended"):
            raise FlowError(
                f"resume: foreach step {sid!r} item {target} is not suspended; suspended items: "
                f"{suspended_now}")
        rec = replace(old, status="running", output=None, error=None, ended_at=None,
                      resume_payload=resume.payload, resumed_at=now)
    else:
        if not isinstance(prev, list | tuple):
            raise FlowError(f"foreach({sid!r}) needs a list as input, got {type(prev).__name__}: "
                            f"{prev!r}")
        items = list(prev)
        statuses = [None] * len(items)
        outputs = [None] * len(items)
        payloads = [None] * len(items)
        item_labels = {}
        rec = StepResult(status="running", payload=prev, started_at=now)
    if ex.emit is not None:
        ex.event("workflow-step-start", {"id": sid, "step_name": sid, "payload": rec.payload,
                                         "started_at": rec.started_at, "status": "running"})
    if ex.store is not None:
        ex.set_record(sid, rec)
        ex.persist("running")

    queue: list[int] = []
    if target is not None:
        queue.append(target)
    queue.extend(i for i, s in enumerate(statuses) if s is None)
    errors: dict[int, BaseException] = {}
    bail: list[Any] = []
    stop = False
    position = 0

    async def worker() -> None:
        nonlocal stop, position
        while not stop and position < len(queue) and not ex.aborted:
            i = queue[position]
            position += 1
            item_resume = None
            if i == target and resume is not None:
                # the id path goes on (a nested workflow item resumes its own suspended step)
                steps = list(resume.steps) if resume.steps[:1] == [sid] else [sid]
                item_resume = Resume(steps, resume.payload, list(path), resume.label, i)
            out = await call_step(ex, step, items[i], resume=item_resume, path=path,
                                  foreach_index=i)
            statuses[i] = out.status if out.status != "bailed" else "success"
            if out.status == "success":
                outputs[i] = out.output
            elif out.status == "failed":
                errors[i] = out.error  # type: ignore[assignment]
                stop = True
            elif out.status == "suspended":
                payloads[i] = out.suspend_payload
                for lab in _labels(out.label):
                    item_labels[lab] = i
            else:
                bail.append(out.output)
                stop = True

    workers = max(1, min(entry.concurrency, len(queue)))
    if workers == 1:
        await worker()
    else:
        await asyncio.gather(*(worker() for _ in range(workers)))
    end = _now()
    if errors:
        first = min(errors)
        rec = replace(rec, status="failed", error=errors[first], ended_at=end)
        result = EntryResult("failed", error=errors[first])
    elif bail:
        rec = replace(rec, status="success", output=bail[0], ended_at=end)
        result = EntryResult("bailed", bail[0])
    elif "suspended" in statuses:
        first = statuses.index("suspended")
        base = payloads[first]
        sp: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
        if base is not None and not isinstance(base, dict):
            sp["payload"] = base
        sp[META] = {"foreach_index": first, "foreach_status": statuses,
                    "foreach_output": outputs, "foreach_suspend_payloads": payloads,
                    "resume_labels": item_labels}
        inner_path = _meta_path(base)  # a nested workflow item: [inner step, ...] (ref. 3.10)
        if inner_path:
            sp[META]["path"] = inner_path
        rec = replace(rec, status="suspended", suspend_payload=sp, suspended_at=end)
        ex.suspended_paths[sid] = list(path)
        for lab, i in item_labels.items():
            if statuses[i] == "suspended":
                ex.resume_labels[lab] = {"step_id": sid, "foreach_index": i}
        result = EntryResult("suspended")
    elif ex.aborted or None in statuses:
        rec = replace(rec, status="canceled", output=outputs, ended_at=end)
        result = EntryResult("canceled")
    else:
        rec = replace(rec, status="success", output=outputs, ended_at=end)
        result = EntryResult("success", outputs)
    ex.set_record(sid, rec)
    _emit_step_end(ex, sid, rec)
    return result


def _emit_step_end(ex: Execution, sid: str, rec: StepResult) -> None:
    """Stream the end of step `sid`: `workflow-step-suspended`, or `workflow-step-result` with
    the error of a failed record and the output otherwise."""
    if ex.emit is None:
        return
    if rec.status == "suspended":
        ex.event("workflow-step-suspended", {
            "id": sid, "step_name": sid, "status": "suspended",
            "suspend_payload": rec.suspend_payload, "suspended_at": rec.suspended_at})
        return
    payload: dict[str, Any] = {"id": sid, "step_name": sid, "status": rec.status,
                               "ended_at": rec.ended_at}
    if rec.status == "failed":
        payload["error"] = rec.error
    else:
        payload["output"] = rec.output
    ex.event("workflow-step-result", payload)


def _seconds(value: Any, what: str) -> float:
    if value is None or value is False:
        return 0.0
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, int | float):
        return max(0.0, float(value))
    raise FlowError(f"{what} must return seconds (a number or timedelta), got {value!r}")


async def exec_sleep(ex: Execution, entry: SleepEntry | SleepUntilEntry, prev: Any) -> EntryResult:
    sid = entry.id
    started = _now()
    rec = StepResult(status="waiting", payload=prev, started_at=started)
    ex.set_record(sid, rec)
    if ex.emit is not None:
        ex.event("workflow-step-waiting", {"id": sid, "step_name": sid, "payload": prev,
                                           "started_at": started, "status": "waiting"})
    ex.persist("waiting")
    if isinstance(entry, SleepEntry):
        if entry.fn is not None:
            value = await _maybe_await(entry.fn(_condition_ctx(ex, sid, prev)))
            seconds = _seconds(value, f"sleep function of {sid!r}")
        else:
            seconds = _seconds(entry.duration, sid)
    else:
        date = entry.date
        if entry.fn is not None:
            date = await _maybe_await(entry.fn(_condition_ctx(ex, sid, prev)))
        if not isinstance(date, datetime):
            raise FlowError(f"sleep_until {sid!r} needs a datetime, got {date!r}")
        now = datetime.now(date.tzinfo) if date.tzinfo is not None else datetime.now()
        seconds = max(0.0, (date - now).total_seconds())
    aborted = await ex.signal.sleep(seconds)
    if aborted:
        ex.set_record(sid, replace(rec, status="canceled", ended_at=_now()))
        return EntryResult("canceled")
    rec = replace(rec, status="success", output=prev, ended_at=_now())
    ex.set_record(sid, rec)
    if ex.emit is not None:
        ex.event("workflow-step-result", {"id": sid, "step_name": sid, "status": "success",
                                          "output": prev, "ended_at": rec.ended_at})
    return EntryResult("success", prev)


async def execute_entry(ex: Execution, entry: Entry, prev: Any, index: int,
                        resume: Resume | None) -> EntryResult:
    path = (index,)
    if isinstance(entry, StepEntry):
        rec, bailed = await execute_step(ex, entry.step, prev, path, resume)
        if bailed:
            return EntryResult("bailed", rec.output)
        if rec.status == "success":
            return EntryResult("canceled" if ex.aborted else "success", rec.output)
        return EntryResult(rec.status, error=rec.error)
    if isinstance(entry, ParallelEntry):
        return await exec_parallel(ex, entry, prev, path, resume)
    if isinstance(entry, ConditionalEntry):
        return await exec_conditional(ex, entry, prev, path, resume)
    if isinstance(entry, LoopEntry):
        return await exec_loop(ex, entry, prev, path, resume)
    if isinstance(entry, ForeachEntry):
        return await exec_foreach(ex, entry, prev, path, resume)
    if isinstance(entry, SleepEntry | SleepUntilEntry):
        return await exec_sleep(ex, entry, prev)
    raise FlowError(f"unknown graph entry {entry!r}")


# -- the main loop --------------------------------------------------------------------------
async def run_graph(ex: Execution, resume: Resume | None = None) -> WorkflowResult:
    """Run the workflow graph (from the resume point if given) and return the result."""
    graph = ex.workflow.graph
    start = resume.path[0] if resume is not None else 0
    if resume is not None and not 0 <= start < len(graph):
        raise FlowError(f"resume: execution path {resume.path} does not fit workflow "
                        f"{ex.workflow_id!r} ({len(graph)} entries)")
    last: Any = None
    status = "success"
    error: BaseException | None = None
    for i in range(start, len(graph)):
        if ex.aborted:
            status = "canceled"
            break
        entry = graph[i]
        prev = entry_output(ex, graph[i - 1] if i > 0 else None)
        try:
            r = await execute_entry(ex, entry, prev, i, resume)
        except Exception as exc:  # loop condition, sleep fn, bad foreach input, ...
            r = EntryResult("failed", error=exc)
        resume = None
        if ex.aborted:  # reference 3.3 step 8: an aborted run's entry is canceled
            status = "canceled"
            break
        if r.status == "success":
            last = r.output
            if ex.store is not None:
                ex.persist("running")
            continue
        if r.status == "bailed":
            last = r.output
            break
        status = r.status
        error = r.error
        break
    return finish(ex, status, last, error)


def finish(ex: Execution, status: str, result: Any, error: BaseException | None) -> WorkflowResult:
    """Build the `WorkflowResult` and write the final snapshot."""
    suspended = ex.suspended_list() if status == "suspended" else []
    wr = WorkflowResult(
        status=status,  # type: ignore[arg-type]
        result=result if status == "success" else None,
        error=error if status == "failed" else None,
        steps=dict(ex.step_results),
        input=ex.input,
        suspended=suspended,
        state=dict(ex.state),
        run_id=ex.run_id,
    )
    if ex.store is not None:
        ex.persist(
            status,
            result=wr.result,
            error=wr.error,
            state=wr.state,
            suspended_paths={k: v for k, v in ex.suspended_paths.items()
                             if (r := ex.step_results.get(k)) is not None
                             and r.status == "suspended"},
            resume_labels=ex.resume_labels,
            request_context=ex.request_context.to_dict(),
        )
    return wr
