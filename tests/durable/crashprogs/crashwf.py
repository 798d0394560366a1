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

from durable import BaseHook, RetryableError, Workflows, get_step_metadata, sleep

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
    # the last step lingers longer so a test can kill the process while it is in flight
    await asyncio.sleep(STEP_SECONDS if i < 19 else 1.0)
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


@wf.step(max_retries=5)
async def flaky(side: str) -> str:
    """Record the attempt number; ask for a retry 2 s later until the third attempt."""
    attempt = get_step_metadata().attempt
    append_line(side, f"attempt {attempt}")
    if attempt < 3:
        raise RetryableError(f"not yet (attempt {attempt})", retry_after=2)
    return f"ok on attempt {attempt}"


@wf.workflow
async def retrying(side: str) -> str:
    """One step that succeeds on its third attempt."""
    return await flaky(side)


@wf.step
async def fan_leaf(side: str, i: int) -> int:
    """Leaf ``i`` of a fan-out: records begin/end around a ``0.2 + 0.4 * i`` s pause."""
    append_line(side, f"begin {i}")
    await asyncio.sleep(0.2 + 0.4 * i)
    append_line(side, f"end {i}")
    return i * i


@wf.workflow
async def fan5(side: str) -> int:
    """Five leaves called together (asyncio.gather); returns 0 + 1 + 4 + 9 + 16."""
    results = await asyncio.gather(*(fan_leaf(side, i) for i in range(5)))
    return sum(results)
