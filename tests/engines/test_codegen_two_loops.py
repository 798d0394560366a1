"""A codegen run suspended under one event loop (`asyncio.run` per call, as a script does) is
resumed from a second loop in the same process: a bad step is refused at once (no hang), a good
one finishes the run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from engines import NotResumable, get_engine
from flow import create_step, create_workflow


async def _ask(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"q": 1})
        return None
    return {"value": ctx.input_data["value"] + ctx.resume_data["add"]}


two_loops = (create_workflow(id="two_loops")
             .then(create_step("inc", lambda c: {"value": c.input_data["value"] + 1}))
             .then(create_step("ask", _ask)).commit())


def test_resume_from_a_second_event_loop(tmp_path: Path) -> None:
    world = durable.SqliteWorld(tmp_path / "runs.db")
    eng = get_engine("codegen", world=world)
    first = asyncio.run(eng.run(two_loops, input_data={"value": 1}, run_id="loops-1"))
    assert first.status == "suspended" and first.suspended == [["ask"]]

    async def resume(step: str) -> object:
        return await asyncio.wait_for(
            eng.resume(two_loops, "loops-1", step=step, resume_data={"add": 10}), 20)

    with pytest.raises(NotResumable, match='step "nosuchstep" was not suspended.*\\[ask\\]'):
        asyncio.run(resume("nosuchstep"))
    done = asyncio.run(resume("ask"))
    assert (done.status, done.result) == ("success", {"value": 12})
