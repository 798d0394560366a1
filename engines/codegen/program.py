"""A compiled workflow registered on `durable`: its body, its steps and its lifted closures.

`program_for(workflow, strict)` compiles (cached) and registers, under names derived from ids and
graph positions only (so another process that compiles the same graph registers the same names and
can replay the run; a changed graph replays into a `NondeterminismError` where it differs):

- the body   `codegen:<workflow id>`   (the graph hash is kept in the run's attributes)
- each step  `codegen:<workflow id>/<(nested) workflow id>/<step id>`
- a closure  `codegen:<workflow id>/<closure id>`   (closure id = `<wf>/entry<N>/...`)
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import Any

from engines.codegen.compiler import CompiledWorkflow, compile_workflow
from engines.codegen.runtime import (
    _LIVE,
    CRASH_ALLOWANCE,
    FlowRun,
    Watch,
    closure_body,
    enter_root_lane,
    flow_step_body,
    hook_token,
    parked,
    step_args,
    step_retries,
)

_PROGRAMS: dict[tuple[int, bool], tuple[Any, Program]] = {}
_LOCK = threading.Lock()
WATCHES: dict[str, Watch] = {}


def _hook_class() -> Any:
    from durable import BaseHook

    global _HOOK
    if _HOOK is None:

        @dataclasses.dataclass
        class MastraResume(BaseHook):  # type: ignore[misc, valid-type]
            """The payload of a Mastra resume: the resume data for the suspended step."""

            resume_data: Any = None

        _HOOK = MastraResume
    return _HOOK


_HOOK: Any = None


class Program:
    """One compiled workflow and its durable registrations."""

    def __init__(self, compiled: CompiledWorkflow) -> None:
        from durable import Workflows

        self.compiled = compiled
        self.prefix = f"codegen:{compiled.workflow_id}"
        self.registry = Workflows()
        self._steps: dict[tuple[str, str], Any] = {}
        self._durable_steps: dict[tuple[str, str], Any] = {}
        self._closures: dict[str, Any] = {}
        for wf_id, binding in compiled.workflows.items():
            wf = binding.workflow
            rc = getattr(wf, "retry_config", None) or {}
            delay = float(rc.get("delay", 0) or 0)
            for sid, sb in binding.steps.items():
                if sb.nested is not None:
                    continue
                retries = step_retries(self, wf_id, sb.step) + CRASH_ALLOWANCE
                if sb.durable_name != sid:  # a function map: registered under its closure id
                    name = f"{self.prefix}/{sb.durable_name}"
                else:
                    name = f"{self.prefix}/{wf_id}/{sid}"
                fn = functools.partial(flow_step_body, self, workflow_id=wf_id, step_id=sid)
                durable_step = self.registry.register_step(fn, name=name, max_retries=retries,
                                                           retry_delay=delay)
                self._durable_steps[(wf_id, sid)] = durable_step
                self._steps[(wf_id, sid)] = _compact_call(durable_step)
        for cid in compiled.closures:
            fn = functools.partial(closure_body, self, closure_id=cid)
            self._closures[cid] = self.registry.register_step(
                fn, name=f"{self.prefix}/{cid}", max_retries=CRASH_ALLOWANCE, retry_delay=0.0)
        self.body = self.registry.register_workflow(self._body, name=self.prefix)

    @property
    def name(self) -> str:
        return self.prefix

    def step_fn(self, workflow_id: str, step_id: str) -> Any:
        """The step as `StepCall` calls another backend's: every keyword (compacted here)."""
        return self._steps[(workflow_id, step_id)]

    def durable_step(self, workflow_id: str, step_id: str) -> Any:
        """The registered durable step itself: takes `runtime.step_args`' compact keywords."""
        return self._durable_steps[(workflow_id, step_id)]

    def closure_fn(self, closure_id: str) -> Any:
        """The closure as `ClosureCall` calls another backend's: every keyword."""
        step = self._closures[closure_id]

        def call(**kw: Any) -> Any:
            kw.pop("closure_id", None)  # bound at registration
            return step(**{k: v for k, v in kw.items() if v or k == "input_data"})

        return call

    def durable_closure(self, closure_id: str) -> Any:
        """The registered durable step of a closure: takes only the keywords that are set."""
        return self._closures[closure_id]

    async def _body(self, input_data: Any = None, initial_state: dict[str, Any] | None = None,
                    request_context: dict[str, Any] | None = None) -> dict[str, Any]:
        """The durable workflow body: run the generated function and return the JSON result."""
        from durable import get_workflow_metadata

        run_id = get_workflow_metadata().run_id
        run = FlowRun(self, self.compiled.workflow_id, run_id, input_data, dict(initial_state or {}),
                      dict(request_context or {}))
        run.watch = WATCHES.get(run_id)
        run.lane = enter_root_lane()
        _LIVE[run_id] = run
        try:
            out = await run.execute(self.compiled.entry, input_data)
        except Exception as exc:  # a step error (or a loop condition's) fails the run
            out = run.fail(exc)
        # (a body abandoned by its driver is closed inside an await: nothing below runs, and
        # its FlowRun keeps the suspended snapshot)
        run.root.waiting_hooks.clear()
        if run.watch is not None:
            run.watch.changed()  # the engine call reads run.final, then forgets the run
        elif _LIVE.get(run_id) is run:
            del _LIVE[run_id]  # driven by a worker alone: nobody reads it
        return out  # type: ignore[no-any-return]

    async def wait_for_resume(self, run: FlowRun, path: list[str], index: int | None,
                              labels: list[str] | None = None) -> Any:
        """Suspend a step: wait on its durable hook; returns the resume data sent to it. The
        hook's metadata keeps the step path and resume labels (for a resume from any process)."""
        root = run.root
        token = hook_token(run.run_id, path, index)
        root.waiting_hooks[token] = list(path)
        for label in labels or []:
            root.labels[label] = token
        with parked():  # entered before the notification, so watchers see the task parked
            root._notify()
            payload = await _hook_class().wait(token=token, metadata={
                "path": list(path), "foreach_index": index, "labels": list(labels or [])})
        root.waiting_hooks.pop(token, None)
        for label in labels or []:
            if root.labels.get(label) == token:
                del root.labels[label]
        return getattr(payload, "resume_data", None)


def _compact_call(step: Any) -> Any:
    """`step_fn`'s callable: takes `StepCall`'s keyword arguments and calls the durable step with
    the compact ones (`runtime.step_args`), so the journal holds only what varies per call."""

    def call(**kw: Any) -> Any:
        return step(**step_args(kw))

    return call


def program_for(workflow: Any, strict: bool = False) -> Program:
    """The registered program of a committed workflow (compiled once per workflow object)."""
    key = (id(workflow), strict)
    with _LOCK:
        hit = _PROGRAMS.get(key)
        if hit is not None and hit[0] is workflow:
            return hit[1]
    program = Program(compile_workflow(workflow, strict=strict))
    with _LOCK:
        _PROGRAMS[key] = (workflow, program)
    return program


async def send_resume(token: str, resume_data: Any, world: Any = None) -> None:
    """Deliver resume data to a suspended step's hook (from outside the workflow)."""
    await _maybe_await(_hook_class()(resume_data=resume_data).resume(token, world=world))


async def _maybe_await(value: Any) -> Any:
    import inspect

    if inspect.isawaitable(value):
        return await value
    return value
