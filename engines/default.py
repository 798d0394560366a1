"""The `default` engine: flow's own graph interpreter (Mastra's DefaultExecutionEngine).

Not durable: a run lives in the process (or in a flow snapshot store between suspend and resume);
asked to recover a run whose process died it raises `flow.NotRecoverableError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import Engine, flow_resume_check, flow_workflow_of


class DefaultEngine(Engine):
    """Runs a committed flow workflow with `flow`'s interpreter.

    Options: `store=` a `flow.SnapshotStore`, or `db=` a path for a `flow.SqliteSnapshotStore`.
    """

    name = "default"

    def __init__(self, store: Any = None, db: str | Path | None = None) -> None:
        if store is None and db is not None:
            from flow import SqliteSnapshotStore

            store = SqliteSnapshotStore(db)
        self.store = store
        self._active: dict[str, Any] = {}

    def workflow(self, target: Any) -> Any:
        """The flow workflow this engine runs for `target` (raises `BadTarget`/`Unsupported`)."""
        return flow_workflow_of(target, self.name)

    def check(self, target: Any) -> None:
        self.workflow(target)

    async def run(self, target: Any, input_data: Any = None, run_id: str | None = None,
                  initial_state: dict[str, Any] | None = None,
                  request_context: Any = None, **options: Any) -> Any:
        wf = self.workflow(target)
        run = wf.create_run(run_id=run_id, store=self.store)
        self._active[run.run_id] = run
        try:
            return await run.start(input_data=input_data, initial_state=initial_state,
                                   request_context=request_context)
        finally:
            self._active.pop(run.run_id, None)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     label: str | None = None, for_each_index: int | None = None,
                     **options: Any) -> Any:
        wf = self.workflow(target)
        run = wf.create_run(run_id=run_id, store=self.store)
        flow_resume_check(run, wf, run_id, self.store, step if label is None else None, self.name)
        self._active[run.run_id] = run
        try:
            return await run.resume(step=step, resume_data=resume_data, label=label,
                                    for_each_index=for_each_index)
        finally:
            self._active.pop(run.run_id, None)

    async def cancel(self, target: Any, run_id: str) -> None:
        """Cancel a run (flow's `run.cancel()`): the current step finishes, nothing after it
        runs, a sleep wakes up; a suspended run becomes canceled."""
        run = self._active.get(run_id)
        if run is None:
            run = self.workflow(target).create_run(run_id=run_id, store=self.store)
        await run.cancel()

    async def recover(self, target: Any, run_id: str) -> Any:
        """A run left running by a dead process: the default engine cannot recover it; this
        raises `flow.NotRecoverableError` saying so (or `flow.FlowError` for an unknown run)."""
        wf = self.workflow(target)
        run = wf.create_run(run_id=run_id, store=self.store)
        run.restart()
