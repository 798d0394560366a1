"""Child process for test_durability: one phase of a native scenario run on a SqliteWorld.

    python crash_child.py PHASE SCENARIO_ID RUN_ID OUT_JSON [RESUME_ACTION_JSON]

start: start the run and wait (the test SIGKILLs this process); resume: send one resume action
through the hook and exit; recover: run a durable Worker until idle and write the run's outcome
to OUT_JSON as {"status", "result", "error": {"name", "message"} | null}.
Environment: WFBENCH_DB (the SqliteWorld file), WFBENCH_TRACE_FILE (the shared trace).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


async def main(argv: list[str]) -> None:
    import durable
    from scenarios import get_scenario
    from scenarios.drive import native_result
    from scenarios.natives.common import resume_native

    phase, sid, run_id, out = argv[:4]
    world = durable.SqliteWorld(os.environ["WFBENCH_DB"])
    durable.set_world(world)
    s = get_scenario(sid)
    if phase == "start":
        run = durable.start_run(s.native, kwargs=s.native_kwargs(), run_id=run_id)
        await run.return_value()
    elif phase == "resume":
        arg = json.loads(argv[4])
        await resume_native(run_id, arg["step"], arg.get("resume_data"), arg.get("for_each_index"))
    elif phase == "recover":
        await durable.Worker(world).run(until_idle=True)
        res = await native_result(durable.get_run(run_id), timeout=10)
        err = None
        if res.error is not None:
            err = {"name": type(res.error).__name__, "message": str(res.error)}
        Path(out).write_text(json.dumps({"status": res.status, "result": res.result, "error": err}))
    else:
        raise SystemExit(f"unknown phase {phase!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
