"""Drive a scenario's `actions` script against a run (see `scenarios.base` for the action forms).

- `drive(scenario, start=..., resume=..., cancel=...)`: engine-agnostic. `start()` returns the
  result of running until the run stops (finished or suspended); `resume(step=, resume_data=,
  for_each_index=, label=)` the result after a resume; `cancel()` cancels. Timed actions
  (`cancel_after`, resume with `at`) run concurrently with `start`; the others run in order
  after it. The outcome's result is the one of the call that finished last.
- `drive_flow(scenario, workflow=None)`: the above with a `flow` run (the default interpreter
  unless the workflow was built with another execution engine).
- `drive_engine(scenario, engine, run_id=None)`: the above through an `engines` Engine
  (`run`/`resume`/`cancel`), recording the trace in memory; native engines get the native
  calling convention and hook tokens.
- `drive_native(scenario, world=None)`: runs `scenario.native` on `durable` in this process
  (e.g. on a MemoryWorld); resumes go to hooks (`scenarios.natives.common.resume_native`), and
  the result is a `NativeResult` with the flow status words.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from scenarios.base import Scenario, hook_token
from scenarios.check import check_checkpoint, error_parts
from scenarios.trace import Trace, recording


@dataclass
class Outcome:
    """What driving a scenario gave: the final result, differences found on the way (failed
    ("expect", ...) checkpoints, actions that raised), the run id, and (from `drive_engine`) the
    trace recorded in memory while driving."""

    result: Any
    diffs: list[str] = field(default_factory=list)
    run_id: str | None = None
    trace: Trace | None = None


def _resume_kwargs(arg: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"step": arg["step"], "resume_data": arg.get("resume_data")}
    if arg.get("for_each_index") is not None:
        kw["for_each_index"] = arg["for_each_index"]
    if arg.get("label") is not None:
        kw["label"] = arg["label"]
    return kw


async def drive(
    scenario: Scenario,
    *,
    start: Callable[[], Awaitable[Any]],
    resume: Callable[..., Awaitable[Any]],
    cancel: Callable[[], Awaitable[Any]],
    native: bool = False,
) -> Outcome:
    """Run `start` and the scenario's actions; see the module docstring."""
    out = Outcome(result=None)
    finished: list[tuple[int, Any]] = []
    counter = 0

    def done(r: Any) -> Any:
        nonlocal counter
        counter += 1
        finished.append((counter, r))
        return r

    async def later(delay: float, what: str, call: Callable[[], Awaitable[Any]], keep: bool) -> None:
        await asyncio.sleep(delay)
        try:
            r = await call()
        except Exception as e:  # an action the engine refused: a difference, not a crash
            name, msg = error_parts(e)
            out.diffs.append(f"action {what} raised {name}: {msg}")
            return
        if keep:
            done(r)

    timed: list[asyncio.Task[None]] = []
    start_task = asyncio.ensure_future(start())
    for a in scenario.actions:
        kind, arg = a
        if kind == "cancel_after":
            timed.append(asyncio.ensure_future(later(float(arg), f"cancel_after({arg})", cancel, False)))
        elif kind == "resume" and arg.get("at") is not None:
            kw = _resume_kwargs(arg)
            timed.append(asyncio.ensure_future(
                later(float(arg["at"]), f"resume({kw['step']!r}, at={arg['at']})",
                      functools.partial(resume, **kw), True)))
    try:
        last = done(await start_task)
    except BaseException:
        for t in timed:
            t.cancel()
        raise
    for i, (kind, arg) in enumerate(scenario.actions):
        if kind == "resume" and arg.get("at") is None:
            last = done(await resume(**_resume_kwargs(arg)))
        elif kind == "expect" and not native:  # native runs expose no suspended state
            out.diffs.extend(check_checkpoint(arg, last, f"checkpoint (action {i})", native=native))
    if timed:
        await asyncio.gather(*timed)
    out.result = max(finished, key=lambda p: p[0])[1]
    out.run_id = getattr(out.result, "run_id", None)
    return out


async def drive_flow(scenario: Scenario, workflow: Any = None) -> Outcome:
    """Drive the Mastra-syntax definition (or `workflow`) with a fresh `flow` run."""
    wf = workflow if workflow is not None else scenario.workflow
    if wf is None:
        raise ValueError(f"scenario {scenario.id!r} has no Mastra-syntax definition: {scenario.workflow_reason}")
    run = wf.create_run()

    async def start() -> Any:
        return await run.start(
            input_data=scenario.fresh_input(),
            initial_state=dict(scenario.initial_state) if scenario.initial_state is not None else None,
            request_context=dict(scenario.request_context) if scenario.request_context is not None else None,
        )

    out = await drive(scenario, start=start, resume=run.resume, cancel=run.cancel)
    out.run_id = out.run_id or getattr(run, "run_id", None)
    return out


@dataclass
class NativeResult:
    """A native run's outcome in flow's words (status success|failed|canceled|suspended|...)."""

    status: str
    result: Any = None
    error: Any = None
    run_id: str | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    suspended: Any = None
    state: Any = None


_RUN_STATUS = {"completed": "success", "failed": "failed", "cancelled": "canceled"}


async def native_result(run: Any, timeout: float) -> NativeResult:
    """Wait for a durable run and express its outcome as a `NativeResult`."""
    try:
        value = await run.return_value(timeout=timeout)
    except Exception as e:
        status = await run.status()
        err: Any = e
        while getattr(err, "cause", None) is not None and err.__class__.__name__.startswith("WorkflowRun"):
            err = err.cause
        return NativeResult(_RUN_STATUS.get(status, status), None, err, run.run_id)
    return NativeResult("success", value, None, run.run_id)


async def drive_native(scenario: Scenario, world: Any = None, *, timeout: float = 60.0) -> Outcome:
    """Start `scenario.native` on durable (in this process) and drive the actions through hooks."""
    import durable
    from scenarios.natives.common import resume_native

    fn = scenario.native
    if fn is None:
        raise ValueError(f"scenario {scenario.id!r} has no native definition: {scenario.native_reason}")
    if world is not None:
        durable.set_world(world)
    run = await durable.start(fn, **scenario.native_kwargs())
    handle: dict[str, Any] = {}

    async def start() -> Any:
        handle["run"] = run
        if not any(k == "resume" for k, _ in scenario.actions):
            return await native_result(run, timeout)
        return None

    async def resume(step: Any, resume_data: Any = None, for_each_index: int | None = None,
                     label: str | None = None) -> Any:
        await resume_native(run.run_id, step, resume_data, for_each_index)
        return None

    async def cancel() -> Any:
        return await run.cancel()

    out = await drive(scenario, start=start, resume=resume, cancel=cancel, native=True)
    if out.result is None:
        out.result = await native_result(run, timeout)
    out.run_id = run.run_id
    return out


async def drive_engine(
    scenario: Scenario,
    engine: Any,
    *,
    run_id: str | None = None,
    native: bool | None = None,
    record: bool = True,
    **options: Any,
) -> Outcome:
    """Drive `scenario` through an `engines` Engine and record its trace in memory.

    - start: `engine.run(scenario, input_data=..., run_id=..., initial_state=..., request_context=...)`,
      or for the native engine `engine.run(scenario, run_id=..., kwargs=scenario.native_kwargs())`;
    - resume: `engine.resume(scenario, run_id, step=..., resume_data=..., [for_each_index=, label=])`,
      for the native engine `step=hook_token(run_id, step, for_each_index)` and
      `resume_data={"data": resume_data}` (the `ResumeHook` payload), retried while the hook
      does not exist yet (HookNotFoundError, up to 10 s);
    - cancel: `engine.cancel(scenario, run_id)`.
    `native` defaults to `engine.name == "native"`. The run id is chosen here when not given
    (timed actions need it before `run` returns). With `record=False` the caller records.
    """
    import uuid

    is_native = getattr(engine, "name", "") == "native" if native is None else native
    rid = run_id or str(uuid.uuid4())

    async def start() -> Any:
        if is_native:
            return await engine.run(scenario, run_id=rid, kwargs=scenario.native_kwargs(), **options)
        return await engine.run(
            scenario, input_data=scenario.fresh_input(), run_id=rid,
            initial_state=dict(scenario.initial_state) if scenario.initial_state is not None else None,
            request_context=dict(scenario.request_context) if scenario.request_context is not None else None,
            **options,
        )

    async def resume(step: Any, resume_data: Any = None, for_each_index: int | None = None,
                     label: str | None = None) -> Any:
        arg = {"step": step, "resume_data": resume_data, "for_each_index": for_each_index, "label": label}
        return await engine_resume(engine, scenario, rid, arg, native=is_native)

    async def cancel() -> Any:
        return await engine.cancel(scenario, rid)

    if not record:
        out = await drive(scenario, start=start, resume=resume, cancel=cancel, native=is_native)
    else:
        with recording() as rec:
            out = await drive(scenario, start=start, resume=resume, cancel=cancel, native=is_native)
            out.trace = rec.trace()
    out.run_id = rid
    return out


async def engine_resume(engine: Any, scenario: Scenario, run_id: str, arg: dict[str, Any], *,
                        native: bool, hook_timeout: float = 10.0) -> Any:
    """Send one resume action's argument (`{"step", "resume_data", "for_each_index"?, "label"?}`,
    `at` ignored) through `engine.resume`, translated for native engines: the step (path) and
    index become the hook token `hook_token(run_id, step, for_each_index)` and the data the
    `ResumeHook` payload `{"data": resume_data}`; retried while the hook does not exist yet
    (HookNotFoundError) for up to `hook_timeout` seconds. Used by `drive_engine`; the harness's
    resume-from-another-process phase can call it too."""
    step, resume_data = arg["step"], arg.get("resume_data")
    if native:
        token = hook_token(run_id, step, arg.get("for_each_index"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hook_timeout
        while True:
            try:
                return await engine.resume(scenario, run_id, step=token, resume_data={"data": resume_data})
            except Exception as e:
                if type(e).__name__ != "HookNotFoundError" or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.01)
    kw: dict[str, Any] = {}
    if arg.get("for_each_index") is not None:
        kw["for_each_index"] = arg["for_each_index"]
    if arg.get("label") is not None:
        kw["label"] = arg["label"]
    return await engine.resume(scenario, run_id, step=step, resume_data=resume_data, **kw)
