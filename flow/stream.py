"""`WorkflowStream`: what `run.stream()` / `run.resume_stream()` return.

An async iterator of event dicts `{"type", "run_id", "from", "payload"}` (reference 4.4):
`workflow-start`, then the engine's `workflow-step-start`, `workflow-step-result`,
`workflow-step-suspended`, `workflow-step-waiting` (and `workflow-step-output` from
`ctx.writer`), then `workflow-finish`. `await stream.result()` gives the `WorkflowResult`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from flow.results import WorkflowResult

Emit = Callable[[dict[str, Any]], None]
_END = object()


class WorkflowStream:
    """Runs the workflow when first iterated (or when `result()` is awaited)."""

    def __init__(self, run_id: str, workflow_id: str,
                 start: Callable[[Emit], Awaitable[WorkflowResult]]) -> None:
        self.run_id = run_id
        self.workflow_id = workflow_id
        self._start = start
        self._queue: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[WorkflowResult] | None = None

    def _launch(self) -> asyncio.Task[WorkflowResult]:
        if self._task is None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self._queue = queue

            async def body() -> WorkflowResult:
                try:
                    queue.put_nowait(self._event("workflow-start", {"workflow_id": self.workflow_id}))
                    result = await self._start(queue.put_nowait)
                    metadata: dict[str, Any] = {}
                    if result.status == "failed" and result.error is not None:
                        metadata = {"error": result.error, "error_message": str(result.error)}
                    queue.put_nowait(self._event("workflow-finish", {
                        "workflow_status": result.status,
                        "metadata": metadata,
                        "output": {"usage": {"input_tokens": 0, "output_tokens": 0,
                                             "total_tokens": 0}},
                    }))
                    return result
                finally:
                    queue.put_nowait(_END)

            self._task = asyncio.ensure_future(body())
        return self._task

    def _event(self, type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": type, "run_id": self.run_id, "from": "WORKFLOW", "payload": payload}

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        task = self._launch()
        queue = self._queue
        assert queue is not None
        while True:
            event = await queue.get()
            if event is _END:
                break
            yield event
        await task  # re-raise a start error (e.g. invalid input)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def result(self) -> WorkflowResult:
        """The run's result (runs it to the end if nobody iterates)."""
        return await self._launch()
