"""Bench floors: what a workload costs with no engine at all, measured in the same run.

Owns `FLOORS` and `run_floor`: `plain` (the same step bodies as plain async calls, in the same
shape) and `sqlite-normal` / `sqlite-full` (the same, plus one SQLite commit per step — stdlib
`sqlite3`, WAL, `synchronous=NORMAL` or `FULL`, `BEGIN; INSERT <run, seq, JSON output>; COMMIT`).
The suspend round trip commits twice (the suspension, then the result).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from harness.bench.workloads import (
    FOREACH_CONCURRENCY,
    RESUME_VALUE,
    Workload,
    bump,
    flow_input,
    plain_run,
)

FLOORS: tuple[str, ...] = ("plain", "sqlite-normal", "sqlite-full")
SYNC_MODES = {"sqlite-normal": "NORMAL", "sqlite-full": "FULL"}


class CommitLog:
    """One SQLite file in WAL mode; `commit(run, seq, value)` is one committed transaction."""

    def __init__(self, path: str | Path, synchronous: str) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, seq INTEGER "
                          "NOT NULL, output TEXT, PRIMARY KEY (run_id, seq))")
        self.commits = 0

    def commit(self, run_id: str, seq: int, value: Any) -> None:
        c = self.conn
        c.execute("BEGIN")
        c.execute("INSERT INTO steps (run_id, seq, output) VALUES (?, ?, ?)",
                  (run_id, seq, json.dumps(value)))
        c.execute("COMMIT")
        self.commits += 1

    def close(self) -> None:
        self.conn.close()


async def sqlite_run(w: Workload, log: CommitLog) -> Any:
    """The workload's step bodies with one commit per step (same shapes as `plain_run`)."""
    run_id = uuid.uuid4().hex
    seq = 0

    async def step(value: dict[str, Any]) -> dict[str, Any]:
        nonlocal seq
        out = await bump(value)
        seq += 1
        log.commit(run_id, seq, out)
        return out

    n = w.size
    if w.kind == "chain":
        value: dict[str, Any] = {"value": 0}
        for _ in range(n):
            value = await step(value)
        return value
    if w.kind == "fanout":
        start = {"value": 0}
        outs = await asyncio.gather(*(step(start) for _ in range(n)))
        return {f"s{i}": out for i, out in enumerate(outs)}
    if w.kind == "foreach":
        items = flow_input(w)
        res: list[Any] = []
        for s in range(0, n, FOREACH_CONCURRENCY):
            res.extend(await asyncio.gather(*(step(x) for x in items[s:s + FOREACH_CONCURRENCY])))
        return res
    if w.kind == "dountil":
        value = {"value": 0}
        while True:
            value = await step(value)
            if value["value"] >= n:
                return value
    if w.kind == "suspend":
        seq += 1
        log.commit(run_id, seq, {"suspended": "ask"})
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, {"value": RESUME_VALUE})
        answer = await fut
        seq += 1
        log.commit(run_id, seq, answer)
        return {"value": answer["value"]}
    raise ValueError(f"workload {w.name} has no floor")


class Floor:
    """A floor column bound to a fresh database (for the sqlite floors) in `workdir`."""

    def __init__(self, name: str, workdir: Path) -> None:
        if name not in FLOORS:
            raise ValueError(f"unknown floor {name!r}; choose one of {', '.join(FLOORS)}")
        self.name = name
        self.log = CommitLog(workdir / f"{name}.db", SYNC_MODES[name]) if name in SYNC_MODES else None

    async def run(self, w: Workload) -> Any:
        if self.log is None:
            return await plain_run(w)
        return await sqlite_run(w, self.log)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def floor_applies(w: Workload) -> bool:
    """Floors exist for every workload except codegen compile time."""
    return w.kind != "compile"
