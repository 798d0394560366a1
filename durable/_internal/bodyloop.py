"""BodyLoop: the private event loop a workflow body runs on.

The driver pumps it synchronously ("run until idle": every ready callback, in FIFO order) after
each delivered result, so the interleaving of the body's coroutines is a function of the order
of deliveries alone — identical live and on replay. Timers are refused (use durable.sleep).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from durable._internal.errors import WorkflowSandboxError


def _refuse_timer() -> WorkflowSandboxError:
    return WorkflowSandboxError(
        "asyncio timers (asyncio.sleep(>0), wait_for/timeout, call_later) are not allowed inside "
        "a workflow body (rule: time in workflows is durable): use `await durable.sleep(...)`, "
        "or put it in a step"
    )


class _Handle:
    """A ready callback (what asyncio.Handle is, minus debug support: one is made per
    wake-up of the body, so it is kept small)."""

    __slots__ = ("_callback", "_args", "_context", "_cancelled", "_loop")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...], loop: BodyLoop,
                 context: contextvars.Context | None) -> None:
        self._callback = callback
        self._args = args
        self._context = context if context is not None else contextvars.copy_context()
        self._cancelled = False
        self._loop = loop

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def get_context(self) -> contextvars.Context:
        return self._context

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {"message": f"Exception in callback {self._callback!r}", "exception": exc,
                 "handle": self})


class BodyLoop(asyncio.AbstractEventLoop):
    """A minimal event loop with only a ready queue; see module docstring."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._ready: collections.deque[_Handle] = collections.deque()
        self._clock = clock
        self._closed = False
        self.errors: list[dict[str, Any]] = []

    # scheduling
    def call_soon(self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.Handle:  # type: ignore[override]
        h = _Handle(callback, args, self, context)
        self._ready.append(h)
        return h  # type: ignore[return-value]

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:  # type: ignore[override]
        raise _refuse_timer()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:  # type: ignore[override]
        raise _refuse_timer()

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.Handle:  # type: ignore[override]
        raise WorkflowSandboxError(
            "threads are not allowed inside a workflow body (rule: no threads in workflows): "
            "put it in a step"
        )

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:  # type: ignore[override]
        raise WorkflowSandboxError(
            "run_in_executor/to_thread is not allowed inside a workflow body (rule: no threads in "
            "workflows): put it in a step"
        )

    def time(self) -> float:
        return self._clock()

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any], *,
                    name: str | None = None, context: contextvars.Context | None = None
                    ) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    # state
    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def get_exception_handler(self) -> None:
        return None

    def set_exception_handler(self, handler: Any) -> None:
        pass

    def run_until_idle(self) -> int:
        """Run ready callbacks until none are left; returns how many ran."""
        n = 0
        ready = self._ready
        pop = ready.popleft
        while ready:
            h = pop()
            n += 1
            if h._cancelled:
                continue
            try:  # (_Handle._run, inlined: one per wake-up of the body)
                h._context.run(h._callback, *h._args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.call_exception_handler(
                    {"message": f"Exception in callback {h._callback!r}", "exception": exc,
                     "handle": h})
        return n
