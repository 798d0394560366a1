"""The `codegen` and `codegen-strict` engines: the flow graph compiled to Python source that runs
on the `durable` runtime (see `engines.codegen.compiler` and `engines.codegen.runtime`).

A run is a durable run of the program's body. `run()` returns when the run ends or when it is
suspended (its body waits only on Mastra resume hooks); `resume()` sends the resume data to the
suspended step's hook (`mastra:<run_id>:<step path>`) and waits again. The run record's
attributes say how to rebuild the workflow in another process:
`{"engine": "codegen", "workflow_id": ..., "graph_hash": ..., "target": "module:attr"}`; the
`loader` given to `durable.Worker` uses them, so a worker recompiles the graph to the same names
and recovers the run.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engines.base import (
    BadTarget,
    Engine,
    EngineError,
    NotResumable,
    RunNotFound,
    Unsupported,
    flow_workflow_of,
    is_flow_workflow,
    where_runs_are,
    world_for_db,
)
from engines.codegen.errors import original_error, restore_error
from engines.codegen.program import WATCHES, Program, program_for, send_resume
from engines.codegen.runtime import TOKEN_PREFIX, FlowRun, Watch, forget_run, live_run
from flow.errors import FlowError
from flow.results import StepResult, WorkflowResult

log = logging.getLogger("engines.codegen")

# scenario id (or other name) -> target; filled by the harness (engines never import scenarios)
_RESOLVERS: list[Callable[[str], Any]] = []


def register_target_resolver(resolver: Callable[[str], Any]) -> None:
    """Let `resolve_target` find targets by a name that is not `module:attr` (a scenario id):
    `resolver(name)` returns the target or None."""
    _RESOLVERS.append(resolver)


def resolve_target(ref: str) -> Any:
    """The target named by `ref`: `module:attr` (dotted attr allowed) or a registered name."""
    for resolver in _RESOLVERS:
        found = resolver(ref)
        if found is not None:
            return found
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise EngineError(f"cannot rebuild target {ref!r}: expected 'module:attribute' or a name "
                          "known to a registered resolver (engines.codegen.register_target_resolver)")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_REFS: dict[int, tuple[Any, str | None]] = {}


def find_target_ref(target: Any) -> str | None:
    """`module:attr` of an importable module global that is `target` (None if there is none);
    remembered per target object."""
    hit = _REFS.get(id(target))
    if hit is not None and hit[0] is target:
        return hit[1]
    ref = _scan_modules(target)
    _REFS[id(target)] = (target, ref)
    return ref


def _scan_modules(target: Any) -> str | None:
    for name, mod in list(sys.modules.items()):
        if name == "__main__" or mod is None or name.startswith(("_", "flow", "durable", "engines")):
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for attr, value in items:
            if value is target:
                return f"{name}:{attr}"
    return None


def loader(run_record: Any) -> Any:
    """`durable.Worker(world, loader=loader)`: the body of a codegen run, rebuilt from its run
    record's attributes (None if the run is not a codegen run)."""
    attrs = getattr(run_record, "attributes", None) or {}
    engine = attrs.get("engine")
    if engine not in ("codegen", "codegen-strict"):
        return None
    ref = attrs.get("target")
    if not ref:
        raise EngineError(f"codegen run {run_record.run_id} has no 'target' attribute; it cannot be "
                          "rebuilt in another process (run it with target_ref='module:attr')")
    wf = flow_workflow_of(resolve_target(ref), engine)
    program = program_for(wf, strict=engine == "codegen-strict")
    if program.name != run_record.workflow_name:
        raise EngineError(f"codegen run {run_record.run_id} is a run of {run_record.workflow_name!r}, "
                          f"but {ref} compiles to {program.name!r}")
    if attrs.get("graph_hash") and attrs["graph_hash"] != program.compiled.graph_hash:
        # replay will tell where the code differs from the log (NondeterminismError)
        log.warning("codegen run %s: the graph of %s changed since the run started",
                    run_record.run_id, ref)
    return program.body


def _status_of(durable_status: str) -> str:
    return {"completed": "success", "failed": "failed", "cancelled": "canceled"}.get(durable_status,
                                                                                     durable_status)


def result_from_json(data: dict[str, Any]) -> WorkflowResult:
    """A `WorkflowResult` from its JSON (`runtime.result_json` / `to_dict()`). Errors are rebuilt
    with their class (`engines.codegen.errors.restore_error`): the original class when it can be
    found, else a `RestoredError` subclass named after it."""
    return WorkflowResult(
        status=data["status"], result=data.get("result"),
        error=restore_error(data.get("error")),
        steps={k: _step_from_json(v) for k, v in (data.get("steps") or {}).items()},
        input=data.get("input"), suspended=[list(p) for p in data.get("suspended") or []],
        state=data.get("state") or {}, run_id=data.get("run_id") or "")


def _step_from_json(data: dict[str, Any]) -> StepResult:
    rec = StepResult.from_dict(data)
    if data.get("error") is not None:
        rec.error = restore_error(data["error"])
    return rec


class CodegenEngine(Engine):
    """Compiled flow graphs on durable. Options: `world=` (default: durable's current world),
    `db=` (a SQLite file: its `durable.SqliteWorld`), `strict=` (the `codegen-strict` variant)."""

    def __init__(self, strict: bool = False, world: Any = None,
                 db: str | os.PathLike[str] | None = None) -> None:
        self.strict = strict
        self.name = "codegen-strict" if strict else "codegen"
        self._world = world if world is not None or db is None else world_for_db(db)

    @property
    def world(self) -> Any:
        if self._world is not None:
            return self._world
        import durable

        return durable.get_world()

    def program(self, target: Any) -> Program:
        """Compile and register (raises `Unsupported` before anything runs)."""
        return program_for(flow_workflow_of(target, self.name), strict=self.strict)

    def check(self, target: Any) -> None:
        self.program(target)

    def source(self, target: Any) -> str:
        """The generated Python source for `target`."""
        return self.program(target).compiled.source

    generated_source = source

    # -- run / resume ------------------------------------------------------------------------

    async def run(self, target: Any, input_data: Any = None, run_id: str | None = None,
                  initial_state: dict[str, Any] | None = None, request_context: Any = None,
                  target_ref: str | None = None, **options: Any) -> WorkflowResult:
        import durable
        from flow.validation import validate

        wf = flow_workflow_of(target, self.name)
        program = program_for(wf, strict=self.strict)
        if wf.validate_inputs:
            input_data = validate(wf.input_schema, input_data, "Invalid input data:")
            if initial_state is not None and wf.state_schema is not None:
                initial_state = validate(wf.state_schema, initial_state, "Invalid input data:")
        rc = request_context.to_dict() if hasattr(request_context, "to_dict") else dict(request_context or {})
        run_id = run_id or f"wrun_{uuid.uuid4().hex}"
        ref = target_ref or find_target_ref(target) or (
            find_target_ref(wf) if target is not wf else None)
        attrs = {"engine": self.name, "workflow_id": wf.id, "graph_hash": program.compiled.graph_hash}
        if ref:
            attrs["target"] = ref
        watch = WATCHES.setdefault(run_id, Watch())
        try:
            handle = durable.start_run(program.body, kwargs={
                "input_data": input_data, "initial_state": dict(initial_state or {}),
                "request_context": rc}, run_id=run_id, attributes=attrs, world=self._world)
            return await self._wait(handle, run_id, watch)
        finally:
            WATCHES.pop(run_id, None)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     label: str | None = None, for_each_index: int | None = None,
                     **options: Any) -> WorkflowResult:
        import durable

        wf = flow_workflow_of(target, self.name)
        program = program_for(wf, strict=self.strict)
        self._check_resumable(wf, program, run_id, step if label is None else label)
        if label is not None:
            labels = self._labels(run_id)
            if label not in labels:
                raise NotResumable(f'Resume label "{label}" not found among suspended steps. '
                                   f"Available labels: [{', '.join(sorted(labels))}]",
                                   run_id=run_id, status="suspended", step=label, engine=self.name)
            token = labels[label]
            path = self._waiting(run_id).get(token, [])
        else:
            token, path = await self._token_for(wf, run_id, step, for_each_index)
        target_step = _step_at(program, wf.id, path)
        if target_step is not None and getattr(target_step, "resume_schema", None) is not None:
            from flow.validation import validate

            resume_data = validate(target_step.resume_schema, resume_data, "Invalid resume data:")
        watch = WATCHES.setdefault(run_id, Watch())
        try:
            await send_resume(token, resume_data, world=self._world)
            handle = durable.get_run(run_id, world=self._world)
            return await self._drive(handle, run_id, watch, pending_token=token)
        finally:
            WATCHES.pop(run_id, None)

    def _check_resumable(self, wf: Any, program: Program, run_id: str, step: Any) -> None:
        """`RunNotFound` / `NotResumable` (ended run) / `BadTarget` (a run of another workflow),
        from the run record, before anything is sent."""
        import durable

        try:
            rec = self.world.get_run(run_id)
        except durable.RunNotFoundError:
            raise RunNotFound(run_id, where_runs_are(self.world), self.name) from None
        if rec.workflow_name != program.name:
            raise BadTarget(f"workflow {wf.id!r}",
                            f"is not the workflow of run {run_id!r} (a run of "
                            f"{rec.workflow_name!r}); resume it with the target it was started with",
                            target=wf, engine=self.name)
        if rec.status == "completed":
            out = rec.output if isinstance(rec.output, dict) else {}
            raise NotResumable.finished(run_id, str(out.get("status") or "success"), step,
                                        self.name)
        if rec.status in ("failed", "cancelled"):
            raise NotResumable.finished(run_id, _status_of(rec.status), step, self.name)

    async def _drive(self, handle: Any, run_id: str, watch: Watch,
                     pending_token: str | None = None) -> WorkflowResult:
        """Wait for the run, with a Worker in this process that takes it over when no live
        process holds it (a run started by another process, or left by a dead one)."""
        import durable

        worker = durable.Worker(self.world, loader=loader)
        task = asyncio.ensure_future(worker.run(until_idle=True))
        try:
            return await self._wait(handle, run_id, watch, pending_token=pending_token)
        finally:
            await task

    async def recover(self, target: Any, run_id: str) -> WorkflowResult:
        """Drive a run whose process died to its end (or its next suspension) in this process."""
        import durable

        self.program(target)  # registered here, so the worker finds the body by name
        watch = WATCHES.setdefault(run_id, Watch())
        try:
            return await self._drive(durable.get_run(run_id, world=self.world), run_id, watch)
        finally:
            WATCHES.pop(run_id, None)

    async def cancel(self, target: Any, run_id: str) -> None:
        """Cancel a run with flow's semantics: a step in flight finishes and nothing after it
        runs (the body sees the abort after the step); a run that sleeps or waits for a resume
        is terminated at once (its durable run ends `cancelled`)."""
        import durable

        live = live_run(run_id)
        if live is not None and live.final is None:
            live.root.aborted = True
            if not (live.root.sleeping or live.root.waiting_hooks):
                return
        handle = durable.get_run(run_id, world=self._world)
        await handle.terminate("canceled")

    async def _token_for(self, wf: Any, run_id: str, step: Any,
                         index: int | None) -> tuple[str, list[str]]:
        """The hook token of the step to resume. A resume naming a step of a run that is still
        running in this process waits until that step suspends (a persistent trigger: nothing is
        lost); otherwise the step must be suspended already."""
        while True:
            waiting = self._waiting(run_id)
            live = live_run(run_id)
            running_here = (live is not None and live.final is None and step is not None
                            and not live.is_quiescent_suspended())
            if waiting:
                try:
                    token = _pick(waiting, step, index, run_id)
                    return token, waiting[token]
                except FlowError as exc:
                    if not running_here:
                        raise NotResumable(str(exc), run_id=run_id, status="suspended", step=step,
                                           engine=self.name) from None
            elif not running_here:
                raise NotResumable(f"run {run_id!r} of workflow {wf.id!r} has no suspended step to "
                                   "resume; it is still running", run_id=run_id, status="running",
                                   step=step, engine=self.name)
            await asyncio.sleep(0.005)

    def _waiting(self, run_id: str) -> dict[str, list[str]]:
        """Token -> step path of every suspended step (from this process, else the world)."""
        live = live_run(run_id)
        if live is not None and live.root.waiting_hooks:
            return dict(live.root.waiting_hooks)
        out: dict[str, list[str]] = {}
        prefix = f"{TOKEN_PREFIX}{run_id}:"
        for hook in self.world.list_hooks(run_id):
            if hook.token.startswith(prefix):
                meta = hook.metadata if isinstance(hook.metadata, dict) else {}
                out[hook.token] = [str(p) for p in meta.get("path") or []]
        return out

    def _labels(self, run_id: str) -> dict[str, str]:
        """Resume label -> token of the suspended steps."""
        live = live_run(run_id)
        if live is not None and live.root.waiting_hooks:
            return dict(live.root.labels)
        out: dict[str, str] = {}
        prefix = f"{TOKEN_PREFIX}{run_id}:"
        for hook in self.world.list_hooks(run_id):
            meta = hook.metadata if isinstance(hook.metadata, dict) else {}
            if hook.token.startswith(prefix):
                for label in meta.get("labels") or []:
                    out[str(label)] = hook.token
        return out

    async def _wait(self, handle: Any, run_id: str, watch: Watch,
                    pending_token: str | None = None) -> WorkflowResult:
        """Until the run ends, or its body waits only on resume hooks."""
        changed = asyncio.Event()
        watch.callbacks.append(changed.set)
        live = live_run(run_id)
        if live is not None:
            live.root.watch = watch
        # the run's end without reading its output (a codegen run's output carries every step
        # record; a run that ended here is answered from its FlowRun, see `_final`)
        done = asyncio.ensure_future(handle.wait(output=False))
        try:
            while True:
                waiter = asyncio.ensure_future(changed.wait())
                await asyncio.wait({done, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                changed.clear()
                if done.done():
                    return await self._final(handle, run_id, done)
                live = live_run(run_id)
                if live is None or live.root.watch is not watch:
                    if live is not None:
                        live.root.watch = watch
                    continue
                if pending_token is not None and pending_token in live.root.waiting_hooks:
                    continue
                if live.is_quiescent_suspended():
                    return live.snapshot()
        finally:
            watch.callbacks.remove(changed.set)
            if not done.done():
                done.cancel()

    async def _final(self, handle: Any, run_id: str, done: asyncio.Future[Any]) -> WorkflowResult:
        """The result of an ended run (`done`: `handle.wait(output=False)`): the FlowRun's when
        the run ended in this process, else read from the run's output (or its error)."""
        live = live_run(run_id)
        if live is not None:
            forget_run(run_id)  # the run has ended: its FlowRun is not needed any more
        exc = done.exception()
        if exc is None:
            if (done.result().status == "completed" and live is not None
                    and live.final is not None):
                return live.final
            try:  # (the output, or the run's error as `return_value` raises it)
                return result_from_json(await handle.return_value())
            except Exception as e:
                exc = e
        import durable

        if isinstance(exc, durable.WorkflowRunCancelledError):
            steps = {}
            for sid, rec in (live.records if live else {}).items():
                if rec.status == "waiting":  # a sleep cut short, as flow records it
                    rec = replace(rec, status="canceled")
                steps[sid] = rec
            return WorkflowResult(status="canceled", steps=steps,
                                  input=live.input if live else None,
                                  state=dict(live.state) if live else {}, run_id=run_id)
        cause = original_error(getattr(exc, "cause", exc))
        return WorkflowResult(status="failed", error=cause,
                              steps=dict(live.records) if live else {},
                              input=live.input if live else None, run_id=run_id)


def _pick(waiting: dict[str, list[str]], step: Any, index: int | None, run_id: str) -> str:
    if step is None:
        if len(waiting) > 1 and index is None:
            listed = ", ".join("[" + ", ".join(p) + "]" for p in waiting.values())
            raise FlowError(f"Multiple suspended steps found: {listed}. Please specify which step "
                            'to resume using the "step" parameter.')
        candidates = list(waiting)
    else:
        ids = _ids(step)
        candidates = [t for t, p in waiting.items() if p[:len(ids)] == ids]
        if not candidates:
            listed = ", ".join("[" + ", ".join(p) + "]" for p in waiting.values())
            raise FlowError(f'This workflow step "{".".join(ids)}" was not suspended. Available '
                            f"suspended steps: {listed}")
    if index is not None:
        picked = [t for t in candidates if t.endswith(f"#{index}")]
        if not picked:
            raise FlowError(f"resume: foreach item {index} of run {run_id!r} is not suspended")
        return picked[0]
    return sorted(candidates, key=lambda t: (len(t), t))[0]


def _ids(step: Any) -> list[str]:
    if isinstance(step, str):
        return [step]
    if isinstance(step, list | tuple):
        return [i for s in step for i in _ids(s)]
    sid = getattr(step, "id", None)
    if isinstance(sid, str):
        return [sid]
    raise FlowError(f"resume(step=...) expects a step, a step id or a list of them, got {step!r}")


def _step_at(program: Program, workflow_id: str, path: list[str]) -> Any:
    wf_id = workflow_id
    step = None
    for sid in path:
        binding = program.compiled.workflows[wf_id].steps.get(sid)
        if binding is None:
            return None
        step = binding.step
        if binding.nested is not None:
            wf_id = sid
    return None if is_flow_workflow(step) else step


__all__ = ["CodegenEngine", "FlowRun", "Unsupported", "find_target_ref", "loader",
           "register_target_resolver", "resolve_target", "result_from_json"]
