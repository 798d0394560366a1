"""`Run`: one execution of a committed workflow — start, resume, cancel, stream.

Snapshots: with a `store` every persistence point of reference 3.15 is written (incrementally);
without one the run keeps its snapshot in memory (resumable through the same `Run`, which
`workflow.create_run(run_id=...)` returns from the workflow's run cache while it is suspended).
The default engine is not durable against crashes: resuming a run whose snapshot says it is
still `running`/`waiting` raises `NotRecoverableError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flow.context import RequestContext, as_request_context
from flow.errors import FlowError, NotRecoverableError
from flow.interpreter import META, Emit, Execution, Resume, run_graph
from flow.results import WorkflowResult
from flow.signal import AbortSignal
from flow.storage import RunSnapshot, SnapshotStore
from flow.stream import WorkflowStream
from flow.validation import validate

if TYPE_CHECKING:
    from flow.workflow import Workflow


def _ids(step: Any) -> list[str]:
    """Normalise `resume(step=...)`: a step, a workflow, an id, or a list of them (a path)."""
    if isinstance(step, str):
        return [step]
    if isinstance(step, Sequence):
        out: list[str] = []
        for s in step:
            out.extend(_ids(s))
        return out
    sid = getattr(step, "id", None)
    if isinstance(sid, str):
        return [sid]
    raise FlowError(f"resume(step=...) expects a step, a step id or a list of them, got {step!r}")


def _fmt_ids(ids: list[str]) -> str:
    return "[" + ", ".join(ids) + "]"


class Run:
    """A run of `workflow` with id `run_id`. Create it with `workflow.create_run()`."""

    def __init__(self, workflow: Workflow, run_id: str | None = None,
                 store: SnapshotStore | None = None) -> None:
        self.workflow = workflow
        self.workflow_id = workflow.id
        self.run_id = run_id if run_id is not None else str(uuid.uuid4())
        self.store = store
        self.status = "pending"
        self.signal = AbortSignal()
        self._running = False
        self._memory: RunSnapshot | None = None
        if store is not None:
            store.create(RunSnapshot(workflow_id=workflow.id, run_id=self.run_id,
                                     graph=workflow.serialize_graph()))

    def __repr__(self) -> str:
        return f"Run(workflow={self.workflow_id!r}, run_id={self.run_id!r}, status={self.status!r})"

    # -- start ------------------------------------------------------------------------------
    async def start(self, input_data: Any = None, initial_state: Mapping[str, Any] | None = None,
                    request_context: RequestContext | Mapping[str, Any] | None = None
                    ) -> WorkflowResult:
        """Run the workflow on `input_data`. Step errors never raise (they are in the result);
        invalid input raises `flow.ValidationError`."""
        return await self._start(input_data, initial_state, request_context)

    async def _start(self, input_data: Any, initial_state: Mapping[str, Any] | None,
                     request_context: Any, emit: Emit | None = None,
                     validate_inputs: bool | None = None) -> WorkflowResult:
        wf = self.workflow
        if self._running or self.status != "pending":
            raise FlowError(
                f"run {self.run_id!r} of workflow {wf.id!r} was already started (status "
                f"{self.status!r}); use workflow.create_run() for a new run or run.resume()")
        check = wf.validate_inputs if validate_inputs is None else validate_inputs
        if check:
            input_data = validate(wf.input_schema, input_data, "Invalid input data:")
            if initial_state is not None and wf.state_schema is not None:
                initial_state = validate(wf.state_schema, initial_state, "Invalid input data:")
        rc = as_request_context(request_context)
        ex = Execution(wf, self.run_id, input=input_data, state=dict(initial_state or {}),
                       request_context=rc, store=self.store, emit=emit, signal=self.signal,
                       validate_inputs=check)
        if self.store is not None:
            ex.persist("running", input=input_data, state=ex.state,
                       request_context=rc.to_dict())
        return await self._drive(ex, None)

    async def _drive(self, ex: Execution, resume: Resume | None) -> WorkflowResult:
        self._running = True
        self.status = "running"
        try:
            result = await run_graph(ex, resume)
        finally:
            self._running = False
        self.status = result.status
        if result.status == "suspended":
            if self.store is None:
                self._memory = RunSnapshot(
                    workflow_id=self.workflow_id, run_id=self.run_id, status="suspended",
                    input=ex.input, state=ex.state, steps=ex.step_results,
                    suspended_paths=ex.suspended_paths, resume_labels=ex.resume_labels,
                    request_context=ex.request_context.to_dict())
            self.workflow._runs[self.run_id] = self
        else:
            self._memory = None
            self.workflow._runs.pop(self.run_id, None)
        return result

    # -- resume -----------------------------------------------------------------------------
    def _snapshot(self) -> RunSnapshot | None:
        if self._memory is not None:
            return self._memory
        if self.store is not None:
            return self.store.load(self.workflow_id, self.run_id)
        return None

    async def resume(self, step: Any = None, resume_data: Any = None, label: str | None = None,
                     for_each_index: int | None = None,
                     request_context: RequestContext | Mapping[str, Any] | None = None
                     ) -> WorkflowResult:
        """Resume a suspended run: target by `step` (a step, id, or path list), by `label`, or
        automatically when exactly one step is suspended; `for_each_index` picks a foreach item."""
        return await self._resume(step, resume_data, label, for_each_index, request_context)

    async def _resume(self, step: Any, resume_data: Any, label: str | None,
                      for_each_index: int | None, request_context: Any,
                      emit: Emit | None = None, validate_inputs: bool | None = None
                      ) -> WorkflowResult:
        wf = self.workflow
        if self._running:
            raise FlowError(f"run {self.run_id!r} of workflow {wf.id!r} is still running; "
                            "resume it once it has suspended")
        snap = self._snapshot()
        if snap is None or snap.status == "pending":
            raise FlowError(f"No snapshot found for this workflow run: {wf.id} {self.run_id} "
                            "(no run with this id was started; check the run id and the store)")
        if snap.status in ("running", "waiting"):
            raise NotRecoverableError(
                f"run {self.run_id!r} of workflow {wf.id!r} is recorded as {snap.status!r}, not "
                "suspended: resume it once it has suspended; if its process stopped while it "
                "ran, the default engine is not durable against crashes and cannot recover it "
                "(use a durable engine such as codegen or native)")
        suspended: dict[str, list[str]] = {}
        for sid in snap.suspended_paths:
            rec = snap.steps.get(sid)
            if rec is not None and rec.status == "suspended":
                path = []
                if isinstance(rec.suspend_payload, dict):
                    meta = rec.suspend_payload.get(META)
                    if isinstance(meta, dict):
                        path = [str(p) for p in meta.get("path") or []]
                suspended[sid] = [sid, *path]
        if label is not None:
            info = snap.resume_labels.get(label)
            if info is None or info.get("step_id") not in suspended:
                raise FlowError(f'Resume label "{label}" not found among suspended steps. '
                                f"Available labels: {_fmt_ids(sorted(snap.resume_labels))}")
            steps = [str(info["step_id"])]
            if for_each_index is None and info.get("foreach_index") is not None:
                for_each_index = int(info["foreach_index"])
        elif step is not None:
            steps = _ids(step)
            if not steps:
                raise FlowError("resume(step=...) got an empty list of steps")
        else:
            if not suspended:
                raise FlowError("No suspended steps found in this workflow run")
            if len(suspended) > 1:
                listed = ", ".join(_fmt_ids(p) for p in suspended.values())
                raise FlowError(f"Multiple suspended steps found: {listed}. Please specify which "
                                'step to resume using the "step" parameter.')
            steps = next(iter(suspended.values()))
        if snap.status != "suspended":
            raise FlowError("This workflow run was not suspended")
        if steps[0] not in suspended:
            raise FlowError(f'This workflow step "{steps[0]}" was not suspended. Available '
                            f"suspended steps: {_fmt_ids(list(suspended))}")
        check = wf.validate_inputs if validate_inputs is None else validate_inputs
        target = _target_step(wf, steps)
        if target is not None and getattr(target, "resume_schema", None) is not None:
            resume_data = validate(target.resume_schema, resume_data, "Invalid resume data:")
        rc = as_request_context(request_context)
        for key, value in snap.request_context.items():
            if key not in rc:
                rc.set(key, value)
        ex = Execution(wf, self.run_id, input=snap.input, state=snap.state,
                       step_results=dict(snap.steps), request_context=rc, store=self.store,
                       emit=emit, signal=self.signal, validate_inputs=check,
                       suspended_paths=dict(snap.suspended_paths),
                       resume_labels=dict(snap.resume_labels))
        self.status = "suspended"
        resume = Resume(steps=steps, payload=resume_data,
                        path=list(snap.suspended_paths[steps[0]]), label=label,
                        for_each_index=for_each_index)
        if self.store is not None:
            ex.persist("running")
        return await self._drive(ex, resume)

    def restart(self) -> None:
        """Mastra's `restart()` re-drives a run left `running` after a crash. The default engine
        cannot: it raises `NotRecoverableError` for such a run, `FlowError` otherwise."""
        snap = self._snapshot()
        if snap is None:
            raise FlowError(f"No snapshot found for this workflow run: {self.workflow_id} "
                            f"{self.run_id}")
        if snap.status in ("running", "waiting"):
            raise NotRecoverableError(
                f"run {self.run_id!r} of workflow {self.workflow_id!r} is recorded as "
                f"{snap.status!r}; the default engine is not durable against crashes and cannot "
                "recover it (use a durable engine such as codegen or native)")
        raise FlowError(f"run {self.run_id!r} is {snap.status!r}, not left running; nothing to "
                        "restart (use resume() for a suspended run)")

    # -- cancel / stream --------------------------------------------------------------------
    async def cancel(self) -> None:
        """Cancel the run: the current step finishes, nothing after it runs, sleeps wake up.
        A suspended run is marked canceled."""
        self.signal.abort()
        if not self._running and self.status in ("suspended", "pending"):
            snap_status = self.status
            self.status = "canceled"
            self._memory = None
            self.workflow._runs.pop(self.run_id, None)
            if self.store is not None and snap_status == "suspended":
                self.store.write(self.workflow_id, self.run_id, {"status": "canceled"})

    def stream(self, input_data: Any = None, initial_state: Mapping[str, Any] | None = None,
               request_context: RequestContext | Mapping[str, Any] | None = None
               ) -> WorkflowStream:
        """Start the run as an async iterator of events (see `flow.stream`)."""
        return WorkflowStream(self.run_id, self.workflow_id,
                              lambda emit: self._start(input_data, initial_state,
                                                       request_context, emit))

    def resume_stream(self, step: Any = None, resume_data: Any = None, label: str | None = None,
                      for_each_index: int | None = None,
                      request_context: RequestContext | Mapping[str, Any] | None = None
                      ) -> WorkflowStream:
        """Resume the run as an async iterator of events."""
        return WorkflowStream(self.run_id, self.workflow_id,
                              lambda emit: self._resume(step, resume_data, label, for_each_index,
                                                        request_context, emit))


def _target_step(wf: Workflow, steps: list[str]) -> Any:
    """The innermost step named by a resume path, or None if it cannot be known here."""
    current: Any = wf
    for sid in steps:
        registry = getattr(current, "steps", None)
        if not isinstance(registry, dict) or sid not in registry:
            return None
        current = registry[sid]
    if current is wf or getattr(current, "component", None) == "WORKFLOW":
        return None
    return current
