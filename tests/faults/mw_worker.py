"""Test helper: one worker process for the multi-worker tests.

    python -m tests.faults.mw_worker DB READY_FILE GO_FILE LEASE_SECONDS MAX_CONCURRENT MODE

Writes READY_FILE once imported, waits for GO_FILE, then runs `durable.Worker` on the SQLite
database DB with the given lease and concurrency; MODE `idle` returns when nothing is due,
`forever` keeps polling (the test terminates it). Prints how many runs it drove.

SIGUSR1 freezes the worker at its next world write (the whole process stalls there, as in a
long GC pause or a network partition, but never inside a SQLite transaction, which would lock
the database for everyone: SIGSTOP can land there); SIGUSR2 thaws it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import durable
import tests.faults.mw_flows  # noqa: F401 - registers the workflow

FROZEN = threading.Event()
WRITES = ("create_run", "commit", "claim", "release", "cancel_run", "send_hook_payload")


def _gate(fn: Callable[..., object]) -> Callable[..., object]:
    def gated(*args: object, **kwargs: object) -> object:
        while FROZEN.is_set():
            time.sleep(0.01)  # blocks the event loop: the whole worker stalls here
        return fn(*args, **kwargs)
    return gated


def freezable(world: durable.SqliteWorld) -> None:
    for name in WRITES:
        setattr(world, name, _gate(getattr(world, name)))
    signal.signal(signal.SIGUSR1, lambda *_: FROZEN.set())
    signal.signal(signal.SIGUSR2, lambda *_: FROZEN.clear())


def main(argv: list[str]) -> int:
    db, ready, go, lease, conc, mode = argv
    world = durable.SqliteWorld(db)
    freezable(world)
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
