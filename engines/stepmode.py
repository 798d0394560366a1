"""The `stepmode` engine: every flow step runs as a `durable` step (runtime step semantics:
`max_retries`, `RetryableError(retry_after=)` / `FatalError`, `get_step_metadata()`), called
through `durable.call_step` and orchestrated by flow's own interpreter. No event log, so a run
cannot be recovered after a crash.

The workflow is rebuilt with the same builder calls (same ids, same closures) and each step's
`execute` replaced (`dataclasses.replace`) by a call of its registered durable step; flow's
retries become the step's `max_retries` (flow's own retry loop is switched off with
`retries=0`), flow's retry delay its `retry_delay`.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import replace
from typing import Any

from engines.base import Engine, Unsupported, flow_workflow_of
from engines.default import DefaultEngine
from flow import (
    ConditionalEntry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    SleepUntilEntry,
    Step,
    StepEntry,
    Workflow,
    create_workflow,
)

_WRAPPED: dict[int, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def _wrap_step(step: Step, wf: Workflow, registry: Any) -> Step:
    import durable

    rc = wf.retry_config or {}
    retries = step.retries if step.retries is not None else int(rc.get("attempts", 0) or 0)
    delay = float(rc.get("delay", 0) or 0)
    original = step.execute

    async def body(ctx: Any) -> Any:
        attempt = int(durable.get_step_metadata().attempt)
        if attempt == 1:
            body_base[id(ctx)] = ctx.retry_count
        ctx.retry_count = body_base.get(id(ctx), ctx.retry_count) + attempt - 1
        out = original(ctx)
        if inspect.isawaitable(out):
            out = await out
        return out

    body_base: dict[int, int] = {}
    body.__qualname__ = f"stepmode.{wf.id}.{step.id}"
    registered = registry.register_step(body, name=f"stepmode:{wf.id}/{step.id}",
                                        max_retries=retries, retry_delay=delay)

    async def execute(ctx: Any) -> Any:
        try:
            return await durable.call_step(registered, ctx)
        finally:
            body_base.pop(id(ctx), None)

    return replace(step, execute=execute, retries=0)


def wrap_workflow(wf: Workflow, registry: Any = None, _seen: dict[int, Workflow] | None = None) -> Workflow:
    """A copy of `wf` (same ids, same closures) whose steps run as durable steps."""
    import durable

    if registry is None:
        registry = durable.Workflows()
    seen = {} if _seen is None else _seen
    if id(wf) in seen:
        return seen[id(wf)]
    steps: dict[int, Any] = {}

    def w(s: Any) -> Any:
        if isinstance(s, Workflow):
            return wrap_workflow(s, registry, seen)
        if id(s) not in steps:
            steps[id(s)] = _wrap_step(s, wf, registry)
        return steps[id(s)]

    out = create_workflow(id=wf.id, input_schema=wf.input_schema, output_schema=wf.output_schema,
                          state_schema=wf.state_schema, retry_config=wf.retry_config,
                          validate_inputs=wf.validate_inputs)
    for entry in wf.graph:
        if isinstance(entry, StepEntry):
            out.then(w(entry.step))
        elif isinstance(entry, ParallelEntry):
            out.parallel([w(c.step) for c in entry.steps])
        elif isinstance(entry, ConditionalEntry):
            out.branch([(cond, w(c.step)) for cond, c in zip(entry.conditions, entry.steps, strict=True)])
        elif isinstance(entry, LoopEntry):
            getattr(out, entry.loop_type)(w(entry.step), entry.condition)
        elif isinstance(entry, ForeachEntry):
            out.foreach(w(entry.step), concurrency=entry.concurrency)
        elif isinstance(entry, SleepEntry):
            out.sleep(entry.fn if entry.fn is not None else (entry.duration or 0.0))
        elif isinstance(entry, SleepUntilEntry):
            if entry.fn is not None:
                out.sleep_until(entry.fn)
            elif entry.date is not None:
                out.sleep_until(entry.date)
            else:
                raise Unsupported(f"stepmode: sleep_until {entry.id!r} has neither date nor fn")
        else:
            raise Unsupported(f"stepmode: unknown graph entry {entry!r} in workflow {wf.id!r}")
    for old, new in zip(wf.graph, out.graph, strict=True):
        if isinstance(old, SleepEntry | SleepUntilEntry) and old.id != new.id:  # type: ignore[union-attr]
            raise Unsupported(f"stepmode: sleep id {old.id!r} of workflow {wf.id!r} could not be "
                              f"kept (rebuilt as {new.id!r})")  # type: ignore[union-attr]
    out.commit()
    seen[id(wf)] = out
    return out


def wrapped(wf: Workflow) -> Workflow:
    """The stepmode copy of `wf` (built once per workflow object)."""
    with _LOCK:
        hit = _WRAPPED.get(id(wf))
        if hit is not None and hit[0] is wf:
            return hit[1]  # type: ignore[no-any-return]
    out = wrap_workflow(wf)
    with _LOCK:
        _WRAPPED[id(wf)] = (wf, out)
    return out


class StepmodeEngine(DefaultEngine):
    """flow's interpreter with every step run as a durable step (see module docstring).
    Options: `store=` a `flow.SnapshotStore`, or `db=` a path for a `flow.SqliteSnapshotStore`.
    Runs, resumes and snapshots exactly like `default`; only the workflow differs."""

    name = "stepmode"

    def workflow(self, target: Any) -> Any:
        return wrapped(flow_workflow_of(target, self.name))

    async def recover(self, target: Any, run_id: str) -> Any:
        """Finish a run whose process died: stepmode keeps no durable log, so it cannot."""
        return await Engine.recover(self, target, run_id)
