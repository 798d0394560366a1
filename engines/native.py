"""The `native` engine: a hand-written `@wf.workflow` function run on the `durable` runtime.

`run(target, input_data=...)` starts the workflow with `input_data` as its one positional
argument (or `args=` / `kwargs=` given explicitly) and maps the run onto a `flow.WorkflowResult`:
status (completed -> success, failed -> failed, cancelled -> canceled, waiting only on hooks ->
suspended), result (the return value), error, and per-step records from the run's step records,
keyed by step name (the function name of `module:qualname`; a step called several times keeps
its last call, as a Mastra record does). A step record's payload is its one argument (or its
kwargs, or `{"args", "kwargs"}`). `resume(target, run_id, step=token, resume_data=payload)`
sends the payload to the run's live hook (`step` = its token; optional when there is one hook).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from engines.base import (
    Engine,
    NotResumable,
    RunNotFound,
    native_workflow_of,
    where_runs_are,
    world_for_db,
)
from flow.results import StepResult, WorkflowResult

POLL_SECONDS = 0.02  # a run driven elsewhere: how often the world is asked if it is suspended
_STEP_STATUS = {"completed": "success", "failed": "failed", "running": "running",
                "pending": "running"}


def step_key(step_name: str) -> str:
    """`pkg.mod:Outer.add_one` -> `add_one` (names without ':' are kept whole)."""
    if ":" not in step_name:
        return step_name
    return step_name.rsplit(":", 1)[1].rsplit(".", 1)[-1]


def _payload(inp: Any) -> Any:
    if not isinstance(inp, dict):
        return inp
    args, kwargs = inp.get("args") or [], inp.get("kwargs") or {}
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args:
        return kwargs
    return {"args": args, "kwargs": kwargs}


def _error(err: Any) -> BaseException | None:
    """An error record of the world as an exception of its class (durable's rebuild rule; a
    class that cannot be found comes back as a `RestoredError` subclass with its name)."""
    if not err:
        return None
    from engines.codegen.errors import restore_error

    return restore_error(err)


class NativeEngine(Engine):
    """Runs durable workflow functions. Options: `world=` (default: durable's current world),
    `db=` (a SQLite file: its `durable.SqliteWorld`)."""

    name = "native"

    def __init__(self, world: Any = None, db: str | os.PathLike[str] | None = None) -> None:
        self._world = world if world is not None or db is None else world_for_db(db)
        self.polls = 0  # world polls made to tell a suspended run (runs driven elsewhere)

    @property
    def world(self) -> Any:
        if self._world is not None:
            return self._world
        import durable

        return durable.get_world()

    def check(self, target: Any) -> None:
        native_workflow_of(target)

    async def run(self, target: Any, input_data: Any = None, run_id: str | None = None,
                  args: tuple[Any, ...] | list[Any] | None = None,
                  kwargs: dict[str, Any] | None = None, **options: Any) -> WorkflowResult:
        import durable

        fn = native_workflow_of(target)
        call_args = tuple(args) if args is not None else (() if input_data is None and kwargs
                                                          else (input_data,))
        handle = durable.start_run(fn, args=call_args, kwargs=kwargs, run_id=run_id,
                                   attributes={"engine": "native"}, world=self._world)
        return await self._wait(handle, input_data)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     **options: Any) -> WorkflowResult:
        import durable

        native_workflow_of(target)
        try:
            rec = self.world.get_run(run_id)
        except durable.RunNotFoundError:
            raise RunNotFound(run_id, where_runs_are(self.world), self.name) from None
        if rec.status in ("completed", "failed", "cancelled"):
            status = {"completed": "success", "cancelled": "canceled"}.get(rec.status, rec.status)
            raise NotResumable.finished(run_id, status, step, self.name)
        hooks = self.world.list_hooks(run_id)
        if step is None:
            if len(hooks) != 1:
                raise NotResumable(f"run {run_id!r} has {len(hooks)} live hooks "
                                   f"({', '.join(h.token for h in hooks) or 'none'}); pass "
                                   "step=<token>", run_id=run_id, status="running", step=None,
                                   engine=self.name)
            token = hooks[0].token
        else:
            token = str(step)
        durable.resume_hook(token, resume_data, world=self._world)
        handle = durable.get_run(run_id, world=self._world)
        # a Worker takes the run over when no live process holds it (else it does nothing)
        task = asyncio.ensure_future(durable.Worker(self.world).run(until_idle=True))
        try:
            return await self._wait(handle, None, resumed=True)
        finally:
            await task

    async def cancel(self, target: Any, run_id: str) -> None:
        """Terminate the run (it ends `cancelled` at its next suspension point)."""
        import durable

        await durable.get_run(run_id, world=self._world).terminate("canceled")

    async def recover(self, target: Any, run_id: str) -> WorkflowResult:
        """Drive a run whose process died to its end (or its next suspension), here."""
        import durable

        native_workflow_of(target)
        task = asyncio.ensure_future(durable.Worker(self.world).run(until_idle=True))
        try:
            return await self._wait(durable.get_run(run_id, world=self._world), None)
        finally:
            await task

    async def _wait(self, handle: Any, input_data: Any, resumed: bool = False) -> WorkflowResult:
        """Until the run ends or is suspended (its body waits only on hooks). While the run is
        driven in this process its driver says when that happens (no polling); otherwise the
        world is polled and 3 quiet polls in a row (20 ms apart) count as suspended."""
        done = asyncio.ensure_future(handle.wait())
        try:
            quiet = 0
            while not done.done():
                here = handle.suspended_here()
                if here is True:
                    return self._result(handle.run_id, "suspended")
                if here is False:  # driven here: wait for the driver's word, or the end
                    idle = asyncio.ensure_future(handle.wait_suspended())
                    try:
                        await asyncio.wait({done, idle}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        idle.cancel()
                    quiet = 0
                    continue
                await asyncio.wait({done}, timeout=POLL_SECONDS)
                if done.done() or handle.suspended_here() is not None:
                    continue
                # waiting only on hooks (nothing running, nothing sleeping, no payload queued)
                self.polls += 1
                if self._suspended(handle.run_id):
                    quiet += 1
                    if quiet >= 3:
                        return self._result(handle.run_id, "suspended")
                else:
                    quiet = 0
            rec = done.result()
        finally:
            if not done.done():
                done.cancel()
        status = {"completed": "success", "failed": "failed", "cancelled": "canceled"}[rec.status]
        return self._result(handle.run_id, status, rec)

    def _suspended(self, run_id: str) -> bool:
        w = self.world
        if not w.list_hooks(run_id) or w.read_inbox(run_id):
            return False
        if any(s.status in ("running", "pending") for s in w.list_steps(run_id)):
            return False
        return not any(x.status == "waiting" for x in w.list_waits(run_id))

    def _result(self, run_id: str, status: str, rec: Any = None) -> WorkflowResult:
        import durable

        w = self.world
        rec = rec or w.get_run(run_id)
        steps: dict[str, StepResult] = {}
        # the last call of each step key, in order of first call (a chain of N calls of one
        # step reads one step's events on SqliteWorld, not the whole log)
        for s in durable.last_steps(w, run_id, step_key):
            steps[step_key(s.step_name)] = StepResult(
                status=_STEP_STATUS.get(s.status, s.status),  # type: ignore[arg-type]
                output=s.output if s.status == "completed" else None,
                payload=_payload(s.input), error=_error(s.error),
                started_at=s.started_at, ended_at=s.completed_at)
        return WorkflowResult(
            status=status,  # type: ignore[arg-type]
            result=rec.output if status == "success" else None,
            error=_error(rec.error) if status == "failed" else None,
            steps=steps, input=_payload(rec.input),
            suspended=[[h.token] for h in w.list_hooks(run_id)] if status == "suspended" else [],
            run_id=run_id)
