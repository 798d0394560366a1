"""Shared pieces of the hand-written native (`durable`) definitions.

- `wf`: the one `durable.Workflows` registry all native scenario workflows and steps use.
  Workflows and steps take keyword-only arguments (works with positional-or-keyword runtimes too).
- `ResumeHook`: the hook type that stands in for Mastra's suspend/resume: the payload carries
  the resume data. A native body waits with `await wait_resume("step")`; the harness resumes with
  `await resume_native(run_id, "step", resume_data)` (token = `scenarios.base.hook_token`).
- Generic traced steps reused by several natives.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from durable import BaseHook, HookNotFoundError, Workflows, get_workflow_metadata
from scenarios.base import hook_token
from scenarios.trace import span

wf = Workflows()


@dataclass
class ResumeHook(BaseHook):
    """The payload of a resume sent to a native definition."""

    data: dict[str, Any] = field(default_factory=dict)


async def wait_resume(step: str | list[str], for_each_index: int | None = None) -> dict[str, Any]:
    """Inside a native workflow body: wait for the resume of Mastra step (path) `step`."""
    run_id = get_workflow_metadata().run_id
    payload = await ResumeHook.wait(token=hook_token(run_id, step, for_each_index))
    return dict(payload.data or {})


async def resume_native(
    run_id: str,
    step: str | list[str],
    resume_data: dict[str, Any] | None = None,
    for_each_index: int | None = None,
    *,
    timeout: float = 10.0,
) -> None:
    """Outside the workflow: deliver `resume_data` to the hook of `step`, waiting (polling)
    until the run has created that hook, at most `timeout` seconds."""
    token = hook_token(run_id, step, for_each_index)
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ResumeHook(data=dict(resume_data or {})).resume(token)
            return
        except HookNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


@wf.step
async def traced_value(*, name: str, value: Any, delay: float = 0.0) -> Any:
    """A step that records span `name`, sleeps `delay` seconds and returns `value`."""
    with span(name):
        if delay:
            await asyncio.sleep(delay)
        return value
