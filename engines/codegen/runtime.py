"""Runtime glue for generated code: the `run` object (`FlowRun`) and the durable step wrappers.

The generated workflow function runs as a `durable` workflow body. It keeps flow's per-run data
in a `FlowRun` (step records, state, request context, input) that it rebuilds deterministically
on replay, because everything it learns comes from journaled step results:

- a flow step is a registered durable step (`flow_step_body`): it builds a real
  `flow.StepContext`, runs the step body once per durable attempt (flow's retries become the
  step's `max_retries`, flow's retry delay the `RetryableError.retry_after`) and returns a JSON
  outcome (status, validated input, output, suspend payload, state changes, request-context
  changes, abort flag). Step errors are raised, so the runtime retries them and surfaces the
  last one to the body, which records the step as failed and re-raises it through the generated
  code (so tracebacks show the generated line);
- a lifted closure is a registered durable step too (`closure_body`): its return value is
  journaled, so replay never calls it again;
- Mastra's `suspend()` becomes a durable hook with token `mastra:<run_id>:<step path>`
  (`#<index>` appended for a foreach item); resuming the run sends the resume data to that hook
  and the body calls the step again with it.

Records follow `flow.interpreter` exactly (payload, output, metadata, merge rule on resume), so a
codegen run's `WorkflowResult` equals the default engine's for the same workflow.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from engines.codegen.errors import StepFailed, error_json, original_error, restore_error
from flow.context import RequestContext, StepContext
from flow.errors import FlowError
from flow.interpreter import META, Execution, Outcome, Resume, begin_step_call, call_step_once
from flow.mapping import js_truthy, walk_path
from flow.results import StepResult, WorkflowResult, to_jsonable
from flow.validation import validate

TOKEN_PREFIX = "mastra:"


def _labels(label: Any) -> list[str]:
    if label is None:
        return []
    if isinstance(label, str):
        return [label]
    return [str(x) for x in label]


def hook_token(run_id: str, path: list[str], index: int | None = None) -> str:
    """The durable hook token of a suspended step: `mastra:<run_id>:<a.b.c>` (+ `#<i>`)."""
    token = f"{TOKEN_PREFIX}{run_id}:{'.'.join(path)}"
    return token if index is None else f"{token}#{index}"


async def durable_sleep(duration: Any) -> None:
    """A durable sleep (`durable.sleep`), imported when first used."""
    from durable import sleep

    await sleep(duration)


def _durable_now() -> float:
    """The run's deterministic clock inside a body (epoch seconds)."""
    from durable import now

    value = now()
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


# ------------------------------------------------------------------------------------------
# Live runs: the body's FlowRun, reachable by steps running in the same process.


@dataclass
class Watch:
    """What an engine call waits on: the body reports suspensions through `changed()`."""

    callbacks: list[Callable[[], None]] = field(default_factory=list)

    def changed(self) -> None:
        for cb in list(self.callbacks):
            cb()


_LIVE: dict[str, FlowRun] = {}
_ERRORS: dict[tuple[str, str, str], BaseException] = {}


def live_run(run_id: str) -> FlowRun | None:
    """The FlowRun of a run whose body is (or was last) executing in this process."""
    return _LIVE.get(run_id)


def forget_run(run_id: str) -> None:
    """Drop an ended run's FlowRun (and anything kept for it) from this process."""
    _LIVE.pop(run_id, None)
    for key in [k for k in _ERRORS if k[0] == run_id]:
        del _ERRORS[key]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    """`flow.results.to_jsonable` with a fast path: a value that is already plain JSON (str,
    int, float, bool, None, and dicts with str keys / lists of such values, nested up to
    `_PLAIN_DEPTH` levels) is returned as is (durable encodes it at once); anything else (a
    tuple, a model, a non-str key, ...) is converted by `to_jsonable`."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS
                                      and not _is_plain(v, _PLAIN_DEPTH - 1)):
                return to_jsonable(value)
        return value
    if t is list:
        for v in value:
            if type(v) not in _SCALARS and not _is_plain(v, _PLAIN_DEPTH - 1):
                return to_jsonable(value)
        return value
    return to_jsonable(value)


_PLAIN_DEPTH = 32


def _is_plain(value: Any, depth: int) -> bool:
    """True when `value` is plain JSON data (see `_jsonable`) no deeper than `depth` levels."""
    t = type(value)
    if t is dict:
        if depth <= 0:
            return False
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _is_plain(v, depth - 1)):
                return False
        return True
    if t is list:
        if depth <= 0:
            return False
        for v in value:
            if type(v) not in _SCALARS and not _is_plain(v, depth - 1):
                return False
        return True
    return t in _SCALARS


def result_json(result: WorkflowResult) -> dict[str, Any]:
    """`result.to_dict()` with every error in `error_json` form (its class survives the JSON;
    `engines.codegen.engine.result_from_json` reads it back). Plain JSON values are not copied
    (durable encodes the body's result at once)."""
    out: dict[str, Any] = {
        "status": result.status,
        "run_id": result.run_id,
        "input": _jsonable(result.input),
        "steps": {sid: _record_json(rec) for sid, rec in result.steps.items()},
        "state": _jsonable(result.state),
    }
    if result.status == "success":
        out["result"] = _jsonable(result.result)
    elif result.status == "failed":
        out["error"] = error_json(result.error) if result.error is not None else None
    elif result.status == "suspended":
        out["suspended"] = [list(p) for p in result.suspended]
    return out


_RARE_FIELDS = ("suspend_payload", "resume_payload", "suspended_at", "resumed_at", "metadata")


def _record_json(rec: StepResult) -> dict[str, Any]:
    """`rec.to_dict()` (same keys, same order) with the error in `error_json` form."""
    if (rec.status == "success" and rec.error is None and type(rec.started_at) is float
            and type(rec.ended_at) is float and rec.suspend_payload is None
            and rec.resume_payload is None and rec.suspended_at is None
            and rec.resumed_at is None and rec.metadata is None):
        # a plain successful step (the usual record): built in one go
        return {"status": "success", "payload": _jsonable(rec.payload),
                "output": _jsonable(rec.output), "started_at": rec.started_at,
                "ended_at": rec.ended_at}
    out: dict[str, Any] = {"status": rec.status, "payload": _jsonable(rec.payload)}
    if rec.status == "success":
        out["output"] = _jsonable(rec.output)
    if rec.error is not None:
        out["error"] = error_json(rec.error)
    v = rec.started_at
    if v is not None:
        out["started_at"] = v if type(v) is float else _jsonable(v)
    v = rec.ended_at
    if v is not None:
        out["ended_at"] = v if type(v) is float else _jsonable(v)
    if (rec.suspend_payload is not None or rec.resume_payload is not None
            or rec.suspended_at is not None or rec.resumed_at is not None
            or rec.metadata is not None):
        for name in _RARE_FIELDS:
            value = getattr(rec, name)
            if value is not None:
                out[name] = _jsonable(value)
    return out


# ------------------------------------------------------------------------------------------
# Tasks of a body: which ones are parked on a resume hook


class Lane:
    """One asyncio task of a codegen body: the body's own task (the root lane) or a child of a
    parallel / branch / foreach entry started by `FlowRun.gather`. `hook_waits` counts the
    resume hooks the task waits on right now; `children` are the lanes of the `gather` it
    awaits. `blocked()` is True when the task can only go on after a resume."""

    __slots__ = ("parent", "task", "hook_waits", "children")

    def __init__(self, parent: Lane | None) -> None:
        self.parent = parent
        self.task: asyncio.Task[Any] | None = None
        self.hook_waits = 0
        self.children: list[Lane] | None = None

    def blocked(self) -> bool:
        if self.hook_waits > 0:
            return True
        kids = self.children
        if not kids:
            return False
        pending = False
        for kid in kids:
            t = kid.task
            if t is not None and t.done():
                if _failed(t) or t.cancelled():
                    return False  # the gather is about to decide: not parked
                continue
            if not kid.blocked():
                return False
            pending = True
        return pending


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


_LANE: contextvars.ContextVar[Lane | None] = contextvars.ContextVar("wfbench_codegen_lane",
                                                                    default=None)


@contextmanager
def parked() -> Iterator[None]:
    """Around a wait for a resume (a hook, a signal): the current body task counts as parked
    (`Lane.blocked()`), so `FlowRun.gather` can fail an entry whose other child failed. Enter it
    before notifying watchers that the step is suspended."""
    lane = _LANE.get()
    if lane is not None:
        lane.hook_waits += 1
    try:
        yield
    except Exception:
        if lane is not None:
            lane.hook_waits -= 1
        raise
    # a task cancelled or closed while it waits (its loop closed, the run abandoned, a sibling
    # failed) stays parked: the run is still suspended at that step
    if lane is not None:
        lane.hook_waits -= 1


def enter_root_lane() -> Lane:
    """Called by the body: its own task becomes the root lane."""
    lane = Lane(None)
    lane.task = asyncio.current_task()
    _LANE.set(lane)
    return lane


class _CancelledSuspended:
    """The result of a suspended child of an entry that failed (see `FlowRun.gather`)."""

    status = "suspended"
    output = None
    step_id = None

    def __repr__(self) -> str:
        return "CANCELLED_SUSPENDED"


CANCELLED_SUSPENDED = _CancelledSuspended()


# ------------------------------------------------------------------------------------------
# Entry results seen by generated code


class R:
    """The result of one entry in generated code: `status` (success|bailed|canceled|suspended),
    `output` (the entry's output) and `next_input` (what the next entry receives)."""

    __slots__ = ("status", "output", "next_input", "step_id")

    def __init__(self, status: str, output: Any = None, next_input: Any = None,
                 step_id: str | None = None) -> None:
        self.status = status
        self.output = output
        self.next_input = output if next_input is None else next_input
        self.step_id = step_id

    def __repr__(self) -> str:
        return f"R({self.status!r}, {self.output!r})"


class Stop(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by `FlowRun.next_input` when an entry did not succeed: it ends the generated
    function, and `FlowRun.execute` finishes the run with the entry's result."""

    __slots__ = ("r",)

    def __init__(self, r: R) -> None:
        super().__init__(r.status)
        self.r = r


class _Ref:
    """A value of a mapping object read when the map step runs (`FlowRun.mapping`): from an
    earlier step's output, the run's input data or the request context."""

    __slots__ = ("kind", "source", "path")

    def __init__(self, kind: str, source: Any, path: Any = None) -> None:
        self.kind = kind
        self.source = source
        self.path = path

    def __repr__(self) -> str:
        return f"_Ref({self.kind!r}, {self.source!r}, {self.path!r})"


class _Item:
    """One foreach item's outcome (no record of its own)."""

    __slots__ = ("status", "output", "suspend_payload")

    def __init__(self, status: str, output: Any = None, suspend_payload: Any = None) -> None:
        self.status = status
        self.output = output
        self.suspend_payload = suspend_payload


# ------------------------------------------------------------------------------------------
# The run object of generated code


class FlowRun:
    """Flow's per-run data inside a codegen body, and the helpers generated code calls.

    One per workflow invocation: the top-level run, and a child per nested-workflow call
    (`scope` = the nested workflow ids from the top, sharing the request context).
    """

    def __init__(self, program: Any, workflow_id: str, run_id: str, input_data: Any,
                 state: dict[str, Any], request_context: dict[str, Any],
                 scope: tuple[str, ...] = (), parent: FlowRun | None = None) -> None:
        self.program = program
        self.compiled = program.compiled
        self.binding = self.compiled.workflows[workflow_id]
        self.workflow = self.binding.workflow
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.input = input_data
        self.state = dict(state)
        self.rc: dict[str, Any] = request_context if parent is None else parent.rc
        self.scope = scope
        self.parent = parent
        self.root: FlowRun = parent.root if parent is not None else self
        self.records: dict[str, StepResult] = {}
        self.suspended_paths: dict[str, list[str]] = {}
        self.run_counts: dict[str, int] = {}
        self.children: dict[str, FlowRun] = {}
        self.foreach_progress: dict[str, dict[str, list[Any]]] = {}
        # step id -> how many of its foreach items are "suspended" in foreach_progress (kept
        # with the statuses: asking the list at every item's end would be O(K^2))
        self.foreach_parked: dict[str, int] = {}
        self.aborted: bool = False if parent is None else parent.root.aborted
        self.waiting_hooks: dict[str, list[str]] = {}  # token -> suspended path (root only)
        self.labels: dict[str, str] = {}  # resume label -> token (root only)
        self.inflight = 0
        self.sleeping = 0
        self.watch: Watch | None = None
        self.final: WorkflowResult | None = None
        self.lane: Lane | None = None  # root only: the body's task (see `Lane`)
        self.wakers: set[Callable[[], None]] = set()  # root only: `gather` loops to wake
        self.validate_inputs = bool(getattr(self.root.workflow, "validate_inputs", True))
        self._calls: dict[str, StepCall] = {}  # use_step(id), one per step id

    # -- bookkeeping -----------------------------------------------------------------------

    def _abort(self) -> None:
        self.root.aborted = True

    @property
    def is_aborted(self) -> bool:
        return self.root.aborted

    def _notify(self) -> None:
        root = self.root
        for wake in list(root.wakers):
            wake()
        w = root.watch
        if w is not None:
            w.changed()

    def path_of(self, step_id: str) -> list[str]:
        return [*self.scope, step_id]

    def set_record(self, step_id: str, rec: StepResult) -> None:
        self.records[step_id] = rec

    def next_count(self, step_id: str, attempts: int = 1) -> int:
        """The retry_count the next execution of `step_id` sees (flow: one per attempt)."""
        base = self.run_counts.get(step_id, -1) + 1
        self.run_counts[step_id] = base + attempts - 1
        return base

    def suspended_list(self) -> list[list[str]]:
        out: list[list[str]] = []
        for sid in self.suspended_paths:
            rec = self.records.get(sid)
            if rec is not None and rec.status == "suspended":
                meta = rec.suspend_payload.get(META) if isinstance(rec.suspend_payload, dict) else None
                inner = [str(p) for p in (meta.get("path") or [])] if isinstance(meta, dict) else []
                out.append([sid, *inner])
        return out

    def is_quiescent_suspended(self) -> bool:
        """True when the body waits only on Mastra resume hooks: nothing in flight, and every
        task of the body is parked on a hook or done (and no failure is on its way up)."""
        root = self.root
        lane = root.lane
        return (root.inflight == 0 and bool(root.waiting_hooks) and root.final is None
                and (lane is None or lane.task is None or lane.task.done() or lane.blocked()))

    async def gather(self, *aws: Any) -> list[Any]:
        """The children of a parallel, branch or foreach entry, run concurrently: like
        `asyncio.gather(*aws, return_exceptions=True)` (results in order, a child's exception as
        its result), with flow's precedence failed > suspended: once a child has failed and every
        other child is done or parked on a resume hook, the parked ones are cancelled (their
        result is `CANCELLED_SUSPENDED`) and the entry fails, as in flow, where a suspended step
        returns instead of waiting."""
        if not aws:
            return []
        root = self.root
        parent = _LANE.get()
        if parent is None:
            parent = Lane(None)
        loop = asyncio.get_running_loop()
        lanes: list[Lane] = []
        tasks: list[asyncio.Task[Any]] = []
        left = [len(aws)]  # children not done yet (done callbacks: O(1) per child)
        failed = [False]  # a child has failed

        def finished(task: asyncio.Task[Any]) -> None:
            left[0] -= 1
            if _failed(task):
                failed[0] = True
            root._notify()  # wakes this loop, enclosing gathers and the engine's watch

        for aw in aws:
            lane = Lane(parent)
            ctx = contextvars.copy_context()
            ctx.run(_LANE.set, lane)
            task = loop.create_task(aw, context=ctx)
            lane.task = task
            task.add_done_callback(finished)
            lanes.append(lane)
            tasks.append(task)
        parent.children = lanes
        wake = asyncio.Event()

        def waker() -> None:
            # the loop below has something to decide only when every child is done or one
            # has failed (then each child parking on a hook counts): not at every step's end
            if left[0] == 0 or failed[0]:
                wake.set()

        root.wakers.add(waker)
        dropped: set[int] = set()
        try:
            while left[0] > 0:
                wake.clear()
                if failed[0] and all(t.done() or lane.blocked() for t, lane in zip(tasks, lanes,
                                                                                  strict=True)):
                    parked_tasks = [t for t in tasks if not t.done()]
                    for t in parked_tasks:
                        dropped.add(id(t))
                        t.cancel()
                    if parked_tasks:  # (all may be done, their callbacks not run yet)
                        await asyncio.wait(parked_tasks)
                    break
                await wake.wait()
        except asyncio.CancelledError:
            for t in tasks:
                if not t.done():
                    t.cancel()
            raise
        finally:
            root.wakers.discard(waker)
            parent.children = None
        out: list[Any] = []
        for t in tasks:
            if id(t) in dropped and t.cancelled():
                out.append(CANCELLED_SUSPENDED)
            elif t.cancelled():
                out.append(asyncio.CancelledError())
            elif t.exception() is not None:
                out.append(t.exception())
            else:
                out.append(t.result())
        return out

    def snapshot(self) -> WorkflowResult:
        """The `WorkflowResult` of this run while it is suspended (nested runs folded in)."""
        records = dict(self.records)
        suspended = []
        for sid, child in self.children.items():
            inner = child.snapshot()
            rec = records.get(sid)
            if inner.status != "suspended" or rec is None or rec.status != "running":
                continue
            for path in inner.suspended:
                crec = inner.steps.get(path[0])
                sp = crec.suspend_payload if crec is not None else None
                payload = {k: v for k, v in sp.items() if k != META} if isinstance(sp, dict) else {}
                payload[META] = {"run_id": self.run_id, "path": list(path)}
                rec = replace(rec, status="suspended", suspend_payload=payload,
                              suspended_at=crec.suspended_at if crec is not None else None)
                suspended.append([sid, *path])
            records[sid] = rec
        for sid in self.suspended_paths:
            r = records.get(sid)
            if r is not None and r.status == "suspended":
                suspended.append(self.suspended_list_one(sid))
        if not suspended:
            return WorkflowResult(status="success", steps=records, input=self.input,
                                  state=dict(self.state), run_id=self.run_id)
        return WorkflowResult(status="suspended", steps=records, input=self.input,
                              suspended=suspended, state=dict(self.state), run_id=self.run_id)

    def suspended_list_one(self, sid: str) -> list[str]:
        rec = self.records[sid]
        meta = rec.suspend_payload.get(META) if isinstance(rec.suspend_payload, dict) else None
        inner = [str(p) for p in (meta.get("path") or [])] if isinstance(meta, dict) else []
        return [sid, *inner]

    def mark_resumed(self, payload: Any) -> None:
        """Ancestors' records of nested workflows get the merge rule of a resumed step."""
        child, parent = self, self.parent
        while parent is not None:
            sid = child.scope[-1]
            rec = parent.records.get(sid)
            if rec is not None:
                inner = child.snapshot()
                sp = None
                for path in inner.suspended or []:
                    crec = inner.steps.get(path[0])
                    csp = crec.suspend_payload if crec is not None else None
                    sp = {k: v for k, v in csp.items() if k != META} if isinstance(csp, dict) else {}
                    sp[META] = {"run_id": self.run_id, "path": list(path)}
                parent.records[sid] = replace(rec, suspend_payload=sp if sp is not None else rec.suspend_payload,
                                              suspended_at=rec.suspended_at or _durable_now(),
                                              resume_payload=payload, resumed_at=_durable_now())
            child, parent = parent, parent.parent

    # -- what generated code calls ---------------------------------------------------------

    async def execute(self, fn: Callable[..., Any], input_data: Any) -> dict[str, Any]:
        """Run the generated function `fn` of this run's workflow; returns the JSON result (an
        entry that did not succeed stops it through `next_input`)."""
        try:
            return await fn(self, input_data)  # type: ignore[no-any-return]
        except Stop as stop:
            return self.end(stop.r)

    @staticmethod
    def next_input(r: R) -> Any:
        """What the entry after `r` receives; raises `Stop` when `r` did not succeed (suspended,
        bailed, canceled): the run ends with it."""
        if r.status != "success":
            raise Stop(r)
        return r.next_input

    def use_step(self, step_id: str) -> StepCall:
        call = self._calls.get(step_id)
        if call is None:
            binding = self.binding.steps.get(step_id)
            if binding is None:
                raise FlowError(f"codegen: workflow {self.workflow_id!r} has no step {step_id!r}")
            call = self._calls[step_id] = StepCall(self, binding)
        return call

    def use_closure(self, closure_id: str) -> ClosureCall:
        return ClosureCall(self, closure_id)

    def end(self, r: R) -> dict[str, Any]:
        """Finish the run with the last entry's result; returns the JSON result."""
        status = {"success": "success", "bailed": "success"}.get(r.status, r.status)
        self.final = WorkflowResult(
            status=status,  # type: ignore[arg-type]
            result=r.output if status == "success" else None,
            steps=dict(self.records), input=self.input,
            suspended=self.suspended_list() if status == "suspended" else [],
            state=dict(self.state), run_id=self.run_id)
        return result_json(self.final)

    def fail(self, exc: BaseException) -> dict[str, Any]:
        """Finish the run as failed with `exc` (a step error escaping the generated code)."""
        # a nested workflow left suspended by the failure of a sibling keeps a suspended record
        steps = self.snapshot().steps if self.children else dict(self.records)
        self.final = WorkflowResult(status="failed", error=exc, steps=steps,
                                    input=self.input, state=dict(self.state), run_id=self.run_id)
        return result_json(self.final)

    def block(self, ids: list[str], results: list[Any]) -> R:
        """A parallel/branch entry: failed > suspended > canceled > success (reference 3.4)."""
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, Exception):
                raise res
        for res in results:
            if isinstance(res, Exception):
                raise res
        if self.is_aborted:
            return R("canceled")
        output = {res.step_id: res.output for res in results if res.status == "success"}
        nxt = {}
        for sid in ids:
            rec = self.records.get(sid)
            if rec is not None and rec.status == "success":
                nxt[sid] = rec.output
        return R("success", output, nxt)

    def foreach_items(self, step_id: str, prev: Any) -> list[Any]:
        if not isinstance(prev, list | tuple):
            raise FlowError(f"foreach({step_id!r}) needs a list as input, got {type(prev).__name__}: "
                            f"{prev!r}")
        self.set_record(step_id, StepResult(status="running", payload=prev, started_at=time.time()))
        n = len(prev)
        self.foreach_progress[step_id] = {"foreach_status": [None] * n, "foreach_output": [None] * n,
                                          "foreach_suspend_payloads": [None] * n}
        self.foreach_parked[step_id] = 0
        return list(prev)

    def foreach_suspended(self, step_id: str, at: Any) -> None:
        """The foreach record while items are suspended (flow's shape: the first suspended
        item's payload plus `__workflow_meta` with every item's status/output/payload)."""
        progress = self.foreach_progress[step_id]
        statuses = progress["foreach_status"]
        first = statuses.index("suspended")
        base = progress["foreach_suspend_payloads"][first]
        sp: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
        if base is not None and not isinstance(base, dict):
            sp["payload"] = base
        sp[META] = {"foreach_index": first, "foreach_status": list(statuses),
                    "foreach_output": list(progress["foreach_output"]),
                    "foreach_suspend_payloads": list(progress["foreach_suspend_payloads"]),
                    "resume_labels": {}}
        rec = self.records[step_id]
        self.set_record(step_id, replace(rec, status="suspended", suspend_payload=sp,
                                         suspended_at=rec.suspended_at or at))
        self.suspended_paths[step_id] = self.path_of(step_id)

    def foreach_end(self, step_id: str, prev: Any, results: list[Any]) -> R:
        rec = self.records[step_id]
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, Exception):
                raise res
        errors = [res for res in results if isinstance(res, Exception)]
        if errors:
            self.set_record(step_id, replace(rec, status="failed", error=errors[0], ended_at=time.time()))
            raise errors[0]
        outputs = [res.output for res in results]
        bails = [res.output for res in results if res.status == "bailed"]
        end = time.time()
        if bails:
            self.set_record(step_id, replace(rec, status="success", output=bails[0], ended_at=end))
            return R("bailed", bails[0])
        if self.is_aborted:
            self.set_record(step_id, replace(rec, status="canceled", output=outputs, ended_at=end))
            return R("canceled")
        self.set_record(step_id, replace(rec, status="success", output=outputs, ended_at=end))
        return R("success", outputs)

    async def mapping(self, step_id: str, prev: Any, spec: dict[str, Any]) -> R:
        """A mapping-object step computed inline (from journaled data only): `spec` maps each
        key to its value — a constant, a `from_step` / `from_init` / `from_request_context`
        reference or a `use_closure` call on `prev` — read now, in key order."""
        rec = StepResult(status="running", payload=prev, started_at=time.time())
        self.next_count(step_id)
        try:
            out = {}
            for key, value in spec.items():
                if type(value) is _Ref:
                    value = self._read(value)
                elif type(value) is ClosureCall:
                    value = await value(prev)
                out[key] = value
        except Exception as exc:
            self.set_record(step_id, replace(rec, status="failed", error=exc, ended_at=time.time()))
            raise
        self.set_record(step_id, replace(rec, status="success", output=out, ended_at=time.time()))
        return R("canceled" if self.is_aborted else "success", out)

    @staticmethod
    def from_step(ids: list[str], path: str) -> _Ref:
        """Mapping value: `path` in the output of the first of `ids` with a truthy output."""
        return _Ref("step", ids, path)

    @staticmethod
    def from_init(path: str) -> _Ref:
        """Mapping value: `path` in the run's input data."""
        return _Ref("init", None, path)

    @staticmethod
    def from_request_context(key: str) -> _Ref:
        """Mapping value: the request context's `key`."""
        return _Ref("rc", key)

    def _read(self, ref: _Ref) -> Any:
        if ref.kind == "step":
            ids = ref.source
            found: Any = None
            found_id = ids[0] if ids else "?"
            for sid in ids:
                rec = self.records.get(sid)
                out = rec.output if rec is not None and rec.status == "success" else None
                if js_truthy(out):
                    found, found_id = out, sid
                    break
            return walk_path(found, ref.path, found_id)
        if ref.kind == "init":
            return walk_path(self.input, ref.path, "initData")
        return self.rc.get(ref.source)

    def constant(self, constant_id: str) -> Any:
        return self.compiled.constants[constant_id]

    def sleep_start(self, sleep_id: str, prev: Any) -> None:
        self.root.inflight += 1
        self.root.sleeping += 1
        self.set_record(sleep_id, StepResult(status="waiting", payload=prev, started_at=time.time()))

    def sleep_end(self, sleep_id: str, prev: Any) -> R:
        self.root.inflight -= 1
        self.root.sleeping -= 1
        rec = self.records[sleep_id]
        self.set_record(sleep_id, replace(rec, status="success", output=prev, ended_at=time.time()))
        return R("canceled" if self.is_aborted else "success", prev)

    @staticmethod
    def seconds(value: Any) -> float:
        if value is None or value is False:
            return 0.0
        if isinstance(value, timedelta):
            return max(0.0, value.total_seconds())
        if isinstance(value, int | float):
            return max(0.0, float(value))
        raise FlowError(f"sleep function must return seconds (a number or timedelta), got {value!r}")

    @staticmethod
    def until(date: Any) -> datetime:
        """The wake-up instant of a sleep_until (ISO text or datetime). The compiler and
        `closure_value` make naive dates aware (local time); a naive one here comes from a
        journal of an older version, which meant UTC."""
        if isinstance(date, str):
            date = datetime.fromisoformat(date)
        if not isinstance(date, datetime):
            raise FlowError(f"sleep_until needs a datetime, got {date!r}")
        return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------
# Calls from generated code


def _call_keywords(run: FlowRun, input_data: Any) -> dict[str, Any]:
    """The journaled keywords every durable step or closure call of `run` carries: the input,
    and the scope, state and request context only when they are not empty."""
    kw: dict[str, Any] = {"input_data": input_data}
    if run.scope:
        kw["scope"] = list(run.scope)
    if run.state:
        kw["state"] = run.state
    if run.rc:
        kw["request_context"] = run.rc
    return kw


def _succeeded(rec: StepResult, first: dict[str, Any], output: Any, ended_at: Any) -> StepResult:
    """`replace(rec, **first, status="success", output=output, ended_at=ended_at)`, built
    directly (the per-step hot path)."""
    return StepResult("success", output, first["payload"] if first else rec.payload, rec.error,
                      first["started_at"] if first else rec.started_at, ended_at,
                      rec.suspend_payload, rec.resume_payload, rec.suspended_at, rec.resumed_at,
                      rec.metadata)


class StepCall:
    """`use_step(id)`: call it for a step entry, `.item(i, x)` for one foreach item."""

    __slots__ = ("run", "binding", "durable")

    def __init__(self, run: FlowRun, binding: Any) -> None:
        self.run = run
        self.binding = binding
        # the registered durable step when the program is codegen's own (`Program.durable_step`,
        # called with `step_args`' compact keywords); None for another backend's program (the
        # Temporal one), whose `step_fn` takes every keyword
        durable_step = getattr(run.program, "durable_step", None)
        self.durable = (durable_step(run.workflow_id, binding.step_id)
                        if durable_step is not None and binding.nested is None else None)

    def __call__(self, prev: Any, iteration: int | None = None) -> Any:
        if self.binding.nested is not None:
            return self._nested(prev, iteration)
        return self._step(prev, iteration)

    async def _invoke(self, input_data: Any, *, resume: bool, resume_data: Any,
                      iteration: int | None, item: int | None) -> dict[str, Any]:
        run = self.run
        root = run.root
        sid = self.binding.step_id
        root.inflight += 1
        try:
            if self.durable is not None:
                # `step_args(...)` of the keywords below, built directly (the per-step path)
                kw = _call_keywords(run, input_data)
                base = run.run_counts.get(sid, -1) + 1
                if base:
                    kw["retry_base"] = base
                if iteration is not None:
                    kw["iteration"] = iteration
                if resume:
                    kw["resume"] = True
                if resume_data is not None:
                    kw["resume_data"] = resume_data
                if item is not None:
                    kw["item"] = item
                return await self.durable(**kw)  # type: ignore[no-any-return]
            fn = run.program.step_fn(run.workflow_id, sid)
            return await fn(  # type: ignore[no-any-return]
                run_id=run.run_id, scope=list(run.scope), workflow_id=run.workflow_id, step_id=sid,
                input_data=input_data, state=run.state, request_context=run.rc,
                retry_base=run.run_counts.get(sid, -1) + 1, iteration=iteration,
                resume=resume, resume_data=resume_data, item=item)
        finally:
            root.inflight -= 1
            if root.waiting_hooks or root.wakers:
                # only a run waiting on a resume hook (is it quiescent now?) or a `gather`
                # loop listens; a chain of steps notifies nobody
                root._notify()

    def _real_error(self, exc: Exception) -> BaseException:
        """The step's own exception object when the step ran in this process (the runtime hands
        the body a copy rebuilt from the log)."""
        key = (self.run.run_id, "/".join(self.run.scope), self.binding.step_id)
        return _ERRORS.pop(key, None) or original_error(exc)

    def _raise_failure(self, out: dict[str, Any]) -> None:
        key = (self.run.run_id, "/".join(self.run.scope), self.binding.step_id)
        exc = _ERRORS.pop(key, None) or restore_error(out.get("error")) or FlowError("step failed")
        raise exc

    def _apply(self, out: dict[str, Any]) -> None:
        run = self.run
        sid = self.binding.step_id
        if len(out) == 1 and "output" in out:
            # a plain success (no state, request-context, abort or retry news): the usual case
            run.run_counts[sid] = run.run_counts.get(sid, -1) + 1
            return
        changes = out.get("state_changes")
        if changes:
            run.state = {**run.state, **changes}
        for k, v in (out.get("rc_set") or {}).items():
            run.rc[k] = v
        for k in out.get("rc_deleted") or []:
            run.rc.pop(k, None)
        if out.get("aborted"):
            run._abort()
        run.run_counts[sid] = run.run_counts.get(sid, -1) + int(out.get("attempts") or 1)

    async def _step(self, prev: Any, iteration: int | None) -> R:
        run = self.run
        sid = self.binding.step_id
        records = run.records
        rec = StepResult("running", None, prev, None, time.time())
        if iteration:
            rec.metadata = {"iteration_count": iteration}
        records[sid] = rec
        durable = self.durable
        if (durable is not None and iteration is None and not run.scope and not run.state
                and not run.rc):
            # the first call of a plain step (`_invoke` in short: only the input, and
            # retry_base when the step ran before), and its plain success (`_apply` and
            # `_succeeded` in short)
            root = run.root
            counts = run.run_counts
            base = counts.get(sid, -1) + 1
            root.inflight += 1
            try:
                out = await (durable(input_data=prev, retry_base=base) if base
                             else durable(input_data=prev))
            except Exception as exc:
                err = self._real_error(exc)
                run.set_record(sid, replace(records[sid], status="failed", error=err,
                                            ended_at=time.time()))
                raise err from None
            finally:
                root.inflight -= 1
                if root.waiting_hooks or root.wakers:
                    root._notify()
            if len(out) == 1 and "output" in out:
                counts[sid] = base
                output = out["output"]
                rec = records[sid]
                records[sid] = StepResult(
                    "success", output, prev, rec.error, rec.started_at, time.time(),
                    rec.suspend_payload, rec.resume_payload, rec.suspended_at, rec.resumed_at,
                    rec.metadata)
                return R("canceled" if root.aborted else "success", output, None, sid)
            return await self._outcome(prev, iteration, out)
        return await self._outcome(prev, iteration, None)

    async def _outcome(self, prev: Any, iteration: int | None, out: dict[str, Any] | None) -> R:
        """The rest of `_step`: the outcome `out` of the first call when it is not a plain
        success (None: make the first call here), then suspensions and resumes."""
        run = self.run
        sid = self.binding.step_id
        resume, resume_data = False, None
        while True:
            if out is None:
                try:
                    out = await self._invoke(prev, resume=resume, resume_data=resume_data,
                                             iteration=iteration, item=None)
                except Exception as exc:
                    err = self._real_error(exc)
                    run.set_record(sid, replace(run.records[sid], status="failed", error=err,
                                                ended_at=time.time()))
                    raise err from None
            if len(out) == 1 and not resume and "output" in out:
                # a plain success
                run.run_counts[sid] = run.run_counts.get(sid, -1) + 1
                output = out["output"]
                rec = run.records[sid]
                run.set_record(sid, StepResult(
                    "success", output, prev, rec.error, rec.started_at, time.time(),
                    rec.suspend_payload, rec.resume_payload, rec.suspended_at, rec.resumed_at,
                    rec.metadata))
                return R("canceled" if run.root.aborted else "success", output, step_id=sid)
            self._apply(out)
            rec = run.records[sid]
            # the record's payload is the validated input (absent: the input as given)
            first: dict[str, Any] = {} if resume else {
                "payload": out["input"] if "input" in out else prev,
                "started_at": out.get("started_at") or rec.started_at}
            st = out.get("status", "success")
            if st == "failed":
                run.set_record(sid, replace(rec, **first, status="failed",
                                            ended_at=out.get("ended_at") or time.time()))
                try:
                    self._raise_failure(out)
                except Exception as exc:
                    run.set_record(sid, replace(run.records[sid], error=exc))
                    raise
            if st in ("success", "bailed"):
                output = out.get("output")
                run.set_record(sid, _succeeded(rec, first, output,
                                               out.get("ended_at") or time.time()))
                if st == "bailed":
                    return R("bailed", output, step_id=sid)
                return R("canceled" if run.is_aborted else "success", output, step_id=sid)
            # suspended: wait on the durable hook, then run the step again with the resume data
            run.set_record(sid, replace(rec, **first, status="suspended",
                                        suspend_payload=out.get("suspend_payload"),
                                        suspended_at=out.get("ended_at") or time.time()))
            run.suspended_paths[sid] = run.path_of(sid)
            resume_data = await run.program.wait_for_resume(run, run.path_of(sid), None,
                                                            _labels(out.get("label")))
            run.mark_resumed(resume_data)
            run.suspended_paths.pop(sid, None)
            rec = run.records[sid]
            run.set_record(sid, replace(rec, status="running", output=None, error=None, ended_at=None,
                                        resume_payload=resume_data, resumed_at=_durable_now()))
            resume = True
            out = None

    async def item(self, index: int, item: Any, pool: Any = None) -> _Item:
        """One foreach item: the step body on `item`, without a record of its own. While the
        item is suspended it gives its `pool` slot back (other items go on, as in flow)."""
        if self.binding.nested is not None:
            return await self._nested_item(index, item)
        run = self.run
        sid = self.binding.step_id
        progress = run.foreach_progress.get(sid)
        resume, resume_data = False, None
        while True:
            try:
                out = await self._invoke(item, resume=resume, resume_data=resume_data,
                                         iteration=None, item=index)
            except Exception as exc:
                raise self._real_error(exc) from None
            self._apply(out)
            st = out.get("status", "success")
            if st == "failed":
                self._raise_failure(out)
            if st in ("success", "bailed"):
                if progress is not None:
                    progress["foreach_status"][index] = "success"
                    progress["foreach_output"][index] = out.get("output") if st == "success" else None
                    if run.foreach_parked.get(sid):
                        run.foreach_suspended(sid, None)
                return _Item(st, out.get("output"))
            if progress is not None:
                if progress["foreach_status"][index] != "suspended":
                    run.foreach_parked[sid] = run.foreach_parked.get(sid, 0) + 1
                progress["foreach_status"][index] = "suspended"
                progress["foreach_suspend_payloads"][index] = out.get("suspend_payload")
            run.foreach_suspended(sid, out.get("ended_at") or time.time())
            if pool is not None:
                pool.release()
            resume_data = await run.program.wait_for_resume(run, run.path_of(sid), index,
                                                            _labels(out.get("label")))
            run.mark_resumed(resume_data)
            if pool is not None:
                await pool.acquire()
            if progress is not None:
                if progress["foreach_status"][index] == "suspended":
                    run.foreach_parked[sid] -= 1
                progress["foreach_status"][index] = "running"
            if not run.foreach_parked.get(sid):
                run.suspended_paths.pop(sid, None)
            run.set_record(sid, replace(run.records[sid], status="running",
                                        resume_payload=resume_data, resumed_at=_durable_now()))
            resume = True

    async def _nested_item(self, index: int, item: Any) -> _Item:
        run = self.run
        sid = self.binding.step_id
        nested_wf = self.binding.step
        key = f"{sid}[{index}]"
        child = FlowRun(run.program, nested_wf.id, run.run_id, item, run.state, run.rc,
                        scope=(*run.scope, key), parent=run)
        run.children[key] = child
        await child.execute(run.compiled.function_for(nested_wf.id), item)
        res = child.final
        assert res is not None
        run.state = {**run.state, **res.state}
        return _Item("success" if res.status == "success" else res.status, res.result)

    async def _nested(self, prev: Any, iteration: int | None) -> R:
        run = self.run
        sid = self.binding.step_id
        nested_wf = self.binding.step
        rec = StepResult(status="running", payload=prev, started_at=_durable_now())
        if iteration:
            rec.metadata = {"iteration_count": iteration}
        run.set_record(sid, rec)
        run.next_count(sid)
        data = prev
        if run.root.validate_inputs and getattr(nested_wf, "input_schema", None) is not None:
            try:
                data = validate(nested_wf.input_schema, prev, "Step input validation failed:")
            except FlowError as exc:
                run.set_record(sid, replace(rec, status="failed", error=exc, ended_at=_durable_now()))
                raise
            if isinstance(data, dict | list):
                run.set_record(sid, replace(rec, payload=data))
        child = FlowRun(run.program, nested_wf.id, run.run_id, data, run.state, run.rc,
                        scope=(*run.scope, sid), parent=run)
        run.children[sid] = child
        fn = run.compiled.function_for(nested_wf.id)
        try:
            await child.execute(fn, data)
        except Exception as exc:
            run.state = {**run.state, **child.state}
            run.set_record(sid, replace(run.records[sid], status="failed", error=exc,
                                        ended_at=_durable_now()))
            raise
        res = child.final
        assert res is not None
        run.state = {**run.state, **res.state}
        end = _durable_now()
        if res.status == "success":
            run.set_record(sid, replace(run.records[sid], status="success", output=res.result,
                                        ended_at=end))
            return R("canceled" if run.is_aborted else "success", res.result, step_id=sid)
        # canceled inside the nested run
        run.set_record(sid, replace(run.records[sid], status="success", output=None, ended_at=end))
        return R("canceled", step_id=sid)


class ClosureCall:
    """`use_closure(id)`: call a lifted closure through its durable step."""

    def __init__(self, run: FlowRun, closure_id: str) -> None:
        self.run = run
        self.closure_id = closure_id

    async def __call__(self, prev: Any, iteration: int | None = None) -> Any:
        run = self.run
        root = run.root
        durable_closure = getattr(run.program, "durable_closure", None)
        root.inflight += 1
        try:
            if durable_closure is not None:
                # codegen's own program: only what varies per call is journaled (`run_id` comes
                # from the step metadata, `closure_id` is bound at registration)
                kw = _call_keywords(run, prev)
                if iteration is not None:
                    kw["iteration"] = iteration
                out = await durable_closure(self.closure_id)(**kw)
            else:
                out = await run.program.closure_fn(self.closure_id)(
                    run_id=run.run_id, scope=list(run.scope), closure_id=self.closure_id,
                    input_data=prev, state=run.state, request_context=run.rc, iteration=iteration)
        finally:
            root.inflight -= 1
            if root.waiting_hooks or root.wakers:  # (see `StepCall._invoke`)
                root._notify()
        if out.get("status") == "failed":
            key = (run.run_id, "/".join(run.scope), self.closure_id)
            raise _ERRORS.pop(key, None) or restore_error(out.get("error")) or FlowError("closure failed")
        value = out.get("value")
        if out.get("kind") == "sleep_until" and isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value


# ------------------------------------------------------------------------------------------
# The durable step bodies (run by the runtime, outside the workflow body)


class _ExecutionView(Execution):
    """A flow `Execution` for one step call: the body's data as the step sees it."""


CRASH_ALLOWANCE = 3
"""Extra durable attempts of every flow step and closure, for attempts cut short by a crash."""

_FAILURES: dict[tuple[str, str], int] = {}


def step_retries(program: Any, workflow_id: str, step: Any) -> int:
    """flow's retries of `step`: its own `retries`, else its workflow's `retry_config`."""
    if getattr(step, "retries", None) is not None:
        return int(step.retries)
    wf = program.compiled.workflows[workflow_id].workflow
    rc = getattr(wf, "retry_config", None) or {}
    return int(rc.get("attempts", 0) or 0)


def _scope_run(run_id: str, scope: list[str]) -> FlowRun | None:
    run = _LIVE.get(run_id)
    for sid in scope:
        if run is None:
            return None
        run = run.children.get(sid)
    return run


def _execution(program: Any, run_id: str, scope: list[str], workflow_id: str, state: Any,
               request_context: dict[str, Any]) -> tuple[Execution, RequestContext]:
    live = _scope_run(run_id, scope)
    wf = program.compiled.workflows[workflow_id].workflow
    rc = RequestContext(request_context)  # (a copy)
    # the live records by reference (read only by get_step_result): no per-step copy
    ex = Execution.for_step(wf, run_id, input=live.input if live is not None else None,
                            state=dict(state) if state else {},
                            step_results=live.records if live is not None else {},
                            request_context=rc)
    return ex, rc


def _rc_changes(before: dict[str, Any], rc: RequestContext) -> tuple[dict[str, Any], list[str]]:
    after = rc.to_dict()
    changed = {k: v for k, v in after.items() if k not in before or before[k] is not v and before[k] != v}
    deleted = [k for k in before if k not in after]
    return changed, deleted


def step_args(kw: dict[str, Any]) -> dict[str, Any]:
    """The journaled arguments of a flow step call: what `StepCall` passes, without what the
    step's registration or its run already know (`run_id`, `workflow_id`, `step_id`) and without
    default values (an empty scope, state or request context, retry_base 0, no iteration, no
    resume, no foreach item). `flow_step_body` restores the defaults."""
    out = {"input_data": kw["input_data"]}
    for name in ("scope", "state", "request_context", "resume"):  # default: empty / False
        if kw.get(name):
            out[name] = kw[name]
    if kw.get("retry_base"):
        out["retry_base"] = kw["retry_base"]
    for name in ("iteration", "resume_data", "item"):  # default: None
        if kw.get(name) is not None:
            out[name] = kw[name]
    return out


async def flow_step_body(program: Any, *, workflow_id: str, step_id: str, input_data: Any = None,
                         run_id: str | None = None, scope: list[str] | None = None,
                         state: dict[str, Any] | None = None,
                         request_context: dict[str, Any] | None = None, retry_base: int = 0,
                         iteration: int | None = None, resume: bool = False,
                         resume_data: Any = None, item: int | None = None) -> dict[str, Any]:
    """One attempt of a flow step as a durable step; returns its JSON outcome or raises.

    The outcome is compact (see `step_args` for the arguments): `output`, and only the fields
    that differ from their defaults — `status` ("success"), `input` (the validated input, when
    validation changed it), `suspend_payload`, `label`, `state_changes`, `rc_set`, `rc_deleted`,
    `aborted`, `attempts` (1). `StepCall` reads it with those defaults. The record's times are
    the body's (deterministic) clock: `started_at` when the body called the step, `ended_at` the
    recorded time of the step's completion (a result carrying `started_at` / `ended_at`, as the
    Temporal activity's or an older journal's do, gives its own)."""
    info = _step_info()
    if run_id is None:
        run_id = info.run_id
    spec = _spec(program, workflow_id, step_id)
    attempt = info.attempt
    live = _LIVE.get(run_id)
    if not resume and spec.input_schema is not None and (
            live.validate_inputs if live is not None else spec.validate_inputs):
        try:
            input_data = validate(spec.input_schema, input_data, "Step input validation failed:")
        except FlowError as exc:
            _ERRORS[(run_id, "/".join(scope or ()), step_id)] = exc
            return {"status": "failed", "input": to_jsonable(input_data), "error": error_json(exc),
                    "attempts": 1}
    if not (resume or scope or state or request_context) and spec.input_schema is None:
        # the usual call (top level, no state, request context or schema, not a resume): the
        # body's output as it is when the step neither failed nor changed the run's data
        rc = RequestContext()
        ex = Execution.for_step(spec.workflow, run_id,
                                input=live.input if live is not None else None, state={},
                                step_results=live.records if live is not None else {},
                                request_context=rc)
        got = await call_step_once(ex, spec.plain, input_data, retry_base + attempt - 1,
                                   iteration)
        if type(got) is not Outcome:
            if not ex.state and not len(rc) and not ex.signal.aborted and attempt == 1:
                if _ERRORS:
                    _ERRORS.pop((run_id, "", step_id), None)
                if _FAILURES:
                    _FAILURES.pop((run_id, info.step_id), None)
                return {"output": _jsonable(got)}
            got = Outcome("success", input_data, output=got)
        return _step_outcome(program, workflow_id, step_id, info, spec, got, ex, rc,
                             input_data, None, None, scope)
    given = input_data
    if scope:
        for sid in scope:  # the (nested) run the step belongs to
            if live is None:
                break
            live = live.children.get(sid)
    rc = RequestContext(request_context)  # (a copy)
    # the live records by reference (read only by get_step_result): no per-step copy; the state
    # and request context are copies (what the step changes is diffed against the arguments)
    ex = Execution.for_step(spec.workflow, run_id, input=live.input if live is not None else None,
                            state=dict(state) if state else {},
                            step_results=live.records if live is not None else {},
                            request_context=rc, run_counts={step_id: retry_base + attempt - 2})
    started = begin_step_call(ex, spec.plain, input_data,
                              resume=Resume([step_id], resume_data, [], None, item) if resume
                              else None, iteration_count=iteration)
    outcome = started if type(started) is Outcome else await started  # type: ignore[misc]
    return _step_outcome(program, workflow_id, step_id, info, spec, outcome, ex, rc, given,
                         state, request_context, scope)


def _step_outcome(program: Any, workflow_id: str, step_id: str, info: Any, spec: _StepSpec,
                  outcome: Outcome, ex: Execution, rc: RequestContext, given: Any,
                  state: dict[str, Any] | None, request_context: dict[str, Any] | None,
                  scope: list[str] | None) -> dict[str, Any]:
    """The JSON outcome of one attempt of a flow step (see `flow_step_body`), or raises its
    failure. `given`: the input as the step was called with it; `state`, `request_context`:
    as the call received them (what the step changed is diffed against them)."""
    run_id = ex.run_id
    attempt = info.attempt
    status = outcome.status
    if status == "failed":
        key = (run_id, "/".join(scope or ()), step_id)
        # flow's retries: the runtime retries the step (retry_delay = flow's delay) until this
        # process has seen `retries` failures, then FatalError stops it. The step is registered
        # with CRASH_ALLOWANCE extra attempts, so an attempt cut short by a crash is not counted
        # as a failure. The error object itself is kept for a body in this process.
        assert outcome.error is not None
        _ERRORS[key] = outcome.error
        corr = info.step_id
        failures = _FAILURES.get((run_id, corr), 0) + 1
        _FAILURES[(run_id, corr)] = failures
        if failures > step_retries(program, workflow_id, spec.step):
            _FAILURES.pop((run_id, corr), None)
            raise StepFailed.of(outcome.error) from outcome.error
        raise outcome.error
    if _ERRORS:
        _ERRORS.pop((run_id, "/".join(scope or ()), step_id), None)
    if _FAILURES:
        _FAILURES.pop((run_id, info.step_id), None)
    out: dict[str, Any] = {"output": _jsonable(outcome.output)}
    if status != "success":
        out["status"] = status
    if outcome.input is not given:
        out["input"] = to_jsonable(outcome.input)
    if outcome.suspend_payload is not None:
        out["suspend_payload"] = to_jsonable(outcome.suspend_payload)
    if outcome.label is not None:
        out["label"] = to_jsonable(outcome.label)
    new_state = ex.state
    if new_state and new_state != state:
        old = state or {}
        changes = {k: v for k, v in new_state.items() if k not in old or old[k] != v}
        if changes:
            out["state_changes"] = to_jsonable(changes)
    if request_context or len(rc):
        rc_set, rc_deleted = _rc_changes(request_context or {}, rc)
        if rc_set:
            out["rc_set"] = to_jsonable(rc_set)
        if rc_deleted:
            out["rc_deleted"] = rc_deleted
    if ex.signal.aborted:
        out["aborted"] = True
    if attempt != 1:
        out["attempts"] = attempt
    return out


_NO_RETRIES: dict[int, tuple[Any, Any]] = {}


class _StepSpec:
    """What `flow_step_body` needs of one step of a program, looked up once."""

    __slots__ = ("step", "plain", "input_schema", "workflow", "validate_inputs")

    def __init__(self, program: Any, workflow_id: str, step_id: str) -> None:
        compiled = program.compiled
        self.step = compiled.workflows[workflow_id].steps[step_id].step
        self.plain = _no_retries(self.step)  # flow's retries are durable's here
        self.input_schema = getattr(self.step, "input_schema", None)
        self.workflow = compiled.workflows[workflow_id].workflow
        self.validate_inputs = bool(getattr(compiled.workflows[compiled.workflow_id].workflow,
                                            "validate_inputs", True))


_SPECS: dict[tuple[int, str, str], tuple[Any, _StepSpec]] = {}


def _spec(program: Any, workflow_id: str, step_id: str) -> _StepSpec:
    key = (id(program), workflow_id, step_id)
    hit = _SPECS.get(key)
    if hit is not None and hit[0] is program:
        return hit[1]
    spec = _StepSpec(program, workflow_id, step_id)
    _SPECS[key] = (program, spec)
    return spec


_GET_STEP_INFO: Any = None


def _step_info() -> Any:
    """`durable.get_step_info()` (durable imported on first use): run_id, step_id (the
    correlation id), attempt of the running durable step, without building its metadata."""
    global _GET_STEP_INFO
    if _GET_STEP_INFO is None:
        from durable import get_step_info

        _GET_STEP_INFO = get_step_info
    return _GET_STEP_INFO()


def _no_retries(step: Any) -> Any:
    """`replace(step, retries=0)`, once per step object (flow's retries are durable's here)."""
    hit = _NO_RETRIES.get(id(step))
    if hit is not None and hit[0] is step:
        return hit[1]
    copy = replace(step, retries=0)
    _NO_RETRIES[id(step)] = (step, copy)
    return copy


async def closure_body(program: Any, *, closure_id: str, input_data: Any = None,
                       run_id: str | None = None, scope: list[str] | None = None,
                       state: dict[str, Any] | None = None,
                       request_context: dict[str, Any] | None = None,
                       iteration: int | None = None) -> dict[str, Any]:
    """A lifted closure as a durable step; its JSON value is journaled. Arguments left out of
    the journal take their defaults (no scope, state or request context, no iteration);
    `run_id` comes from the step metadata."""
    if run_id is None:
        run_id = _step_info().run_id
    scope = scope or []
    state = state or {}
    request_context = request_context or {}
    cb = program.compiled.closures[closure_id]
    ex, rc = _execution(program, run_id, scope, cb.workflow_id, state, request_context)
    if cb.kind == "mapping_fn":
        ctx = StepContext(ex, cb.record_id or closure_id, input_data, retry_count=0)
    else:
        ctx = StepContext(ex, cb.record_id or closure_id, input_data, is_step=False, retry_count=-1,
                          iteration_count=iteration)
    return await closure_value(cb, ctx, (run_id, "/".join(scope), closure_id), error_json)


async def closure_value(cb: Any, ctx: StepContext, key: tuple[str, str, str],
                        error_doc: Callable[[BaseException], dict[str, Any] | None]
                        ) -> dict[str, Any]:
    """Call the lifted closure `cb` with `ctx` and make its journaled result, by kind: a branch
    condition that raises counts as false (as in flow); conditions become bools, a sleep
    duration seconds, a sleep date an ISO string (a naive date is local time). A failure is kept in
    `_ERRORS[key]` (the original exception, for the body) and returned as `error_doc(exc)`.
    Shared by the codegen and temporal backends."""
    try:
        value = cb.fn(ctx)
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        if cb.kind == "branch_condition":  # flow: a raising branch condition counts as false
            return {"kind": cb.kind, "value": False}
        _ERRORS[key] = exc
        return {"kind": cb.kind, "status": "failed", "error": error_doc(exc)}
    if cb.kind in ("branch_condition", "loop_condition"):
        value = bool(value)
    elif cb.kind == "sleep_duration":
        value = FlowRun.seconds(value)
    elif cb.kind == "sleep_until":
        if not isinstance(value, datetime):
            err = FlowError(f"sleep_until {cb.record_id!r} needs a datetime, got {value!r}")
            _ERRORS[key] = err
            return {"kind": cb.kind, "status": "failed", "error": error_doc(err)}
        if value.tzinfo is None:  # a naive date is local time, as flow and Python read it
            value = value.astimezone()
        value = value.isoformat()
    return {"kind": cb.kind, "value": to_jsonable(value)}
