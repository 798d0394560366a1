"""Child process for durability rows on an engine (codegen): one phase of a scenario run on a
SqliteWorld, through the engines interface.

    python engine_child.py PHASE ENGINE SCENARIO_ID RUN_ID OUT_JSON [RESUME_ACTION_JSON]

start: drive the scenario (the test SIGKILLs this process); resume: send one resume action and
exit; recover: `engine.recover(scenario, run_id)` and write the result's `to_dict()` to OUT_JSON.
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
    from engines import get_engine
    from engines.codegen import register_target_resolver
    from scenarios import all_scenarios, get_scenario
    from scenarios.drive import drive_engine, engine_resume

    phase, engine_name, sid, run_id, out = argv[:5]
    world = durable.SqliteWorld(os.environ["WFBENCH_DB"])
    durable.set_world(world)
    ids = {s.id for s in all_scenarios()}
    register_target_resolver(lambda ref: get_scenario(ref) if ref in ids else None)
    engine = get_engine(engine_name, world=world)
    s = get_scenario(sid)
    if phase == "start":
        await drive_engine(s, engine, run_id=run_id, record=False, target_ref=s.id)
    elif phase == "resume":
        await engine_resume(engine, s, run_id, json.loads(argv[5]), native=engine_name == "native")
    elif phase == "recover":
        result = await asyncio.wait_for(engine.recover(s, run_id), 60)
        Path(out).write_text(json.dumps(result.to_dict(), default=repr))
    else:
        raise SystemExit(f"unknown phase {phase!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
