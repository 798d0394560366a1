"""Temporal workers for wfbench workflows: in-process (the engine's) and standalone.

`make_worker(client, task_queue, programs)` builds a `temporalio.worker.Worker` that registers the
generated `FlowWorkflow` class of each given program, the dynamic `AnyFlowWorkflow` for every other
wfbench workflow type, and the one dynamic activity that runs every step and lifted closure.

`run_worker(address, task_queue)` is the standalone entry: it serves runs started by any client
on that task queue until it is stopped, rebuilding each run's workflow from the target reference
the run carries (`module:attr`, or a name a registered resolver knows, e.g. a scenario id). Run it
on as many machines as the Temporal cluster serves:

    python -m engines.temporal.worker --address temporal.example:7233 --task-queue wfbench
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import NondeterminismError

from engines.temporal import compiler as _compiler  # noqa: F401 - registers the program loader
from engines.temporal.dynamic import AnyFlowWorkflow
from engines.temporal.runtime import flow_activity

DEFAULT_TASK_QUEUE = "wfbench"
PASSTHROUGH = ("engines", "flow", "durable", "scenarios", "pydantic", "pydantic_core")


def sandbox_runner() -> SandboxedWorkflowRunner:
    """Temporal's sandbox, with wfbench's own packages passed through (imported once, outside)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def make_worker(client: Client, task_queue: str = DEFAULT_TASK_QUEUE,
                programs: Iterable[Any] = (), *, sticky_timeout: float = 2.0,
                max_concurrent_activities: int = 100) -> Worker:
    """A worker for `programs` (generated classes) plus every other wfbench workflow type.

    `sticky_timeout`: how long a workflow task waits for the worker that has the run cached
    before any worker takes it (short, so a dead worker's runs move on quickly).
    """
    classes: list[Any] = []
    seen: set[str] = set()
    for program in programs:
        if program.type_name not in seen:
            seen.add(program.type_name)
            classes.append(program.workflow_class)
    return Worker(client, task_queue=task_queue, workflows=[*classes, AnyFlowWorkflow],
                  activities=[flow_activity], workflow_runner=sandbox_runner(),
                  sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_timeout),
                  max_concurrent_activities=max_concurrent_activities,
                  # a run whose code no longer matches its history fails (as on the durable
                  # runtime) instead of retrying its workflow task for ever
                  workflow_failure_exception_types=[NondeterminismError])


async def run_worker(address: str, task_queue: str = DEFAULT_TASK_QUEUE, *,
                     namespace: str = "default", targets: Sequence[str] = (),
                     stop: asyncio.Event | None = None) -> None:
    """Serve wfbench runs on `task_queue` of the Temporal server at `address` until `stop` is set
    (or the task is cancelled / the process gets SIGINT or SIGTERM).

    `targets`: refs (`module:attr` or resolver names) compiled up front, so their generated
    classes are registered; any other wfbench workflow is served by the dynamic workflow.
    """
    from engines.codegen.engine import resolve_target
    from engines.temporal.compiler import program_for

    programs = [program_for(resolve_target(ref), ref) for ref in targets]
    client = await Client.connect(address, namespace=namespace)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    async with make_worker(client, task_queue, programs):
        await stop.wait()


def exit_now(code: int) -> NoReturn:
    """End a process that used a Temporal client with `code`, skipping interpreter teardown.

    temporalio's Rust bridge keeps Tokio threads that still finish work for the closed client and
    worker (cancelled polls, connection teardown) after `asyncio.run` returns; when one of them
    takes the GIL while CPython is finalizing, the process dies with "Fatal Python error:
    PyGILState_Release: thread state ... must be current when releasing / Python runtime state:
    finalizing" (SIGABRT, or SIGSEGV) instead of exiting 0 (temporalio/sdk-python#300; seen here
    in about 1 of 5 SIGTERM-ed standalone workers that had served a run). Everything of ours is
    finished by then, so flush and leave with `os._exit`."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m engines.temporal.worker --address HOST:PORT [--task-queue Q] [--target REF]...`
    Returns the exit code (0 after SIGINT/SIGTERM; the `__main__` entry ends with `exit_now`)."""
    parser = argparse.ArgumentParser(
        prog="python -m engines.temporal.worker",
        description="Serve wfbench workflows from a Temporal server (a standalone worker).")
    parser.add_argument("--address", required=True, help="Temporal frontend HOST:PORT")
    parser.add_argument("--task-queue", default=DEFAULT_TASK_QUEUE)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--target", action="append", default=[],
                        help="module:attr of a workflow to compile up front (repeatable)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run_worker(args.address, args.task_queue, namespace=args.namespace,
                               targets=args.target))
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - reported here: the process then skips teardown
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    exit_now(main())
