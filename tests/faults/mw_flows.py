"""Test helper for the multi-worker tests: a 3-step durable workflow whose steps append one
JSON line per execution (run, correlation id, attempt, step, pid) to the side-effect file named
by $MW_SIDE_FILE. Imported by the worker processes as `tests.faults.mw_flows`."""

from __future__ import annotations

import asyncio
import json
import os

from durable import Workflows, get_step_metadata

wf = Workflows()
STEP_DELAY = float(os.environ.get("MW_STEP_DELAY", "0.005"))


def _side_effect(step: str) -> None:
    meta = get_step_metadata()
    line = json.dumps({"run": meta.run_id, "cid": meta.step_id, "attempt": meta.attempt,
                       "step": step, "pid": os.getpid()}) + "\n"
    fd = os.open(os.environ["MW_SIDE_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@wf.step
async def add_one(n: int) -> int:
    _side_effect("add_one")
    await asyncio.sleep(STEP_DELAY)
    return n + 1


@wf.step
async def double(n: int) -> int:
    _side_effect("double")
    await asyncio.sleep(STEP_DELAY)
    return n * 2


@wf.step
async def add_three(n: int) -> int:
    _side_effect("add_three")
    await asyncio.sleep(STEP_DELAY)
    return n + 3


@wf.workflow
async def job(n: int) -> int:
    """(n + 1) * 2 + 3, one step per operation."""
    return await add_three(await double(await add_one(n)))
