"""The public API of `durable` (re-exported by the package; see its docstring).

Names and meanings follow the official Python SDK of the Workflow runtime (`vercel.workflow`),
so a workflow module written for one runs on the other by changing one import.
"""

from __future__ import annotations

import random as _random_mod
import time
import uuid as _uuid_mod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from durable._internal.callstep import call_step
from durable._internal.context import (
    CURRENT_STEP,
    CURRENT_STEP_WORKFLOW,
    StepInfo,
    StepMetadata,
    WorkflowMetadata,
    current_body,
)
from durable._internal.durations import parse_seconds, to_timestamp
from durable._internal.errors import (
    FatalError,
    HookConflictError,
    HookNotFoundError,
    NondeterminismError,
    RetryableError,
    RunNotFoundError,
    WorkflowNotRegisteredError,
    WorkflowRunCancelledError,
    WorkflowRunFailedError,
    WorkflowSandboxError,
    WorldCorruptError,
    WorldError,
    WorldWriteError,
)
from durable._internal.hooks import BaseHook, HookWait, resume_hook
from durable._internal.memory_world import MemoryWorld
from durable._internal.registry import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DELAY,
    StepFunction,
    WorkflowFunction,
    default_name,
)
from durable._internal.registry import register_step as _register_step
from durable._internal.registry import register_workflow as _register_workflow
from durable._internal.runs import Run, get_run, get_world, set_world, start, start_run
from durable._internal.serialization import register_error
from durable._internal.sqlite_world import SqliteWorld
from durable._internal.worker import Worker
from durable._internal.world import (
    Event,
    HookRecord,
    RunRecord,
    StepRecord,
    WaitRecord,
    World,
    last_steps,
)

F = TypeVar("F", bound=Callable[..., Any])


class Workflows:
    """A registry of workflows and steps. Names default to ``module:qualname`` of the function
    (prefixed ``<namespace>/`` when `namespace` is set); all registries share one process-wide
    name table (the last registration of a name wins)."""

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace
        self.steps: dict[str, StepFunction] = {}
        self.workflows: dict[str, WorkflowFunction] = {}

    @overload
    def workflow(self, fn: F, /) -> WorkflowFunction: ...

    @overload
    def workflow(self, fn: None = None, /, *, name: str | None = None
                 ) -> Callable[[F], WorkflowFunction]: ...

    def workflow(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        """Decorator: register an async function as a workflow (``@wf.workflow`` or
        ``@wf.workflow(name="x")``). Raises TypeError for a non-async function."""
        def deco(f: Any) -> WorkflowFunction:
            return self.register_workflow(f, name=name)
        return deco(fn) if fn is not None else deco

    @overload
    def step(self, fn: F, /) -> StepFunction: ...

    @overload
    def step(self, fn: None = None, /, *, max_retries: int = DEFAULT_MAX_RETRIES,
             name: str | None = None, retry_delay: float = DEFAULT_RETRY_DELAY
             ) -> Callable[[F], StepFunction]: ...

    def step(self, fn: Any = None, /, *, max_retries: int = DEFAULT_MAX_RETRIES,
             name: str | None = None, retry_delay: float = DEFAULT_RETRY_DELAY) -> Any:
        """Decorator: register an async function as a step (``@wf.step``,
        ``@wf.step(max_retries=N)``: up to N+1 attempts, default 3; `retry_delay` seconds
        between attempts after a plain exception, default 1 s as in the reference).
        Raises TypeError for a non-async function."""
        def deco(f: Any) -> StepFunction:
            return self.register_step(f, name=name, max_retries=max_retries,
                                      retry_delay=retry_delay)
        return deco(fn) if fn is not None else deco

    def register_step(self, fn: Callable[..., Awaitable[Any]], name: str | None = None, *,
                      max_retries: int = DEFAULT_MAX_RETRIES,
                      retry_delay: float = DEFAULT_RETRY_DELAY) -> StepFunction:
        """Register a (possibly dynamically created) async function as a step under `name`
        (default ``module:qualname``); returns the step function to call."""
        target = fn.fn if isinstance(fn, StepFunction) else fn
        sf = _register_step(target, name or default_name(target, self.namespace), max_retries,
                            retry_delay)
        self.steps[sf.name] = sf
        return sf

    def register_workflow(self, fn: Callable[..., Awaitable[Any]], name: str | None = None
                          ) -> WorkflowFunction:
        """Register a (possibly dynamically created) async function as a workflow under `name`
        (default ``module:qualname``)."""
        target = fn.fn if isinstance(fn, WorkflowFunction) else fn
        wf = _register_workflow(target, name or default_name(target, self.namespace))
        self.workflows[wf.name] = wf
        return wf


def sleep(duration: float | int | str | timedelta | datetime) -> Awaitable[None]:
    """Durable sleep: seconds, a string ("500ms", "10s", "5m", "1h", "1d"), a timedelta, or a
    datetime to sleep until. In a workflow body it is journaled (wait_created/wait_completed)
    and survives crashes (a recovered sleep waits only for the remainder); elsewhere it is
    asyncio.sleep."""
    body = current_body()
    if body is not None:
        return body.sleep(duration)
    if isinstance(duration, datetime):
        secs = max(0.0, to_timestamp(duration) - time.time())
    else:
        secs = parse_seconds(duration, "sleep duration")
    import asyncio

    return asyncio.sleep(secs)


def now() -> datetime:
    """The current time (UTC). In a workflow body: the run's deterministic logical clock."""
    body = current_body()
    if body is not None:
        return datetime.fromtimestamp(body.clock, UTC)
    return datetime.now(UTC)


def random() -> float:
    """A random float in [0, 1). In a workflow body: from the run's seeded PRNG (replay-safe)."""
    body = current_body()
    if body is not None:
        return body.rng.random()
    return _random_mod.random()


def uuid4() -> _uuid_mod.UUID:
    """A version-4 UUID. In a workflow body: from the run's seeded PRNG (replay-safe)."""
    body = current_body()
    if body is not None:
        return body.uuid4()
    return _uuid_mod.uuid4()


def get_step_metadata() -> StepMetadata:
    """Inside a step run by the runtime: StepMetadata(run_id, step_id, step_name, attempt,
    step_started_at, workflow_name). Raises RuntimeError elsewhere."""
    meta = CURRENT_STEP.get()
    if meta is None:
        raise RuntimeError(
            "get_step_metadata() can only be called inside a step run by the durable runtime "
            "(a step called inside a workflow, or via durable.call_step)"
        )
    return meta if isinstance(meta, StepMetadata) else meta.get()


def get_step_info() -> StepInfo:
    """`get_step_metadata()` without building the record (no datetime): an object with the
    plain fields ``run_id``, ``step_id``, ``step_name``, ``attempt``, ``workflow_name``. For
    code that runs on every step and needs only those. Raises RuntimeError outside a step."""
    meta = CURRENT_STEP.get()
    if meta is None:
        raise RuntimeError(
            "get_step_info() can only be called inside a step run by the durable runtime "
            "(a step called inside a workflow, or via durable.call_step)"
        )
    return meta


def get_workflow_metadata() -> WorkflowMetadata:
    """Inside a workflow body or one of its steps: WorkflowMetadata(run_id, workflow_name,
    started_at, attributes). Raises RuntimeError elsewhere."""
    body = current_body()
    if body is not None:
        return body.wf_meta
    meta = CURRENT_STEP_WORKFLOW.get()
    if meta is None:
        raise RuntimeError(
            "get_workflow_metadata() can only be called inside a workflow body or one of its steps"
        )
    return meta


def get_hook_by_token(token: str, *, world: World | None = None) -> HookRecord:
    """The live hook with `token` (run_id, correlation_id, token, metadata, created_at).
    Raises HookNotFoundError when no live hook has it. Works with or without ``await``."""
    w = world if world is not None else get_world()
    rec = w.get_hook_by_token(token)
    if rec is None:
        raise HookNotFoundError(f"no live hook with token {token!r}")
    return rec


__all__ = [
    "BaseHook", "Event", "FatalError", "HookConflictError", "HookNotFoundError", "HookRecord",
    "HookWait", "MemoryWorld", "NondeterminismError", "RetryableError", "Run", "RunNotFoundError",
    "RunRecord", "SqliteWorld", "StepFunction", "StepInfo", "StepMetadata", "StepRecord", "WaitRecord",
    "Worker", "WorkflowFunction", "WorkflowMetadata", "WorkflowNotRegisteredError",
    "WorkflowRunCancelledError", "WorkflowRunFailedError", "WorkflowSandboxError", "Workflows",
    "World", "WorldCorruptError", "WorldError", "WorldWriteError", "call_step", "get_hook_by_token", "get_run",
    "get_step_info", "get_step_metadata", "get_workflow_metadata", "get_world", "last_steps", "now", "random", "register_error",
    "resume_hook", "set_world", "sleep", "start", "start_run", "uuid4",
]
