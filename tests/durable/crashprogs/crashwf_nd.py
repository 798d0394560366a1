"""A workflow whose step order depends on an environment variable read at import time.

``WFBENCH_ND_VARIANT=original`` (the default): ``nd_alpha, nd_beta, nd_hold``.
``WFBENCH_ND_VARIANT=reordered``: ``nd_alpha, nd_hold, nd_beta`` — so a worker importing the
reordered module diverges from a log written by the original at position 1 (0-based; the second
operation), where the log has ``nd_beta`` and the code calls ``nd_hold``.
Imported as the top-level module ``crashwf_nd`` (see ``crashwf``).
"""

from __future__ import annotations

import asyncio
import os

from durable import Workflows

wf = Workflows()

VARIANT = os.environ.get("WFBENCH_ND_VARIANT", "original")
if VARIANT not in ("original", "reordered"):
    raise ValueError(f"WFBENCH_ND_VARIANT={VARIANT!r}: use 'original' or 'reordered'")


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@wf.step
async def nd_alpha(side: str) -> str:
    """First step in both variants."""
    _append(side, "alpha")
    return "a"


@wf.step
async def nd_beta(side: str) -> str:
    """Second step of the original order, third of the reordered one."""
    _append(side, "beta")
    return "b"


@wf.step
async def nd_hold(side: str) -> str:
    """Lingers ``$WFBENCH_ND_HOLD_SECONDS`` (read when it runs, default 0): the first process
    gets a long hold and is SIGKILLed inside this step; the worker gets 0."""
    _append(side, "hold")
    await asyncio.sleep(float(os.environ.get("WFBENCH_ND_HOLD_SECONDS", "0")))
    return "h"


@wf.workflow
async def shifting(side: str) -> str:
    """Step order chosen by ``VARIANT`` at import time."""
    a = await nd_alpha(side)
    if VARIANT == "original":
        b = await nd_beta(side)
        h = await nd_hold(side)
    else:
        h = await nd_hold(side)
        b = await nd_beta(side)
    return a + b + h
