"""A workflow for the two-process snapshot test: run as `python suspend_proc.py start|resume DB RUN_ID`.

`start` runs until `approve` suspends and exits; `resume` (a new process) resumes by run id from the
SQLite snapshot and prints the result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from pydantic import BaseModel

from flow import SqliteSnapshotStore, StepContext, create_step, create_workflow


class Approval(BaseModel):
    approved: bool
    by: str = "nobody"


def prepare(ctx: StepContext) -> dict[str, Any]:
    ctx.request_context.set("tenant", "acme")
    return {"amount": ctx.input_data["amount"] * 2}


async def approve(ctx: StepContext) -> dict[str, Any]:
    if ctx.resume_data is None:
        await ctx.suspend({"ask": f"approve {ctx.input_data['amount']}?"})
        return {}
    return {"amount": ctx.input_data["amount"], "approved": ctx.resume_data["approved"],
            "by": ctx.resume_data["by"], "tenant": ctx.request_context.get("tenant")}


def build() -> Any:
    return (create_workflow(id="approval")
            .then(create_step(id="prepare", execute=prepare))
            .map(lambda ctx: ctx.input_data)
            .then(create_step(id="approve", execute=approve, resume_schema=Approval))
            .then(create_step(id="finish", execute=lambda ctx: {**ctx.input_data, "done": True}))
            .commit())


async def main(mode: str, db: str, run_id: str) -> None:
    wf = build()
    run = wf.create_run(run_id=run_id, store=SqliteSnapshotStore(db))
    if mode == "start":
        res = await run.start(input_data={"amount": 21})
    else:
        res = await run.resume(step="approve", resume_data={"approved": True})
    print(json.dumps(res.to_dict()))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
