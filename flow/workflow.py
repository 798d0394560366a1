"""The Mastra-syntax builder: `create_workflow`, the chain methods, `commit`, `clone_workflow`.

A `Workflow` collects graph entries (`flow.graph`) through `then, parallel, branch, dountil,
dowhile, foreach, sleep, sleep_until, map`, then `commit()` freezes it. A committed workflow runs
through `create_run()` and is itself usable as a step (nested workflow). Generated ids are
deterministic: `mapping_<n>` and `sleep_<n>` (n counts from 1 per workflow and kind; `sleep` and
`sleep_until` share the `sleep_` counter). `serialize_graph()` gives the JSON form without callables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
from flow.mapping import normalise_mapping, resolve_mapping_spec, step_ref_id
from flow.results import to_jsonable
from flow.step import MappingSpec, Step

if TYPE_CHECKING:
    from flow.context import StepContext
    from flow.run import Run
    from flow.storage import SnapshotStore

StepLike = Any  # a flow.Step or a committed flow.Workflow


def _fn_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _normalise_retry_config(workflow_id: str, cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {"attempts": 0, "delay": 0.0}
    if not isinstance(cfg, Mapping):
        raise FlowError(f"create_workflow({workflow_id!r}): retry_config must be a dict "
                        f"{{'attempts': int, 'delay': seconds}}, got {cfg!r}")
    unknown = set(cfg) - {"attempts", "delay"}
    if unknown:
        raise FlowError(f"create_workflow({workflow_id!r}): retry_config has unknown key(s) "
                        f"{sorted(unknown)}; expected 'attempts' and 'delay' (seconds)")
    attempts = cfg.get("attempts", 0) or 0
    delay = cfg.get("delay", 0) or 0
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise FlowError(f"create_workflow({workflow_id!r}): retry_config['attempts'] must be an "
                        f"int >= 0, got {attempts!r}")
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        raise FlowError(f"create_workflow({workflow_id!r}): retry_config['delay'] must be seconds "
                        f">= 0, got {delay!r}")
    return {"attempts": attempts, "delay": float(delay)}


def _mapping_execute(specs: dict[str, MappingSpec]) -> Callable[[StepContext], Any]:
    """The body of an object-form map step: builds the output key by key, in order."""
    if not any(s.fn is not None for s in specs.values()):

        def run_sync(ctx: StepContext) -> dict[str, Any]:
            return {k: resolve_mapping_spec(s, ctx) for k, s in specs.items()}

        return run_sync

    async def run_async(ctx: StepContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, spec in specs.items():
            if spec.fn is not None:
                value = spec.fn(ctx)
                if inspect.isawaitable(value):
                    value = await value
                out[key] = value
            else:
                out[key] = resolve_mapping_spec(spec, ctx)
        return out

    return run_async


class Workflow:
    """A Mastra-syntax workflow: build with chain methods, `commit()`, then `create_run()`.

    Also a step (`component == "WORKFLOW"`): pass a committed workflow to `then`, `parallel`, ...
    """

    component = "WORKFLOW"
    resume_schema: Any = None
    suspend_schema: Any = None
    retries: int | None = None
    map_config: Any = None

    def __init__(
        self,
        id: str,
        input_schema: Any = None,
        output_schema: Any = None,
        state_schema: Any = None,
        retry_config: Mapping[str, Any] | None = None,
        execution_engine: Any = None,
        validate_inputs: bool = True,
        description: str | None = None,
    ) -> None:
        if not isinstance(id, str) or not id:
            raise FlowError(f"create_workflow: id must be a non-empty string, got {id!r}")
        self.id = id
        self.description = description
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.state_schema = state_schema
        self.retry_config = _normalise_retry_config(id, retry_config)
        self.execution_engine = execution_engine
        self.validate_inputs = bool(validate_inputs)
        self.steps: dict[str, StepLike] = {}
        self.committed = False
        self._entries: list[Entry] = []
        self._counters: dict[str, int] = {"mapping": 0, "sleep": 0}
        self._runs: dict[str, Run] = {}

    def __repr__(self) -> str:
        return f"Workflow(id={self.id!r}, entries={len(self._entries)}, committed={self.committed})"

    @property
    def graph(self) -> tuple[Entry, ...]:
        """The entries, in order."""
        return tuple(self._entries)

    # -- checks -----------------------------------------------------------------------------
    def _open(self, method: str) -> None:
        if self.committed:
            raise FlowError(f"workflow {self.id!r}: .{method}() called after .commit(); chain "
                            "methods must come before commit (use clone_workflow to extend it)")

    def _step(self, method: str, obj: Any) -> StepLike:
        if isinstance(obj, Step):
            pass
        elif isinstance(obj, Workflow):
            if not obj.committed:
                raise FlowError(f"workflow {self.id!r}: .{method}() got workflow {obj.id!r} "
                                "which is not committed; call .commit() on it first")
        else:
            raise FlowError(f"workflow {self.id!r}: .{method}() expects a step (create_step) or a "
                            f"committed workflow, got {type(obj).__name__} {obj!r}")
        self.steps[obj.id] = obj
        return obj

    def _next_id(self, kind: str) -> str:
        self._counters[kind] += 1
        return f"{kind}_{self._counters[kind]}"

    # -- chain methods ----------------------------------------------------------------------
    def then(self, step: StepLike) -> Workflow:
        """Run `step` on the previous entry's output."""
        self._open("then")
        self._entries.append(StepEntry(self._step("then", step)))
        return self

    def parallel(self, steps: Sequence[StepLike]) -> Workflow:
        """Run every step concurrently on the same input; output `{step_id: output}`."""
        self._open("parallel")
        if isinstance(steps, Step | Workflow) or not isinstance(steps, Sequence) or not steps:
            raise FlowError(f"workflow {self.id!r}: .parallel() expects a non-empty list of "
                            f"steps, got {steps!r}")
        self._entries.append(ParallelEntry(tuple(StepEntry(self._step("parallel", s))
                                                 for s in steps)))
        return self

    def branch(self, branches: Sequence[tuple[Callable[..., Any], StepLike]]) -> Workflow:
        """`[(condition, step), ...]`: every condition is evaluated; every true branch runs."""
        self._open("branch")
        if not isinstance(branches, Sequence) or not branches:
            raise FlowError(f"workflow {self.id!r}: .branch() expects a non-empty list of "
                            f"(condition, step) pairs, got {branches!r}")
        conds, steps = [], []
        for pair in branches:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise FlowError(f"workflow {self.id!r}: .branch() items must be (condition, step) "
                                f"pairs, got {pair!r}")
            cond, step = pair
            if not callable(cond):
                raise FlowError(f"workflow {self.id!r}: .branch() condition must be callable, "
                                f"got {cond!r}")
            conds.append(cond)
            steps.append(StepEntry(self._step("branch", step)))
        self._entries.append(ConditionalEntry(tuple(steps), tuple(conds)))
        return self

    def _loop(self, kind: str, step: StepLike, condition: Callable[..., Any]) -> Workflow:
        self._open(kind)
        s = self._step(kind, step)
        if not callable(condition):
            raise FlowError(f"workflow {self.id!r}: .{kind}() condition must be callable, got "
                            f"{condition!r}")
        self._entries.append(LoopEntry(s, condition, kind))  # type: ignore[arg-type]
        return self

    def dountil(self, step: StepLike, condition: Callable[..., Any]) -> Workflow:
        """Run `step` until `condition(ctx)` is true (at least once)."""
        return self._loop("dountil", step, condition)

    def dowhile(self, step: StepLike, condition: Callable[..., Any]) -> Workflow:
        """Run `step` while `condition(ctx)` is true (at least once)."""
        return self._loop("dowhile", step, condition)

    def foreach(self, step: StepLike, concurrency: int = 1) -> Workflow:
        """Run `step` once per item of the input list, at most `concurrency` at a time."""
        self._open("foreach")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise FlowError(f"workflow {self.id!r}: .foreach() concurrency must be an int >= 1, "
                            f"got {concurrency!r}")
        self._entries.append(ForeachEntry(self._step("foreach", step), concurrency))
        return self

    def sleep(self, duration: float | timedelta | Callable[..., Any]) -> Workflow:
        """Pause for `duration` seconds (or `fn(ctx)` seconds); the input passes through."""
        self._open("sleep")
        sid = self._next_id("sleep")
        if callable(duration):
            self._entries.append(SleepEntry(sid, fn=duration))
        else:
            if isinstance(duration, timedelta):
                duration = duration.total_seconds()
            if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
                raise FlowError(f"workflow {self.id!r}: .sleep() expects seconds >= 0, a timedelta "
                                f"or a function, got {duration!r}")
            self._entries.append(SleepEntry(sid, duration=float(duration)))
        return self

    def sleep_until(self, date: datetime | Callable[..., Any]) -> Workflow:
        """Pause until `date` (or `fn(ctx)`'s datetime); the input passes through."""
        self._open("sleep_until")
        sid = self._next_id("sleep")
        if isinstance(date, datetime):
            self._entries.append(SleepUntilEntry(sid, date=date))
        elif callable(date):
            self._entries.append(SleepUntilEntry(sid, fn=date))
        else:
            raise FlowError(f"workflow {self.id!r}: .sleep_until() expects a datetime or a "
                            f"function, got {date!r}")
        return self

    def map(self, fn_or_mapping: Callable[..., Any] | Mapping[str, Any],
            id: str | None = None) -> Workflow:
        """A mapping step: `fn(ctx)` (a full step context) or a mapping object key -> spec."""
        self._open("map")
        sid = id if id is not None else self._next_id("mapping")
        if not isinstance(sid, str) or not sid:
            raise FlowError(f"workflow {self.id!r}: .map() id must be a non-empty string, got {id!r}")
        if isinstance(fn_or_mapping, Mapping):
            specs = normalise_mapping(fn_or_mapping)
            step = Step(id=sid, execute=_mapping_execute(specs), component="MAPPING",
                        map_config=specs)
        elif callable(fn_or_mapping):
            step = Step(id=sid, execute=fn_or_mapping, component="MAPPING",
                        map_config=fn_or_mapping)
        else:
            raise FlowError(f"workflow {self.id!r}: .map() expects a function or a mapping dict, "
                            f"got {type(fn_or_mapping).__name__} {fn_or_mapping!r}")
        self.steps[sid] = step
        self._entries.append(StepEntry(step))
        return self

    def commit(self) -> Workflow:
        """Freeze the graph; the workflow can then run and be used as a step."""
        self._open("commit")
        if not self._entries:
            raise FlowError(f"Execution flow of workflow {self.id!r} is not defined. Add steps to "
                            "the workflow via .then(), .branch(), etc. before .commit()")
        self.committed = True
        return self

    # -- running ----------------------------------------------------------------------------
    def create_run(self, run_id: str | None = None, store: SnapshotStore | None = None) -> Run:
        """A new `Run` (or, for the id of a run suspended in this process, that same `Run`)."""
        from flow.run import Run

        if not self.committed:
            if not self._entries:
                raise FlowError(f"Execution flow of workflow {self.id!r} is not defined. Add "
                                "steps to the workflow via .then(), .branch(), etc.")
            raise FlowError(f"Uncommitted step flow changes detected in workflow {self.id!r}. "
                            "Call .commit() to register the steps.")
        if run_id is not None:
            cached = self._runs.get(run_id)
            if cached is not None and (store is None or store is cached.store):
                return cached
        return Run(self, run_id, store)

    async def execute(self, ctx: StepContext) -> Any:
        """Run this workflow as a step of a parent workflow (same run id, own snapshot key)."""
        from flow.run import Run

        parent = ctx._execution
        # the same run id as the parent (reference 3.10); as a foreach body, one nested run per
        # item (`<run id>[<index>]`), so items that suspend keep apart and resume by index
        item = ctx._foreach_index
        run_id = ctx.run_id if item is None else f"{ctx.run_id}[{item}]"
        run = self.create_run(run_id=run_id, store=parent.store)
        run.signal = parent.signal
        prefix = self.id + "."
        parent_emit = parent.emit
        emit = None
        if parent_emit is not None:

            def emit(event: dict[str, Any]) -> None:
                payload = event.get("payload")
                if isinstance(payload, dict) and "id" in payload:
                    payload = {**payload, "id": prefix + str(payload["id"]),
                               "step_name": prefix + str(payload["id"])}
                    event = {**event, "payload": payload}
                parent_emit(event)

        resume = ctx._resume
        if resume is not None:
            rest = resume.steps[1:] or None
            # as a foreach body, `for_each_index` picked this item; it is not the inner one's
            inner_index = resume.for_each_index if item is None else None
            res = await run._resume(rest, resume.payload, None, inner_index,
                                    parent.request_context, emit, parent.validate_inputs)
        else:
            if run.status != "pending":
                run = Run(self, run_id, parent.store)
                run.signal = parent.signal
            res = await run._start(ctx.input_data, ctx.state, parent.request_context, emit,
                                   parent.validate_inputs)
        ctx.set_state(res.state)
        if res.status == "suspended":
            for path in res.suspended:
                rec = res.steps.get(path[0])
                inner = rec.suspend_payload if rec is not None else None
                payload = {k: v for k, v in inner.items() if k != "__workflow_meta"} \
                    if isinstance(inner, dict) else {}
                payload["__workflow_meta"] = {"run_id": run_id, "path": list(path)}
                ctx.suspend(payload)
            return None
        if res.status == "failed":
            assert res.error is not None
            raise res.error
        if res.status == "success":
            return res.result
        return None

    # -- introspection ----------------------------------------------------------------------
    def serialize_graph(self) -> list[dict[str, Any]]:
        """The graph as JSON-able data (callables replaced by their qualified names)."""
        return [_serialize_entry(e) for e in self._entries]


def _serialize_step(step: StepLike) -> dict[str, Any]:
    out: dict[str, Any] = {"id": step.id, "component": step.component}
    if step.description:
        out["description"] = step.description
    if isinstance(step, Workflow):
        out["serialized_step_flow"] = step.serialize_graph()
    cfg = getattr(step, "map_config", None)
    if cfg is not None:
        if isinstance(cfg, Mapping):
            out["map_config"] = {k: _serialize_spec(v) for k, v in cfg.items()}
        else:
            out["map_config"] = {"fn": _fn_name(cfg)}
    out["can_suspend"] = bool(getattr(step, "suspend_schema", None)
                              or getattr(step, "resume_schema", None))
    return out


def _serialize_spec(spec: MappingSpec) -> dict[str, Any]:
    if spec.has_value:
        return {"value": to_jsonable(spec.value)}
    if spec.fn is not None:
        return {"fn": _fn_name(spec.fn)}
    if spec.request_context_path is not None:
        return {"request_context_path": spec.request_context_path}
    if spec.init_data:
        return {"init_data": True, "path": spec.path}
    refs = spec.step if isinstance(spec.step, list | tuple) else [spec.step]
    ids = [step_ref_id(s) for s in refs]
    return {"step": ids if isinstance(spec.step, list | tuple) else ids[0], "path": spec.path}


def _serialize_entry(entry: Entry) -> dict[str, Any]:
    if isinstance(entry, StepEntry):
        return {"type": "step", "step": _serialize_step(entry.step)}
    if isinstance(entry, ParallelEntry):
        return {"type": "parallel", "steps": [_serialize_entry(c) for c in entry.steps]}
    if isinstance(entry, ConditionalEntry):
        return {
            "type": "conditional",
            "steps": [_serialize_entry(c) for c in entry.steps],
            "serialized_conditions": [{"id": f"{c.step.id}-condition", "fn": _fn_name(f)}
                                      for c, f in zip(entry.steps, entry.conditions, strict=True)],
        }
    if isinstance(entry, LoopEntry):
        return {"type": "loop", "step": _serialize_step(entry.step), "loop_type": entry.loop_type,
                "serialized_condition": {"id": f"{entry.step.id}-condition",
                                         "fn": _fn_name(entry.condition)}}
    if isinstance(entry, ForeachEntry):
        return {"type": "foreach", "step": _serialize_step(entry.step),
                "opts": {"concurrency": entry.concurrency}}
    if isinstance(entry, SleepEntry):
        out: dict[str, Any] = {"type": "sleep", "id": entry.id}
        if entry.fn is not None:
            out["fn"] = _fn_name(entry.fn)
        else:
            out["duration"] = entry.duration
        return out
    out = {"type": "sleep_until", "id": entry.id}
    if entry.fn is not None:
        out["fn"] = _fn_name(entry.fn)
    else:
        assert entry.date is not None
        out["date"] = entry.date.isoformat()
    return out


def create_workflow(
    id: str,
    input_schema: Any = None,
    output_schema: Any = None,
    state_schema: Any = None,
    retry_config: Mapping[str, Any] | None = None,
    execution_engine: Any = None,
    validate_inputs: bool = True,
    description: str | None = None,
) -> Workflow:
    """A new, empty workflow; add entries with the chain methods, then `commit()`."""
    return Workflow(id, input_schema=input_schema, output_schema=output_schema,
                    state_schema=state_schema, retry_config=retry_config,
                    execution_engine=execution_engine, validate_inputs=validate_inputs,
                    description=description)


def clone_workflow(workflow: Workflow, id: str) -> Workflow:
    """A committed copy of `workflow` under a new id (same graph, schemas, retry config)."""
    if not isinstance(workflow, Workflow):
        raise FlowError(f"clone_workflow expects a Workflow, got {type(workflow).__name__}")
    clone = Workflow(id, input_schema=workflow.input_schema, output_schema=workflow.output_schema,
                     state_schema=workflow.state_schema, retry_config=workflow.retry_config,
                     execution_engine=workflow.execution_engine,
                     validate_inputs=workflow.validate_inputs, description=workflow.description)
    clone._entries = list(workflow._entries)
    clone.steps = dict(workflow.steps)
    clone._counters = dict(workflow._counters)
    return clone.commit()
