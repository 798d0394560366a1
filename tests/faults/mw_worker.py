"""Test helper: one worker process for the multi-worker tests.

    python -m tests.faults.mw_worker DB READY_FILE GO_FILE LEASE_SECONDS MAX_CONCURRENT MODE

Writes READY_FILE once imported, waits for GO_FILE, then runs `durable.Worker` on the SQLite
database DB with the given lease and concurrency; MODE `idle` returns when nothing is due,
`forever` keeps polling (the test terminates it). Prints how many runs it drove.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import durable
import tests.faults.mw_flows  # noqa: F401 - registers the workflow


def main(argv: list[str]) -> int:
    db, ready, go, lease, conc, mode = argv
    world = durable.SqliteWorld(db)
    durable.set_world(world)
    Path(ready).write_text(str(os.getpid()))
    while not Path(go).exists():
        time.sleep(0.005)
    worker = durable.Worker(world, lease_seconds=float(lease), max_concurrent=int(conc),
                            poll_interval=0.02)
    asyncio.run(worker.run(until_idle=mode == "idle"))
    print(f"drove {worker.completed_runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
