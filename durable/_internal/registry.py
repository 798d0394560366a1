"""The registry: step and workflow function objects, their names, and the process-wide
name -> function tables used by the driver and the Worker."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from durable._internal.context import CURRENT_BODY

_CURRENT_BODY_GET = CURRENT_BODY.get

DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY = 1.0  # seconds between attempts of a failing step (the reference: 1 s)

STEPS: dict[str, StepFunction] = {}
WORKFLOWS: dict[str, WorkflowFunction] = {}


def default_name(fn: Callable[..., Any], namespace: str | None) -> str:
    base = f"{fn.__module__}:{fn.__qualname__}"
    return f"{namespace}/{base}" if namespace else base


def check_async(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"@{what} expects an async function, got {fn!r}")
    target = fn.func if isinstance(fn, functools.partial) else fn
    if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004
    )):
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"{what} {name!r} is not async: define it with `async def` "
            f"(durable {what}s must be coroutine functions)"
        )


class StepFunction:
    """A registered step. Called inside a workflow body it is journaled (retries, durable
    result); called anywhere else it is the plain async function."""

    def __init__(self, fn: Callable[..., Any], name: str, max_retries: int,
                 retry_delay: float) -> None:
        check_async(fn, "step")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if retry_delay < 0:
            raise ValueError(f"retry_delay must be >= 0 seconds, got {retry_delay!r}")
        self.fn = fn
        self.name = name
        self.max_retries = max_retries
        self.retry_delay = float(retry_delay)
        try:
            functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        except AttributeError:
            pass

    def __repr__(self) -> str:
        return f"<durable step {self.name!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        body = _CURRENT_BODY_GET()
        if body is None:
            return self.fn(*args, **kwargs)
        return body.call_step(self, args, kwargs)


class WorkflowFunction:
    """A registered workflow. Start it with `durable.start(wf, ...)`; calling it directly runs
    the body as a plain coroutine (no journal)."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        check_async(fn, "workflow")
        self.fn = fn
        self.name = name
        self.entrypoint = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}"
        try:
            functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        except AttributeError:
            pass

    def __repr__(self) -> str:
        return f"<durable workflow {self.name!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def register_step(fn: Callable[..., Any], name: str, max_retries: int = DEFAULT_MAX_RETRIES,
                  retry_delay: float = DEFAULT_RETRY_DELAY) -> StepFunction:
    if isinstance(fn, StepFunction):
        fn = fn.fn
    sf = StepFunction(fn, name, max_retries, retry_delay)
    STEPS[name] = sf
    return sf


def register_workflow(fn: Callable[..., Any], name: str) -> WorkflowFunction:
    if isinstance(fn, WorkflowFunction):
        fn = fn.fn
    wf = WorkflowFunction(fn, name)
    WORKFLOWS[name] = wf
    return wf


def resolve_workflow(name: str, entrypoint: str) -> WorkflowFunction | None:
    """Find a workflow by registered name, else by importing ``module:qualname``."""
    wf = WORKFLOWS.get(name)
    if wf is not None:
        return wf
    module, _, qualname = entrypoint.partition(":")
    if module and module != "__main__":
        try:
            mod = importlib.import_module(module)
        except Exception:
            mod = None
        wf = WORKFLOWS.get(name)
        if wf is not None:
            return wf
        if mod is not None:
            obj: Any = mod
            try:
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except AttributeError:
                obj = None
            if isinstance(obj, WorkflowFunction):
                return obj
    return None


def ensure_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
