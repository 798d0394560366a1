"""Child process for the SIGKILL tests (run as a script, not collected by pytest).

    crash_runner.py codegen DB RUN_ID    start five_steps on the codegen engine (SqliteWorld DB)
    crash_runner.py default DB RUN_ID    start five_steps on the default engine (SqliteSnapshotStore DB)
    crash_runner.py suspend DB RUN_ID    run suspend_resume on codegen until it suspends, then exit
    crash_runner.py worker DB            a durable Worker with the codegen loader, until idle
"""

from __future__ import annotations

import asyncio
import sys


async def main(argv: list[str]) -> None:
    import engine_workflows as W

    import durable
    from engines import get_engine
    from engines.codegen.engine import loader

    mode, db = argv[0], argv[1]
    if mode == "codegen":
        world = durable.SqliteWorld(db)
        await get_engine("codegen", world=world).run(
            W.five_steps, input_data={"value": 0}, run_id=argv[2],
            target_ref="engine_workflows:five_steps")
    elif mode == "default":
        await get_engine("default", db=db).run(W.five_steps, input_data={"value": 0}, run_id=argv[2])
    elif mode == "suspend":
        world = durable.SqliteWorld(db)
        result = await get_engine("codegen", world=world).run(
            W.suspend_resume, input_data={"value": 3}, run_id=argv[2],
            target_ref="engine_workflows:suspend_resume")
        print(result.status, result.suspended, flush=True)
    elif mode == "worker":
        world = durable.SqliteWorld(db)
        await durable.Worker(world, loader=loader).run(until_idle=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
