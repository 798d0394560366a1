"""durable: a Workflow-style durable runtime (journaled steps, replay for recovery, sleeps, hooks).

Imports nothing else of wfbench. Public API (all defined in `durable.api`)::

    from durable import Workflows, sleep, start, FatalError, RetryableError, BaseHook

    wf = Workflows()

    @wf.step(max_retries=3)
    async def charge(customer_id: str) -> str: ...

    @wf.workflow
    async def renew(customer_id: str) -> str:
        await sleep("1h")
        return await charge(customer_id)

    run = await start(renew, "cus_1")
    await run.return_value()

Execution model: while a process holds a run, the body keeps running and each step costs about
one world commit; replay (re-running the body against the log, checked call by call) happens
only when another process takes the run over — a `Worker` after a crash, a due sleep or retry,
or a hook payload for a run nobody holds. Steps are at-least-once: a step in flight at a crash
runs again; `get_step_metadata().step_id` is its idempotency key. Worlds: `MemoryWorld`,
`SqliteWorld` (one file, WAL; shared by processes through leases).
"""

from durable.api import (
    BaseHook,
    Event,
    FatalError,
    HookConflictError,
    HookNotFoundError,
    HookRecord,
    HookWait,
    MemoryWorld,
    NondeterminismError,
    RetryableError,
    Run,
    RunNotFoundError,
    RunRecord,
    SqliteWorld,
    StepFunction,
    StepInfo,
    StepMetadata,
    StepRecord,
    WaitRecord,
    Worker,
    WorkflowFunction,
    WorkflowMetadata,
    WorkflowNotRegisteredError,
    WorkflowRunCancelledError,
    WorkflowRunFailedError,
    Workflows,
    WorkflowSandboxError,
    World,
    WorldCorruptError,
    WorldError,
    WorldWriteError,
    call_step,
    get_hook_by_token,
    get_run,
    get_step_info,
    get_step_metadata,
    get_workflow_metadata,
    get_world,
    last_steps,
    now,
    random,
    register_error,
    resume_hook,
    set_world,
    sleep,
    start,
    start_run,
    uuid4,
)

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
