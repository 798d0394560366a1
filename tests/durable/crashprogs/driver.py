"""Command-line driver run as a child process by the durable crash-recovery tests.

Usage (``tests/durable/crashprogs`` must be on PYTHONPATH so ``crashwf`` imports by name)::

    python driver.py start DB MODULE:FUNC ARGS_JSON
        [--hold | --hook-exit TOKEN | --hook-hold TOKEN | --exit-after SECONDS]
    python driver.py worker DB [--forever]
    python driver.py resume DB TOKEN WHO
    python driver.py terminate DB RUN_ID REASON

Every command prints JSON lines on stdout (flushed at once) so the parent can follow it.

- ``start`` prints ``{"run_id": ...}`` once ``durable.start`` returned, then:
  ``--hold``: waits for the run (the parent SIGKILLs it; prints ``{"ended": "completed" |
  "cancelled"}`` if the run ends first); ``--hook-exit``: waits until the hook with TOKEN
  exists, prints ``{"hooked": TOKEN}`` and exits normally; ``--hook-hold``: the same, then
  waits to be killed; ``--exit-after``: exits normally after SECONDS, printing
  ``{"exiting": <time>}`` first (the run is left to a worker).
- ``worker`` runs ``durable.Worker(SqliteWorld(DB)).run(until_idle=True)`` and prints
  wall-clock start/end times; with ``--forever`` it prints ``{"worker_started": <time>}`` and
  runs ``run(until_idle=False)`` until killed.
- ``resume`` resumes an ``Approval`` hook by token and exits at once.
- ``terminate`` calls ``durable.get_run(RUN_ID).terminate(reason=REASON)`` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from typing import Any

import durable


def emit(**fields: Any) -> None:
    """Print one JSON line and flush it so the parent sees it before any SIGKILL."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def make_world(db: str) -> durable.SqliteWorld:
    """The world every child process uses: SqliteWorld on the test's database file."""
    return durable.SqliteWorld(db)


def load(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


async def wait_for_hook(token: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            durable.get_hook_by_token(token)
            return
        except durable.HookNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def cmd_start(args: argparse.Namespace) -> None:
    durable.set_world(make_world(args.db))
    workflow = load(args.target)
    run = await durable.start(workflow, *json.loads(args.args_json))
    emit(run_id=run.run_id)
    if args.hook_exit:
        await wait_for_hook(args.hook_exit)
        emit(hooked=args.hook_exit)
        return
    if args.exit_after is not None:
        await asyncio.sleep(args.exit_after)
        emit(exiting=time.time())
        return
    if args.hook_hold:
        await wait_for_hook(args.hook_hold)
        emit(hooked=args.hook_hold)
    try:
        await run.return_value()
    except durable.WorkflowRunCancelledError:
        emit(ended="cancelled")
        return
    emit(ended="completed")


async def cmd_worker(args: argparse.Namespace) -> None:
    started = time.time()
    worker = durable.Worker(make_world(args.db))
    if args.forever:
        emit(worker_started=started)
    await worker.run(until_idle=not args.forever)
    emit(started=started, done=time.time())


async def cmd_terminate(args: argparse.Namespace) -> None:
    durable.set_world(make_world(args.db))
    await durable.get_run(args.run_id).terminate(reason=args.reason)
    emit(terminated=args.run_id)


async def cmd_resume(args: argparse.Namespace) -> None:
    import crashwf

    durable.set_world(make_world(args.db))
    await crashwf.Approval(ok=True, who=args.who).resume(args.token)
    emit(resumed=args.token)


def main() -> None:
    parser = argparse.ArgumentParser(prog="driver")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("db")
    p.add_argument("target")
    p.add_argument("args_json")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--hold", action="store_true")
    mode.add_argument("--hook-exit", metavar="TOKEN")
    mode.add_argument("--hook-hold", metavar="TOKEN")
    mode.add_argument("--exit-after", metavar="SECONDS", type=float)
    p = sub.add_parser("worker")
    p.add_argument("db")
    p.add_argument("--forever", action="store_true")
    p = sub.add_parser("resume")
    p.add_argument("db")
    p.add_argument("token")
    p.add_argument("who")
    p = sub.add_parser("terminate")
    p.add_argument("db")
    p.add_argument("run_id")
    p.add_argument("reason")
    args = parser.parse_args()
    handlers = {"start": cmd_start, "worker": cmd_worker, "resume": cmd_resume,
                "terminate": cmd_terminate}
    handler = handlers[args.cmd]
    asyncio.run(handler(args))


if __name__ == "__main__":
    main()
