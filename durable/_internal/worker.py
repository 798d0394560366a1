"""Worker: takes over runs that need a process — runs whose owner died (lease expired, or its
process is gone), runs whose sleep/retry is due or that received a hook payload while nobody
held them, and runs created where no event loop was running — replays and continues each."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from durable._internal.driver import LEASE_SECONDS, Driver
from durable._internal.leases import new_owner, owner_is_dead, retire_owner
from durable._internal.registry import (
    WORKFLOWS,
    WorkflowFunction,
    register_workflow,
    resolve_workflow,
)
from durable._internal.world import RunRecord, World

log = logging.getLogger("durable")

Loader = Callable[[RunRecord], Any]


class Worker:
    """Drives due runs of a world. ``await Worker(world).run(until_idle=True)`` returns when no
    run is due and none is being driven; ``run(until_idle=False)`` runs forever.

    Finding a run's workflow: the registry (by name), else importing ``module:qualname`` stored
    on the run record, else ``loader(run_record)`` (returns the workflow function or None).
    A run whose workflow cannot be found is left alone (retried 30 s later).
    """

    def __init__(self, world: World | None = None, loader: Loader | None = None, *,
                 poll_interval: float = 0.05, lease_seconds: float = LEASE_SECONDS,
                 max_concurrent: int = 1000) -> None:
        from durable._internal.runs import get_world

        self.world = world if world is not None else get_world()
        self.loader = loader
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.max_concurrent = max_concurrent
        self._contended = 0  # due runs the last tick saw but lost to another worker's claim
        self.active: dict[str, asyncio.Task[Any]] = {}
        self.skipped: dict[str, float] = {}
        self.completed_runs = 0

    def _find(self, rec: RunRecord) -> WorkflowFunction | None:
        wf = resolve_workflow(rec.workflow_name, rec.entrypoint)
        if wf is None and self.loader is not None:
            got = self.loader(rec)
            if isinstance(got, WorkflowFunction):
                wf = got
            elif got is not None:
                wf = register_workflow(got, rec.workflow_name)
        if wf is None:
            wf = WORKFLOWS.get(rec.workflow_name)
        return wf

    def _take(self, rec: RunRecord, now: float) -> bool:
        if rec.run_id in self.active or self.skipped.get(rec.run_id, 0) > now:
            return False
        wf = self._find(rec)
        if wf is None:
            log.warning("run %s: workflow %r (%s) is not registered here and could not be "
                        "imported or loaded; leaving it", rec.run_id, rec.workflow_name,
                        rec.entrypoint)
            self.skipped[rec.run_id] = now + 30
            return False
        owner = new_owner()
        steal = rec.lease_owner if rec.lease_owner and owner_is_dead(rec.lease_owner) else None
        claimed = self.world.claim(rec.run_id, owner, self.lease_seconds, now, steal_from=steal)
        if claimed is None:
            retire_owner(owner)
            return False
        drv = Driver(self.world, claimed, wf, owner, park_idle=True,
                     lease_seconds=self.lease_seconds)
        drv.task = asyncio.get_running_loop().create_task(drv.drive())
        self.active[rec.run_id] = drv.task
        return True

    def tick(self, now: float | None = None) -> int:
        """Claim every due run not yet driven here; returns how many were taken."""
        now = time.time() if now is None else now
        room = self.max_concurrent - len(self.active)
        if room <= 0:
            return 0
        taken = 0
        self._contended = 0
        for rec in self.world.due_runs(now, limit=room):
            if self._take(rec, now):
                taken += 1
            elif rec.run_id not in self.active and self.skipped.get(rec.run_id, 0) <= now:
                self._contended += 1  # another worker claimed it first: work is still there
        return taken

    async def run(self, until_idle: bool = True) -> None:
        """Drive due runs; with until_idle=True return when nothing is due or being driven."""
        try:
            while True:
                for rid, task in list(self.active.items()):
                    if task.done():
                        del self.active[rid]
                        self.completed_runs += 1
                        if not task.cancelled() and task.exception() is not None:
                            log.error("driver for %s crashed: %r", rid, task.exception())
                taken = self.tick()
                if until_idle and not self.active and taken == 0 and not self._contended:
                    return
                if self.active:
                    await asyncio.wait(list(self.active.values()), timeout=self.poll_interval,
                                       return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(self.poll_interval)
        finally:
            for task in self.active.values():
                task.cancel()
            if self.active:
                await asyncio.gather(*self.active.values(), return_exceptions=True)
            self.active.clear()
