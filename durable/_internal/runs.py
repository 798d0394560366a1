"""Runs: the process's default world, starting runs, and the Run handle."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Generator
from typing import Any

from durable._internal.context import current_body
from durable._internal.driver import DRIVER_ERRORS, LEASE_SECONDS, LOCAL_DRIVERS, Driver
from durable._internal.errors import (
    RunNotFoundError,
    WorkflowRunCancelledError,
    WorkflowRunFailedError,
)
from durable._internal.leases import new_owner
from durable._internal.registry import WORKFLOWS, WorkflowFunction, ensure_loop
from durable._internal.serialization import encode, error_from_dict
from durable._internal.world import TERMINAL, RunRecord, World, peek_run

_WORLD: World | None = None
_BACKGROUND: set[asyncio.Task[Any]] = set()


def set_world(world: World | None) -> None:
    """Set the process's default world (None: back to the lazily created SqliteWorld)."""
    global _WORLD
    if world is not None and not isinstance(world, World):
        raise TypeError(f"set_world expects a World (MemoryWorld, SqliteWorld, ...), got {world!r}")
    _WORLD = world


def get_world() -> World:
    """The process's default world; a SqliteWorld ($WFBENCH_DB or .wfbench/runs.db) unless
    `set_world` chose another."""
    global _WORLD
    if _WORLD is None:
        from durable._internal.sqlite_world import SqliteWorld

        _WORLD = SqliteWorld()
    return _WORLD


def _resolve(workflow: Any) -> WorkflowFunction:
    if isinstance(workflow, WorkflowFunction):
        return workflow
    if isinstance(workflow, str):
        wf = WORKFLOWS.get(workflow)
        if wf is None:
            raise LookupError(f"no workflow registered under the name {workflow!r}")
        return wf
    raise TypeError(
        f"start() expects a @wf.workflow function (or a registered workflow name), got {workflow!r}"
    )


def spawn_driver(driver: Driver) -> asyncio.Task[Any]:
    # known as this process's driver of the run at once (before its task first runs), so
    # `Run.suspended_here` / `Run.wait_suspended` right after `start_run` find it
    LOCAL_DRIVERS[driver.run_id] = driver
    task = asyncio.get_running_loop().create_task(driver.drive())
    driver.task = task
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


def start_run(
    workflow: Any,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    attributes: dict[str, Any] | None = None,
    world: World | None = None,
) -> Run:
    """Create a run of `workflow` and start driving it in this process (when an event loop is
    running; otherwise it stays pending for a Worker). Returns the Run at once; the Run is also
    awaitable (``await start_run(...)`` gives the same Run)."""
    if current_body() is not None:
        raise RuntimeError("start() cannot be called inside a workflow body: call it from a step")
    wf = _resolve(workflow)
    w = world if world is not None else get_world()
    try:
        inp = {"args": json.loads(encode(list(args))), "kwargs": json.loads(encode(dict(kwargs or {})))}
    except TypeError as exc:
        raise TypeError(f"input of workflow {wf.name!r}: {exc}") from None
    if attributes is not None and not isinstance(attributes, dict):
        raise TypeError(f"attributes must be a JSON dict, got {attributes!r}")
    try:
        attrs = json.loads(encode(attributes or {}))
    except TypeError as exc:
        raise TypeError(f"attributes: {exc}") from None
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    now = time.time()
    rid = run_id or f"wrun_{int(now * 1000):012x}{uuid.uuid4().hex[:14]}"
    loop = ensure_loop()
    owner = new_owner() if loop is not None else None
    rec = RunRecord(run_id=rid, workflow_name=wf.name, entrypoint=wf.entrypoint, status="pending",
                    input=inp, attributes=attrs, created_at=now, updated_at=now, next_due_at=now)
    w.create_run(rec, owner, LEASE_SECONDS)
    if owner is not None:
        rec.lease_owner = owner
        spawn_driver(Driver(w, rec, wf, owner, park_idle=False))
    return Run(rid, w)


def start(workflow: Any, *args: Any, **kwargs: Any) -> Run:
    """Start `workflow(*args, **kwargs)` as a durable run on the default world; returns the Run
    at once (``await start(...)`` works too: a Run is awaitable and gives itself)."""
    return start_run(workflow, args, kwargs)


class Run:
    """A handle on one run (cheap; holds only the id and the world)."""

    def __init__(self, run_id: str, world: World | None = None) -> None:
        self.run_id = run_id
        self.world = world if world is not None else get_world()

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    def __await__(self) -> Generator[Any, None, Run]:
        if False:  # pragma: no cover - makes this a generator
            yield None
        return self

    def record(self) -> RunRecord:
        """The run's record in the world (raises RunNotFoundError)."""
        return self.world.get_run(self.run_id)

    async def status(self) -> str:
        """"pending" | "running" | "completed" | "failed" | "cancelled"."""
        return self.world.get_run(self.run_id).status

    @property
    def workflow_name(self) -> str:
        """The run's workflow name."""
        return self.record().workflow_name

    async def wait(self, timeout: float | None = None, *, output: bool = True) -> RunRecord:
        """Wait until the run is terminal and return its record (TimeoutError after `timeout`).
        ``output=False``: the record's ``output`` is left None (not read nor decoded: for a
        caller that needs only the status, error or cancel reason of a run with a large
        output)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = 0.005
        while True:
            rec = peek_run(self.world, self.run_id)  # polls do not read the output
            if rec.status in TERMINAL:
                if output and rec.status == "completed":
                    return self.world.get_run(self.run_id)
                return rec
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"run {self.run_id} is still {rec.status} after {timeout} s")
            drv = LOCAL_DRIVERS.get(self.run_id)
            if drv is None and self.run_id in DRIVER_ERRORS:
                # this process's driver stopped on an error and nobody else holds the run
                raise DRIVER_ERRORS[self.run_id]
            if drv is not None and drv.world is self.world and not drv.done.is_set():
                waiter = asyncio.get_running_loop().create_task(drv.done.wait())
                try:
                    await asyncio.wait({waiter}, timeout=0.5 if remaining is None
                                       else min(0.5, remaining))
                finally:
                    waiter.cancel()
            else:
                await asyncio.sleep(poll if remaining is None else min(poll, remaining))
                poll = min(poll * 1.5, 0.25)

    def _local_driver(self) -> Driver | None:
        drv = LOCAL_DRIVERS.get(self.run_id)
        if drv is None or drv.world is not self.world or drv.done.is_set():
            return None
        return drv

    def suspended_here(self) -> bool | None:
        """Whether the run's body waits only on hooks (nothing in flight, no sleep or retry
        timer, no payload queued), as told by the driver of the run in this process: True or
        False; None when no driver in this process holds the run (it is driven elsewhere,
        parked or ended: ask the world instead)."""
        drv = self._local_driver()
        return None if drv is None else drv.idle

    async def wait_suspended(self) -> bool:
        """Wait, without polling, until the run's driver in this process reports that the body
        waits only on hooks (True), or until that driver stops — the run ended, was parked or
        was lost (False). False at once when no driver in this process holds the run."""
        drv = self._local_driver()
        if drv is None:
            return False
        return await drv.wait_idle()

    async def return_value(self, timeout: float | None = None) -> Any:
        """Wait for the run to end; return its output, raise WorkflowRunFailedError (`.cause` is
        the error) or WorkflowRunCancelledError; TimeoutError after `timeout` seconds."""
        rec = await self.wait(timeout)
        if rec.status == "completed":
            return rec.output
        if rec.status == "failed":
            raise WorkflowRunFailedError(self.run_id, error_from_dict(rec.error or {}))
        raise WorkflowRunCancelledError(self.run_id, rec.cancel_reason)

    async def terminate(self, reason: str | None = None) -> None:
        """Cancel the run (from any process): it ends `cancelled` at its next suspension point;
        an in-flight step finishes; hooks are disposed. No error if it has already ended."""
        if reason is not None:
            reason = str(reason)[:512]
        self.world.cancel_run(self.run_id, reason, time.time())
        drv = LOCAL_DRIVERS.get(self.run_id)
        if drv is not None and drv.world is self.world:
            drv.wake()

    cancel = terminate


def get_run(run_id: str, world: World | None = None) -> Run:
    """A Run handle for an existing run id (raises RunNotFoundError for an unknown id)."""
    w = world if world is not None else get_world()
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a string, got {run_id!r}")
    try:
        w.get_run(run_id)
    except RunNotFoundError:
        raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in {w!r}") from None
    return Run(run_id, w)
