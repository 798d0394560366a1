"""The codegen compiler: a visitor over a flow graph that emits readable Python source.

One `async def workflow_<id>(run, input_data)` per workflow (nested workflows get their own
function in the same module and are called through `use_step("<nested id>")`). Steps are called as
`await use_step("<id>")(...)`, parallel and branch children through `run.gather` (asyncio.gather
with return_exceptions=True, plus flow's precedence failed > suspended), foreach through
`run.gather` bounded by an `asyncio.Semaphore`, branch conditions through `asyncio.gather`,
loops as `while` loops, sleeps as durable `await sleep(...)`, mapping objects as a dict literal
handed to `run.mapping` (its `run.from_*` / `use_closure` values are read when the map step
runs). An entry's result goes to the next entry through `prev = next_input(r)`, which ends
the run (a `Stop` caught by `FlowRun.execute`) when the entry did not succeed. Every Python closure of the graph
(branch and loop conditions, dynamic sleep functions, map functions, dynamic mapping fns) is
*lifted*: it is called as `await use_closure("<workflow id>/entry<N>/...")(...)`, a registered step
whose id is derived from its position only, so a worker in another process that compiles the same
graph gets the same ids. Positions are 1-based ("entry 3" is the third entry).

User strings (ids, mapping keys, paths, constants) only ever appear in the source as escaped
literals (`writer.literal`) or sanitised identifiers; comments escape them onto one line.

The generated code talks to the run through the `run` object it receives (see
`engines.codegen.runtime.FlowRun`): `use_step`, `use_closure`, `next_input`, `end`, `block`,
`gather`, `foreach_items`, `foreach_end`, `mapping`, `from_step`, `from_init`,
`from_request_context`, `constant`, `sleep_start`, `sleep_end`, `seconds`, `until`.

`compile_workflow(workflow, strict=False)` returns a cached `CompiledWorkflow`; with
`strict=True` every closure raises `engines.base.Unsupported` naming the construct and position.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import json
import linecache
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engines.base import Unsupported
from engines.codegen.writer import CodeWriter, Unrepresentable, comment_text, literal
from flow.graph import (
    ConditionalEntry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    SleepUntilEntry,
    StepEntry,
)
from flow.mapping import normalise_spec
from flow.step import MappingSpec, Step
from flow.workflow import Workflow

STRICT_ALLOWED = "codegen-strict compiles only then/parallel/foreach/static sleep/static map"


class CompileError(ValueError):
    """The graph cannot be compiled at all (not a strictness refusal): names the bad part."""


# --------------------------------------------------------------------------------------------
# What the compiler produces


@dataclass(frozen=True)
class ClosureBinding:
    """A lifted closure: its stable id, what it is, and the callable.

    `kind` is one of "branch_condition", "loop_condition", "sleep_duration", "sleep_until",
    "map_function", "mapping_fn". `record_id` is the flow step id the closure runs for (the mapping
    step of a map function or dynamic mapping key), else None.
    """

    closure_id: str
    kind: str
    fn: Callable[..., Any]
    workflow_id: str
    record_id: str | None = None


@dataclass(frozen=True)
class StepBinding:
    """A flow step called by `use_step(step_id)` inside one workflow's function.

    `durable_name` is the local name the step is registered under (the step id, or the lifted
    closure id of a function map). `nested` is the generated function name when the step is a
    nested workflow.
    """

    step_id: str
    step: Any
    durable_name: str
    nested: str | None = None


@dataclass
class WorkflowBinding:
    """Everything one generated workflow function needs: its steps and closures by id."""

    workflow_id: str
    function_name: str
    workflow: Any
    steps: dict[str, StepBinding] = field(default_factory=dict)


@dataclass
class CompiledWorkflow:
    """The result of compiling one top-level workflow.

    `source` (the module text), `filename` (registered in `linecache`), `code`, `namespace`
    (the executed module globals), `entry` (the top-level async function), `graph_hash`,
    `workflows` (workflow id -> binding, top-level first), `closures` (closure id -> binding),
    `constants` (constant id -> value, for mapping values that have no literal).
    """

    workflow_id: str
    strict: bool
    source: str
    filename: str
    graph_hash: str
    code: Any
    namespace: dict[str, Any]
    workflows: dict[str, WorkflowBinding]
    closures: dict[str, ClosureBinding]
    constants: dict[str, Any]

    @property
    def entry(self) -> Callable[..., Any]:
        """The generated function of the top-level workflow."""
        return self.namespace[self.workflows[self.workflow_id].function_name]  # type: ignore[no-any-return]

    def function_for(self, workflow_id: str) -> Callable[..., Any]:
        """The generated function of a (nested) workflow by id."""
        return self.namespace[self.workflows[workflow_id].function_name]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Helpers


def _is_workflow(obj: Any) -> bool:
    """A workflow used as a step: a `flow.Workflow`, or any non-Step object with a graph and an
    id (tests build graphs without the builder)."""
    t = type(obj)
    if t is Step:
        return False
    if t is Workflow or isinstance(obj, Workflow):
        return True
    return not isinstance(obj, Step) and hasattr(obj, "graph") and hasattr(obj, "id")


def _graph_of(workflow: Any) -> tuple[Any, ...]:
    graph = getattr(workflow, "graph", None)
    if graph is None:
        raise CompileError(f"workflow {getattr(workflow, 'id', workflow)!r} has no graph; commit() it first")
    return tuple(graph)


_IDENT_RE = re.compile(r"[^0-9a-zA-Z_]")


def _identifier(text: str) -> str:
    ident = _IDENT_RE.sub("_", text).strip("_") or "anonymous"
    if ident[0].isdigit():
        ident = "_" + ident
    return ident


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CompileError(f"{what}: duration must be seconds or a timedelta, got {value!r}")
    return max(0.0, float(value))  # Mastra: negative/falsy -> 0


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


# --------------------------------------------------------------------------------------------
# Structural hash (also the cache key's content part and the filename suffix)


def _describe_value(value: Any) -> Any:
    try:
        literal(value)
        return value
    except Unrepresentable:
        return {"repr": repr(value)}


_MEMO: dict[tuple[int, frozenset[int]], tuple[Any, Any]] = {}
"""Nested workflow descriptions during one `graph_hash` call (a workflow used N times is
described once); cleared at the end of the call."""
_MEMO_LOCK = threading.Lock()


def _describe_step(step: Any, seen: set[int]) -> Any:
    if _is_workflow(step):
        if id(step) in seen:
            return {"workflow": step.id, "recursive": True}
        key = (id(step), frozenset(seen))
        hit = _MEMO.get(key)
        if hit is not None and hit[0] is step:
            return hit[1]
        seen = seen | {id(step)}
        desc = {"workflow": step.id, "graph": [_describe_entry(e, seen) for e in _graph_of(step)]}
        _MEMO[key] = (step, desc)
        return desc
    out: dict[str, Any] = {"id": step.id, "component": getattr(step, "component", "STEP"),
                           "retries": getattr(step, "retries", None)}
    cfg = getattr(step, "map_config", None)
    if callable(cfg):
        out["map"] = "function"
    elif isinstance(cfg, Mapping):
        out["map"] = {k: _describe_spec(v) for k, v in cfg.items()}
    return out


def _describe_spec(spec: Any) -> Any:
    if not isinstance(spec, MappingSpec):
        return {"raw": _describe_value(spec) if not isinstance(spec, Mapping) else
                {k: (repr(v) if callable(v) else _describe_value(v)) for k, v in spec.items()}}
    step = spec.step
    if step is not None:
        refs = step if isinstance(step, list | tuple) else [step]
        step = [r if isinstance(r, str) else getattr(r, "id", repr(r)) for r in refs]
    return {"value": _describe_value(spec.value) if spec.has_value else None,
            "has_value": spec.has_value, "step": step, "init": spec.init_data, "path": spec.path,
            "rc": spec.request_context_path, "fn": spec.fn is not None}


def _describe_entry(entry: Any, seen: set[int]) -> Any:
    if isinstance(entry, StepEntry):
        return {"t": "step", "s": _describe_step(entry.step, seen)}
    if isinstance(entry, ParallelEntry):
        return {"t": "parallel", "s": [_describe_step(c.step, seen) for c in entry.steps]}
    if isinstance(entry, ConditionalEntry):
        return {"t": "branch", "s": [_describe_step(c.step, seen) for c in entry.steps]}
    if isinstance(entry, LoopEntry):
        return {"t": entry.loop_type, "s": _describe_step(entry.step, seen)}
    if isinstance(entry, ForeachEntry):
        return {"t": "foreach", "s": _describe_step(entry.step, seen), "c": entry.concurrency}
    if isinstance(entry, SleepEntry):
        return {"t": "sleep", "id": entry.id, "d": None if entry.fn else repr(entry.duration)}
    if isinstance(entry, SleepUntilEntry):
        return {"t": "sleep_until", "id": entry.id,
                "d": None if entry.fn else (entry.date.isoformat() if entry.date else None)}
    return {"t": type(entry).__name__}


def graph_hash(workflow: Any) -> str:
    """A sha256 of the graph's structure (ids, kinds, static values, closure positions)."""
    with _MEMO_LOCK:
        try:
            desc = {"id": workflow.id,
                    "graph": [_describe_entry(e, {id(workflow)}) for e in _graph_of(workflow)]}
        finally:
            _MEMO.clear()
    text = json.dumps(desc, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# The visitor


class _Compiler:
    def __init__(self, top: Any, strict: bool) -> None:
        self.top = top
        self.strict = strict
        self.w = CodeWriter()
        self.workflows: dict[str, WorkflowBinding] = {}
        self.closures: dict[str, ClosureBinding] = {}
        self.constants: dict[str, Any] = {}
        self._pending: list[Any] = []
        self._function_names: set[str] = set()
        self._last_entry = False
        self.hash: str | None = None  # the graph hash, once `compile()` has computed it

    # -- strictness / lifting -------------------------------------------------------------

    def _where(self, wf_id: str, entry_no: int) -> str:
        where = f"entry {entry_no}"
        if wf_id != self.top.id:
            where += f" of nested workflow {wf_id!r}"
        return where

    def lift(self, binding: WorkflowBinding, closure_id: str, kind: str, fn: Any,
             construct: str, record_id: str | None = None) -> str:
        """Register a closure under its positional id (or refuse it in strict mode)."""
        if self.strict:
            raise Unsupported(f"{construct} is a Python callable; {STRICT_ALLOWED}")
        if not callable(fn):
            raise CompileError(f"{construct} must be callable, got {fn!r}")
        self.closures[closure_id] = ClosureBinding(closure_id, kind, fn, binding.workflow_id, record_id)
        return closure_id

    # -- workflows -----------------------------------------------------------------------------

    def bind_workflow(self, workflow: Any) -> WorkflowBinding:
        existing = self.workflows.get(workflow.id)
        if existing is not None:
            if existing.workflow is not workflow:
                raise CompileError(
                    f"two different workflows share the id {workflow.id!r}; give nested workflows "
                    "distinct ids (flow.clone_workflow(wf, id=...))")
            return existing
        name = "workflow_" + _identifier(workflow.id)
        base, n = name, 2
        while name in self._function_names:
            name, n = f"{base}_{n}", n + 1
        self._function_names.add(name)
        binding = WorkflowBinding(workflow.id, name, workflow)
        self.workflows[workflow.id] = binding
        self._pending.append(workflow)
        return binding

    def bind_step(self, binding: WorkflowBinding, step: Any, durable_name: str | None = None) -> StepBinding:
        sid = step.id
        if not isinstance(sid, str) or not sid:
            raise CompileError(f"step {step!r} has no string id")
        existing = binding.steps.get(sid)
        if existing is not None:
            if existing.step is not step:
                # Mastra shares one record per id; two different bodies under one id cannot be
                # registered as one durable step.
                raise CompileError(
                    f"workflow {binding.workflow_id!r} uses two different steps with the id {sid!r}; "
                    "give them distinct ids (flow.clone_step(step, id=...))")
            return existing
        nested = None
        if _is_workflow(step):
            nested = self.bind_workflow(step).function_name
        sb = StepBinding(sid, step, durable_name or sid, nested)
        binding.steps[sid] = sb
        return sb

    def compile(self) -> str:
        w = self.w
        h = self.hash = graph_hash(self.top)
        w.comment(f"wfbench codegen of workflow {self.top.id!r} (graph {h[:12]}).")
        w.comment("Generated from the flow graph; do not edit. Each use_step(...) is a durable step,")
        w.comment("each use_closure(...) a Python closure of the graph registered as a durable step.")
        w.comment("next_input(r) passes an entry's output on; an entry that did not succeed")
        w.comment("(suspended, bailed, canceled) ends the run there.")
        self.bind_workflow(self.top)
        while self._pending:
            wf = self._pending.pop(0)
            w.blank()
            w.blank()
            self.visit_workflow(self.workflows[wf.id])
        return w.getvalue()

    def visit_workflow(self, binding: WorkflowBinding) -> None:
        w = self.w
        graph = _graph_of(binding.workflow)
        if not graph:
            raise CompileError(f"workflow {binding.workflow_id!r} has no entries")
        w.writeline("")
        w.writeline(f"async def {binding.function_name}(run, input_data):")
        w.indent()
        plural = "entry" if len(graph) == 1 else "entries"
        w.writeline(literal(f"Workflow {binding.workflow_id!r}: {len(graph)} {plural}."))
        w.writeline("use_step = run.use_step")
        w.writeline("use_closure = run.use_closure")
        w.writeline("next_input = run.next_input")
        w.writeline("prev = input_data")
        for no, entry in enumerate(graph, start=1):
            w.blank()
            self._last_entry = no == len(graph)
            self.visit_entry(binding, no, entry)
        w.blank()
        w.writeline("return run.end(r)")
        w.outdent()

    # -- entries -------------------------------------------------------------------------------

    def visit_entry(self, b: WorkflowBinding, no: int, entry: Any) -> None:
        t = type(entry)  # the exact entry classes first (the common case), then subclasses
        if t is StepEntry:
            self.visit_step_entry(b, no, entry)
        elif t is ParallelEntry:
            self.visit_parallel(b, no, entry)
        elif t is SleepEntry:
            self.visit_sleep(b, no, entry)
        elif isinstance(entry, StepEntry):
            self.visit_step_entry(b, no, entry)
        elif isinstance(entry, ParallelEntry):
            self.visit_parallel(b, no, entry)
        elif isinstance(entry, ConditionalEntry):
            self.visit_branch(b, no, entry)
        elif isinstance(entry, LoopEntry):
            self.visit_loop(b, no, entry)
        elif isinstance(entry, ForeachEntry):
            self.visit_foreach(b, no, entry)
        elif isinstance(entry, SleepEntry):
            self.visit_sleep(b, no, entry)
        elif isinstance(entry, SleepUntilEntry):
            self.visit_sleep_until(b, no, entry)
        else:
            raise CompileError(f"{self._where(b.workflow_id, no)}: unknown graph entry {entry!r}")

    def _stop_check(self) -> None:
        if not self._last_entry:  # the `return run.end(r)` after the last entry covers it
            self.w.writeline("prev = next_input(r)")

    def _result(self, expr: str) -> None:
        """An entry whose result is one expression: `prev = next_input(<expr>)`, or
        `r = <expr>` for the last entry (its `run.end(r)` follows)."""
        if self._last_entry:
            self.w.writeline(f"r = {expr}")
        else:
            self.w.writeline(f"prev = next_input({expr})")

    def _describe(self, step: Any) -> str:
        if _is_workflow(step):
            return f"nested workflow {step.id!r}"
        return f"step {step.id!r}"

    def visit_step_entry(self, b: WorkflowBinding, no: int, entry: StepEntry) -> None:
        step = entry.step
        cfg = getattr(step, "map_config", None)
        if getattr(step, "component", None) == "MAPPING" and cfg is not None:
            if callable(cfg) and not isinstance(cfg, Mapping):
                self.visit_map_function(b, no, step, cfg)
            else:
                self.visit_mapping_object(b, no, step, cfg)
            return
        self.w.comment(f"entry {no}: then {self._describe(step)}")
        sid = self.bind_step(b, step).step_id
        self._result(f"await use_step({literal(sid)})(prev)")

    def visit_map_function(self, b: WorkflowBinding, no: int, step: Any, fn: Any) -> None:
        cid = f"{b.workflow_id}/entry{no}/map"
        where = self._where(b.workflow_id, no)
        self.lift(b, cid, "map_function", fn, f"map function of {where}", record_id=step.id)
        self.w.comment(f"entry {no}: map {step.id!r} with a function, lifted as {cid!r}")
        self.bind_step(b, step, durable_name=cid)
        self._result(f"await use_step({literal(step.id)})(prev)")

    def visit_mapping_object(self, b: WorkflowBinding, no: int, step: Any, cfg: Any) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        specs = {str(k): normalise_spec(str(k), v) for k, v in dict(cfg).items()}
        keys = "1 key" if len(specs) == 1 else f"{len(specs)} keys"
        w.comment(f"entry {no}: map {step.id!r} with a mapping object ({keys})")
        call = f"await run.mapping({literal(step.id)}, prev, {{"
        if not specs:
            self._result(call + "})")
            return
        w.writeline(("r = " if self._last_entry else "prev = next_input(") + call)
        w.indent()
        for key, spec in specs.items():
            w.writeline(f"{literal(key)}: {self.mapping_value(b, no, step, key, spec, where)},")
        w.outdent()
        w.writeline("})" if self._last_entry else "}))")

    def mapping_value(self, b: WorkflowBinding, no: int, step: Any, key: str,
                      spec: MappingSpec, where: str) -> str:
        if spec.has_value:
            try:
                return literal(spec.value)
            except Unrepresentable:
                cid = f"{b.workflow_id}/entry{no}/map/{key}"
                self.constants[cid] = spec.value
                return f"run.constant({literal(cid)})"
        if spec.fn is not None:
            cid = f"{b.workflow_id}/entry{no}/map/{key}"
            self.lift(b, cid, "mapping_fn", spec.fn,
                      f"dynamic mapping fn for key {key!r} of {where}", record_id=step.id)
            return f"use_closure({literal(cid)})"
        if spec.request_context_path is not None:
            return f"run.from_request_context({literal(spec.request_context_path)})"
        if spec.init_data:
            return f"run.from_init({literal(spec.path)})"
        if spec.step is not None:
            refs = spec.step if isinstance(spec.step, list | tuple) else [spec.step]
            ids = []
            for ref in refs:
                rid = ref if isinstance(ref, str) else getattr(ref, "id", None)
                if not isinstance(rid, str):
                    raise CompileError(f"mapping key {key!r} of {where}: bad step reference {ref!r}")
                ids.append(rid)
            return f"run.from_step({literal(ids)}, {literal(spec.path)})"
        raise CompileError(f"mapping key {key!r} of {where} has no source")

    def visit_parallel(self, b: WorkflowBinding, no: int, entry: ParallelEntry) -> None:
        w = self.w
        children = [c.step for c in entry.steps]
        ids = [self.bind_step(b, s).step_id for s in children]
        w.comment(f"entry {no}: parallel " + ", ".join(self._describe(s) for s in children))
        w.writeline(f"r = run.block({literal(ids)}, await run.gather(")
        w.indent()
        for sid in ids:
            w.writeline(f"use_step({literal(sid)})(prev),")
        w.outdent()
        w.writeline("))")
        self._stop_check()

    def visit_branch(self, b: WorkflowBinding, no: int, entry: ConditionalEntry) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        children = [c.step for c in entry.steps]
        if len(children) != len(entry.conditions):
            raise CompileError(f"{where}: branch has {len(children)} steps but "
                               f"{len(entry.conditions)} conditions")
        w.comment(f"entry {no}: branch over " + ", ".join(self._describe(s) for s in children))
        cids = []
        for i, cond in enumerate(entry.conditions, start=1):
            cid = f"{b.workflow_id}/entry{no}/branch{i}/condition"
            cids.append(self.lift(b, cid, "branch_condition", cond, f"branch condition {i} of {where}"))
        ids = [self.bind_step(b, s).step_id for s in children]
        w.writeline("chosen = await asyncio.gather(")
        w.indent()
        for cid in cids:
            w.writeline(f"use_closure({literal(cid)})(prev),")
        w.outdent()
        w.writeline(")")
        w.writeline("calls = []")
        for i, sid in enumerate(ids):
            w.writeline(f"if chosen[{i}]:")
            w.indent()
            w.writeline(f"calls.append(use_step({literal(sid)})(prev))")
            w.outdent()
        w.writeline(f"r = run.block({literal(ids)}, await run.gather(*calls))")
        self._stop_check()

    def visit_loop(self, b: WorkflowBinding, no: int, entry: LoopEntry) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        kind = entry.loop_type
        if kind not in ("dowhile", "dountil"):
            raise CompileError(f"{where}: unknown loop type {kind!r}")
        cid = f"{b.workflow_id}/entry{no}/loop/condition"
        self.lift(b, cid, "loop_condition", entry.condition, f"{kind} condition of {where}")
        sid = self.bind_step(b, entry.step).step_id
        w.comment(f"entry {no}: {kind} {self._describe(entry.step)}")
        w.writeline("iteration = 0")
        w.writeline("while True:")
        w.indent()
        w.writeline("iteration += 1")
        w.writeline(f"r = await use_step({literal(sid)})(prev, iteration=iteration)")
        w.writeline("prev = next_input(r)")
        test = "" if kind == "dountil" else "not "
        w.writeline(f"if {test}await use_closure({literal(cid)})(prev, iteration=iteration):")
        w.indent()
        w.writeline("break")
        w.outdent()
        w.outdent()

    def visit_foreach(self, b: WorkflowBinding, no: int, entry: ForeachEntry) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        conc = entry.concurrency
        if isinstance(conc, bool) or not isinstance(conc, int) or conc < 1:
            raise CompileError(f"{where}: foreach concurrency must be an int >= 1, got {conc!r}")
        sid = self.bind_step(b, entry.step).step_id
        w.comment(f"entry {no}: foreach {self._describe(entry.step)}, concurrency {conc}")
        w.writeline(f"items = run.foreach_items({literal(sid)}, prev)")
        w.writeline(f"pool = asyncio.Semaphore({conc})")
        w.blank()
        fname = f"foreach_entry{no}"
        w.writeline(f"async def {fname}(index, item):")
        w.indent()
        w.writeline("async with pool:")
        w.indent()
        w.writeline(f"return await use_step({literal(sid)}).item(index, item, pool)")
        w.outdent()
        w.outdent()
        w.blank()
        w.writeline(f"r = run.foreach_end({literal(sid)}, prev, await run.gather(")
        w.indent()
        w.writeline(f"*[{fname}(index, item) for index, item in enumerate(items)],")
        w.outdent()
        w.writeline("))")
        self._stop_check()

    def visit_sleep(self, b: WorkflowBinding, no: int, entry: SleepEntry) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        if entry.fn is not None:
            cid = f"{b.workflow_id}/entry{no}/sleep/duration"
            self.lift(b, cid, "sleep_duration", entry.fn, f"sleep duration function of {where}",
                      record_id=entry.id)
            w.comment(f"entry {no}: sleep {entry.id!r} for a duration computed by a function")
            w.writeline(f"run.sleep_start({literal(entry.id)}, prev)")
            w.writeline(f"await sleep(run.seconds(await use_closure({literal(cid)})(prev)))")
        else:
            secs = _seconds(entry.duration if entry.duration is not None else 0, where)
            w.comment(f"entry {no}: sleep {entry.id!r} for {secs:g} s")
            w.writeline(f"run.sleep_start({literal(entry.id)}, prev)")
            w.writeline(f"await sleep({literal(secs)})")
        self._result(f"run.sleep_end({literal(entry.id)}, prev)")

    def visit_sleep_until(self, b: WorkflowBinding, no: int, entry: SleepUntilEntry) -> None:
        w = self.w
        where = self._where(b.workflow_id, no)
        if entry.fn is not None:
            cid = f"{b.workflow_id}/entry{no}/sleep_until/date"
            self.lift(b, cid, "sleep_until", entry.fn, f"sleep_until date function of {where}",
                      record_id=entry.id)
            w.comment(f"entry {no}: sleep_until {entry.id!r}, a date computed by a function")
            date_expr = f"await use_closure({literal(cid)})(prev)"
        else:
            if not isinstance(entry.date, _dt.datetime):
                raise CompileError(f"{where}: sleep_until needs a datetime, got {entry.date!r}")
            # a naive date is local time (as flow reads it): written out with its offset
            date = entry.date if entry.date.tzinfo is not None else entry.date.astimezone()
            w.comment(f"entry {no}: sleep_until {entry.id!r}, {date.isoformat()}")
            date_expr = literal(date.isoformat())
        w.writeline(f"run.sleep_start({literal(entry.id)}, prev)")
        w.writeline(f"await sleep(run.until({date_expr}))")
        self._result(f"run.sleep_end({literal(entry.id)}, prev)")


# --------------------------------------------------------------------------------------------
# Public entry points


_CACHE: dict[tuple[int, bool], tuple[Any, CompiledWorkflow]] = {}
_CACHE_LOCK = threading.Lock()


def generate_source(workflow: Any, strict: bool = False) -> str:
    """The generated Python source for `workflow` (no compilation, no caching)."""
    return _Compiler(workflow, strict).compile()


def _default_globals() -> dict[str, Any]:
    from engines.codegen.runtime import durable_sleep

    return {"asyncio": asyncio, "sleep": durable_sleep}


def compile_workflow(workflow: Any, strict: bool = False,
                     extra_globals: Mapping[str, Any] | None = None) -> CompiledWorkflow:
    """Compile a committed flow workflow (cached per workflow object and strictness).

    Raises `engines.Unsupported` (strict mode, a closure) or `CompileError` (a malformed graph).
    """
    if not isinstance(getattr(workflow, "id", None), str):
        raise CompileError(f"codegen needs a committed flow workflow, got {workflow!r}")
    key = (id(workflow), strict)
    if extra_globals is None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
        if hit is not None and hit[0] is workflow:
            return hit[1]
    compiler = _Compiler(workflow, strict)
    source = compiler.compile()
    h = compiler.hash or graph_hash(workflow)
    filename = f"<wfbench-codegen {comment_text(workflow.id)} {h[:12]}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": f"wfbench_codegen_{_identifier(workflow.id)}",
                                 "__file__": filename}
    namespace.update(_default_globals())
    if extra_globals:
        namespace.update(extra_globals)
    exec(code, namespace)  # noqa: S102 - our own generated code, user data only in literals
    compiled = CompiledWorkflow(
        workflow_id=workflow.id, strict=strict, source=source, filename=filename, graph_hash=h,
        code=code, namespace=namespace, workflows=compiler.workflows, closures=compiler.closures,
        constants=compiler.constants)
    if extra_globals is None:
        with _CACHE_LOCK:
            _CACHE[key] = (workflow, compiled)
    return compiled
