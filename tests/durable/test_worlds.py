"""Worlds: SqliteWorld file handling and errors, persistence, leases, the shared contract."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import durable
from durable import MemoryWorld, SqliteWorld
from durable._internal.world import Batch, NewEvent, RunRecord


def _run(rid: str) -> RunRecord:
    now = time.time()
    return RunRecord(run_id=rid, workflow_name="w", entrypoint="m:w", status="pending",
                     input={"args": [], "kwargs": {}}, created_at=now, updated_at=now,
                     next_due_at=now)


def test_not_sqlite_file(tmp_path: Path) -> None:
    bad = tmp_path / "runs.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(durable.WorldCorruptError, match="not a SQLite database or is corrupt"):
        SqliteWorld(bad)
    assert bad.read_bytes().startswith(b"this is not")  # nothing lost


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(durable.WorldCorruptError, match="not a wfbench runs database"):
        SqliteWorld(other)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(durable.WorldCorruptError, match="directory"):
        SqliteWorld(tmp_path)


def test_default_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WFBENCH_DB", str(tmp_path / "env.db"))
    w = SqliteWorld()
    assert w.path == tmp_path / "env.db" and w.path.exists()
    w.close()
    monkeypatch.delenv("WFBENCH_DB")
    monkeypatch.chdir(tmp_path)
    w = SqliteWorld()
    assert w.path == Path(".wfbench/runs.db") and (tmp_path / ".wfbench" / "runs.db").exists()
    w.close()
    con = sqlite3.connect(tmp_path / "env.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "events", "waits", "hooks", "inbox", "meta"} <= tables


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_world_contract(kind: str, tmp_path: Path) -> None:
    w: durable.World = MemoryWorld() if kind == "memory" else SqliteWorld(tmp_path / "c.db")
    w.create_run(_run("r1"), None, 10)
    with pytest.raises(ValueError, match="already exists"):
        w.create_run(_run("r1"), None, 10)
    with pytest.raises(durable.RunNotFoundError, match="'nope'"):
        w.get_run("nope")
    now = time.time()
    assert [r.run_id for r in w.due_runs(now + 1)] == ["r1"]
    got = w.claim("r1", "me:1:a", 10, now)
    assert got is not None and got.lease_owner == "me:1:a"
    assert w.claim("r1", "you:2:b", 10, now) is None  # leased
    assert w.due_runs(now + 1) == []
    assert w.claim("r1", "you:2:b", 10, now + 11) is not None  # lease expired
    with pytest.raises(durable._internal.errors.LeaseLostError):
        w.commit("r1", "me:1:a", Batch(events=[NewEvent("x", None, {}, now)]), 10)
    b = Batch(events=[NewEvent("step_created", "step_1", {"a": [1, "é"]}, now)],
              run_update={"status": "running"})
    assert w.commit("r1", "you:2:b", b, 10).status == "running"
    evs = w.list_events("r1")
    assert [e.type for e in evs] == ["run_created", "step_created"]
    assert evs[1].data == {"a": [1, "é"]} and evs[1].correlation_id == "step_1"
    assert [e.type for e in w.list_events("r1", after_seq=evs[0].seq)] == ["step_created"]
    assert w.cancel_run("r1", "stop", now) is True
    assert w.cancel_run("r1", "stop", now) is False
    assert w.get_run("r1").status == "cancelled"
    assert w.stats["writes"] >= 5 and w.stats["events_read"] == 3
    w.close()


async def test_sqlite_persists_across_instances(tmp_path: Path) -> None:
    wf = durable.Workflows()

    @wf.step(name="persist.s")
    async def s(x: int) -> int:
        return x * 3

    @wf.workflow(name="persist.w")
    async def w_(x: int) -> int:
        return await s(x)

    path = tmp_path / "p.db"
    w1 = SqliteWorld(path)
    run = durable.start_run(w_, args=(4,), world=w1)
    assert await run.return_value(timeout=10) == 12
    w1.close()
    w2 = SqliteWorld(path)
    assert durable.get_run(run.run_id, world=w2) is not None
    rec = w2.get_run(run.run_id)
    assert rec.status == "completed" and rec.output == 12
    assert [s.output for s in w2.list_steps(run.run_id)] == [12]
    w2.close()
