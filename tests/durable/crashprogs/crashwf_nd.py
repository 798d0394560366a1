"""A workflow whose operations depend on an environment variable read at import time.

``WFBENCH_ND_VARIANT`` selects the operation sequence of ``shifting``:

- ``original`` (default): ``nd_alpha(side)``, ``nd_beta(side, "b")``, ``nd_hold(side)``
- ``reordered``: ``nd_alpha(side)``, ``nd_hold(side)``, ``nd_beta(side, "b")`` (order changed)
- ``argument``: ``nd_alpha(side)``, ``nd_beta(side, "B")``, ``nd_hold(side)`` (argument changed)
- ``kind``: ``nd_alpha(side)``, ``sleep(0)``, ``nd_beta(side, "b")``, ``nd_hold(side)`` (a sleep
  where the log has a step)

A worker importing a changed variant diverges from a log written by ``original`` at the second
operation, where the log has ``nd_beta``. Imported as the top-level module ``crashwf_nd``
(see ``crashwf``).
"""

from __future__ import annotations

import asyncio
import os

from durable import Workflows, sleep

wf = Workflows()

VARIANTS = ("original", "reordered", "argument", "kind")
VARIANT = os.environ.get("WFBENCH_ND_VARIANT", "original")
if VARIANT not in VARIANTS:
    raise ValueError(f"WFBENCH_ND_VARIANT={VARIANT!r}: use one of {', '.join(VARIANTS)}")


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@wf.step
async def nd_alpha(side: str) -> str:
    """First operation in every variant."""
    _append(side, "alpha")
    return "a"


@wf.step
async def nd_beta(side: str, tag: str) -> str:
    """Second operation of the original order."""
    _append(side, "beta")
    return tag


@wf.step
async def nd_hold(side: str) -> str:
    """Lingers ``$WFBENCH_ND_HOLD_SECONDS`` (read when it runs, default 0): the first process
    gets a long hold and is SIGKILLed inside this step; the worker gets 0."""
    _append(side, "hold")
    await asyncio.sleep(float(os.environ.get("WFBENCH_ND_HOLD_SECONDS", "0")))
    return "h"


@wf.workflow
async def shifting(side: str) -> str:
    """Operation sequence chosen by ``VARIANT`` at import time (see the module docstring)."""
    a = await nd_alpha(side)
    if VARIANT == "reordered":
        h = await nd_hold(side)
        b = await nd_beta(side, "b")
        return a + b + h
    if VARIANT == "kind":
        await sleep(0)
    b = await nd_beta(side, "B" if VARIANT == "argument" else "b")
    h = await nd_hold(side)
    return a + b + h
