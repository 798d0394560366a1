"""Workflows run by the durable crash-recovery subprocess tests.

Imported as the top-level module ``crashwf`` (the tests put ``tests/durable/crashprogs`` on
PYTHONPATH of every child process), so the workflow names stored on a run record
(``crashwf:<qualname>``) resolve identically in the process that started a run and in the worker
process that recovers it. Steps write to a side-effect file given as an argument so the test can
count how often each step body really ran.
"""

from __future__ import annotations

import asyncio
import time

import pydantic

from durable import BaseHook, Workflows, sleep

wf = Workflows()

#: How long each chain step lingers after recording itself, so a SIGKILL lands inside a step.
STEP_SECONDS = 0.15


def append_line(path: str, line: str) -> None:
    """Append one line to the side-effect file (closed at once, so a SIGKILL cannot lose it)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@wf.step
async def chain_step(side: str, i: int, acc: int) -> int:
    """Record ``step-<i>`` in the side-effect file, linger, return ``acc + i``."""
    append_line(side, f"step-{i:02d}")
    await asyncio.sleep(STEP_SECONDS)
    return acc + i


@wf.workflow
async def chain20(side: str) -> int:
    """Twenty sequential steps; returns 0 + 1 + ... + 19."""
    acc = 0
    for i in range(20):
        acc = await chain_step(side, i, acc)
    return acc


@wf.step
async def stamp(side: str, label: str) -> float:
    """Record ``<label> <wall-clock time>`` in the side-effect file and return the time."""
    t = time.time()
    append_line(side, f"{label} {t!r}")
    return t


@wf.workflow
async def nap3(side: str) -> str:
    """Stamp, durable ``sleep(3)``, stamp again."""
    await stamp(side, "before")
    await sleep(3)
    await stamp(side, "after")
    return "rested"


class Approval(BaseHook, pydantic.BaseModel):
    """Hook payload for the cross-process hook test."""

    ok: bool
    who: str


@wf.step
async def finish(side: str, who: str, ok: bool) -> str:
    """Record that the post-hook step ran and build the run's result."""
    append_line(side, f"finish {who}")
    return f"{who}:{ok}"


@wf.workflow
async def approval_flow(side: str, token: str) -> str:
    """Wait on an ``Approval`` hook with the given token, then run one step with its payload."""
    approval = await Approval.wait(token=token)
    return await finish(side, approval.who, approval.ok)
