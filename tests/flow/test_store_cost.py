"""The SQLite snapshot store's cost per write, counted (never timed): a step record write is one
SQL statement of a size that does not grow with the run, the run row and the graph are written
O(1) times per run; what a reader of the store sees after every write is the same as with the
in-memory store; a file of the first layout is upgraded in place and stays readable."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import flow
from flow import (
    MemorySnapshotStore,
    SqliteSnapshotStore,
    StepContext,
    StepResult,
    create_step,
    create_workflow,
)
from flow.storage import record_json


def _chain(n: int, wid: str = "chain") -> flow.Workflow:
    wf = create_workflow(id=wid)
    for i in range(n):
        wf.then(create_step(id=f"s{i}", execute=lambda ctx: {"v": ctx.input_data["v"] + 1}))
    return wf.commit()


class Traced:
    """The SQL statements (parameters bound) a store's connection executes while `on`."""

    def __init__(self, store: SqliteSnapshotStore) -> None:
        self.on = False
        self.statements: list[str] = []
        store._conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if self.on:
            self.statements.append(sql)


async def _traced_run(tmp_path: Path, n: int) -> tuple[SqliteSnapshotStore, list[str]]:
    store = SqliteSnapshotStore(tmp_path / f"chain{n}.db")
    wf = _chain(n)
    run = wf.create_run(run_id=f"r{n}", store=store)  # creation (the graph) is not traced
    traced = Traced(store)
    traced.on = True
    res = await run.start(input_data={"v": 0})
    traced.on = False
    assert res.status == "success" and res.result == {"v": n}
    return store, traced.statements


def _kind(sql: str) -> str:
    head = sql.lstrip().split(None, 3)
    if head[0] == "INSERT":
        return "INSERT " + head[2]
    if head[0] == "UPDATE":
        return "UPDATE " + head[1]
    return head[0] + (" " + head[1] if len(head) > 1 and head[1] == "IMMEDIATE" else "")


async def test_a_step_record_write_is_one_statement_of_constant_size(tmp_path: Path) -> None:
    per_n: dict[int, tuple[Counter[str], int, int]] = {}
    for n in (10, 100):
        store, statements = await _traced_run(tmp_path, n)
        kinds = Counter(_kind(s) for s in statements)
        step_sql = [s for s in statements if _kind(s) == "INSERT flow_steps"]
        # sizes with the float timestamps (whose digits vary) spelled as one character
        per_n[n] = (kinds, max(len(re.sub(r"\d+\.\d+", "T", s)) for s in step_sql),
                    store.stats["writes"])
        # create + start + 2 writes per step (running record, final record) + finish
        assert store.stats["writes"] == 2 * n + 3
        assert store.stats["step_records_written"] == 2 * n
        # every step record write is ONE statement in autocommit (no BEGIN/COMMIT around it)
        assert kinds["INSERT flow_steps"] == 2 * n
        # the run row is updated at start and at the end only, in one transaction each
        assert kinds["UPDATE flow_runs"] == 2
        assert kinds["BEGIN IMMEDIATE"] == kinds["COMMIT"] == 2
        assert sum(kinds.values()) == 2 * n + 6
        # (+ the create: BEGIN, run row, graph row, COMMIT)
        assert store.stats["statements"] == 2 * n + 6 + 4
        # the graph is never written again while the run runs
        assert not any("flow_graphs" in s for s in statements)
    kinds10, longest10, _ = per_n[10]
    kinds100, longest100, _ = per_n[100]
    # per-run statements other than step writes do not grow with N
    assert {k: v for k, v in kinds10.items() if k != "INSERT flow_steps"} == \
        {k: v for k, v in kinds100.items() if k != "INSERT flow_steps"}
    # the largest step write is the same size whatever N is (up to the digits of the counter
    # in the record: {"v": 9} vs {"v": 99} and the step id s9 vs s99)
    assert longest100 - longest10 <= 4
    assert longest100 < 400


@pytest.mark.parametrize("k", [10, 50])
async def test_parallel_writes_are_one_statement_each(tmp_path: Path, k: int) -> None:
    store = SqliteSnapshotStore(tmp_path / "p.db")
    wf = (create_workflow(id="fan")
          .parallel([create_step(id=f"c{i}", execute=lambda ctx: {"v": 1}) for i in range(k)])
          .commit())
    run = wf.create_run(run_id="p", store=store)
    traced = Traced(store)
    traced.on = True
    res = await run.start(input_data={})
    traced.on = False
    assert res.status == "success" and len(res.result) == k
    kinds = Counter(_kind(s) for s in traced.statements)
    # each child's start is persisted (with the end record of the child before it, which
    # finished synchronously), then the last child's end: k + 1 writes of step records, each
    # ONE statement; start and finish update the run row in a transaction each
    assert kinds == Counter({"INSERT flow_steps": k + 1, "UPDATE flow_runs": 2,
                             "BEGIN IMMEDIATE": 2, "COMMIT": 2})
    assert store.stats["step_records_written"] == 2 * k
    snap = store.load("fan", "p")
    assert snap is not None and snap.status == "success"
    assert list(snap.steps) == [f"c{i}" for i in range(k)]
    assert all(r.status == "success" and r.output == {"v": 1} for r in snap.steps.values())


def test_writes_of_many_records_keep_their_order(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    store.create(flow.RunSnapshot(workflow_id="w", run_id="r"))
    before = store.stats["statements"]
    store.write("w", "r", None, {f"a{i}": StepResult("running", payload=i) for i in range(3)})
    assert store.stats["statements"] - before == 1  # one multi-row statement
    # more rows than one statement takes: a transaction of several
    store.write("w", "r", None, {f"b{i}": StepResult("running", payload=i) for i in range(1500)})
    store.write("w", "r", None, {"a1": StepResult("success", output="done", payload=1)})
    snap = store.load("w", "r")
    assert snap is not None
    assert list(snap.steps) == [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(1500)]
    assert snap.steps["a1"].output == "done" and snap.steps["b1499"].payload == 1499
    assert store.stats["step_records_written"] == 1504 and store.stats["writes"] == 4


async def test_record_bytes_grow_linearly(tmp_path: Path) -> None:
    sizes = {}
    for n in (20, 40, 80):
        store = SqliteSnapshotStore(tmp_path / f"{n}.db")
        await _chain(n).create_run(store=store).start(input_data={"v": 100})  # 3-digit values
        sizes[n] = store.stats["record_bytes"]
    per_step_a = (sizes[40] - sizes[20]) / 20
    per_step_b = (sizes[80] - sizes[40]) / 40
    # the same bytes per step however long the run already is (up to the step ids' digits and
    # the float timestamps' digits, which vary by a character or two)
    assert abs(per_step_a - per_step_b) <= 10
    assert per_step_a < 400


async def test_the_graph_is_encoded_once_per_workflow(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    wf = _chain(30)
    for i in range(5):
        await wf.create_run(run_id=f"r{i}", store=store).start(input_data={"v": 0})
    other = _chain(3, wid="other")
    await other.create_run(run_id="o", store=store).start(input_data={"v": 0})
    assert store.stats["graphs_encoded"] == 2
    for rid in ("r0", "r4"):
        snap = store.load("chain", rid)
        assert snap is not None and snap.graph == wf.serialize_graph() and len(snap.graph) == 30
    snap = store.load("other", "o")
    assert snap is not None and snap.graph == other.serialize_graph()


class Recording:
    """Wraps a store; after every write records what `load()` then shows (timestamps left out)."""

    def __init__(self, inner: flow.SnapshotStore) -> None:
        self.inner = inner
        self.stats = inner.stats
        self.seen: list[tuple[Any, ...]] = []
        self.times: list[float] = []

    def create(self, snapshot: flow.RunSnapshot) -> bool:
        return self.inner.create(snapshot)

    def write(self, workflow_id: str, run_id: str, run_fields: Any = None,
              steps: Any = None) -> None:
        self.inner.write(workflow_id, run_id, run_fields, steps)
        snap = self.inner.load(workflow_id, run_id)
        assert snap is not None
        recs = {}
        for sid, rec in snap.steps.items():
            d = rec.to_dict()
            for k in ("started_at", "ended_at", "suspended_at", "resumed_at"):
                if k in d:
                    d[k] = "<ts>"
            if "error" in d:
                d["error"] = flow.errors.error_to_dict(rec.error)
            recs[sid] = d
        self.seen.append((snap.status, json.loads(json.dumps(flow.results.to_jsonable(
            snap.input))), snap.state, snap.result, flow.errors.error_to_dict(snap.error),
            snap.suspended_paths, snap.resume_labels, snap.request_context, recs))
        self.times.append(snap.timestamp)

    def load(self, workflow_id: str, run_id: str) -> flow.RunSnapshot | None:
        return self.inner.load(workflow_id, run_id)

    def list_runs(self, workflow_id: str | None = None) -> list[tuple[str, str, str]]:
        return self.inner.list_runs(workflow_id)


def _mixed_workflow() -> flow.Workflow:
    def gate(ctx: StepContext) -> Any:
        if ctx.resume_data is None:
            ctx.suspend({"ask": ctx.input_data})
            return None
        return {"n": ctx.input_data["n"] + ctx.resume_data["add"]}

    def setter(ctx: StepContext) -> Any:
        ctx.set_state({"seen": ctx.input_data["n"]})
        return {"n": ctx.input_data["n"] * 2}

    inc = create_step(id="inc", execute=lambda c: {"n": c.input_data["n"] + 1})
    return (create_workflow(id="mixed")
            .then(create_step(id="first", execute=lambda c: {"n": 1}))
            .parallel([create_step(id="pa", execute=lambda c: {"a": c.input_data["n"]}),
                       create_step(id="pb", execute=lambda c: {"b": 2})])
            .map(lambda c: {"n": c.input_data["pa"]["a"] + c.input_data["pb"]["b"]})
            .dountil(inc, lambda c: c.input_data["n"] >= 5)
            .sleep(0)
            .then(create_step(id="set", execute=setter))
            .then(create_step(id="gate", execute=gate))
            .commit())


async def test_a_reader_sees_the_same_after_every_write_as_with_the_memory_store(
        tmp_path: Path) -> None:
    views = {}
    for kind in ("memory", "sqlite"):
        inner: flow.SnapshotStore = (MemorySnapshotStore() if kind == "memory"
                                     else SqliteSnapshotStore(tmp_path / "s.db"))
        rec = Recording(inner)
        wf = _mixed_workflow()
        res = await wf.create_run(run_id="m", store=rec).start(  # type: ignore[arg-type]
            input_data={"go": True}, initial_state={"k": 1})
        assert res.status == "suspended" and res.suspended == [["gate"]]
        res = await wf.create_run(run_id="m", store=rec).resume(  # type: ignore[arg-type]
            resume_data={"add": 10})
        assert res.status == "success" and res.result == {"n": 20}
        views[kind] = rec.seen
        # the timestamp a reader sees moves with every write, never back
        assert rec.times == sorted(rec.times)
    assert len(views["sqlite"]) == len(views["memory"]) > 10
    for i, (mem, sql) in enumerate(zip(views["memory"], views["sqlite"], strict=True)):
        assert sql == mem, f"write {i}"
    # the run statuses a reader sees (repeats collapsed): the sleep waits, the gate suspends
    # the start; the resume runs to success
    statuses = [v[0] for v in views["sqlite"]]
    collapsed = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert collapsed == ["running", "waiting", "running", "suspended", "running", "success"]
    # spot checks written by hand: the first write starts the run, the step write after it
    # shows `first` running, the last one is the finished run
    assert views["sqlite"][0][0] == "running" and views["sqlite"][0][8] == {}
    assert views["sqlite"][1][0] == "running"
    assert views["sqlite"][1][8]["first"]["status"] == "running"
    assert views["sqlite"][-1][0] == "success" and views["sqlite"][-1][3] == {"n": 20}


async def test_the_timestamp_follows_step_writes(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    store.create(flow.RunSnapshot(workflow_id="w", run_id="r"))
    store.write("w", "r", {"status": "running"})
    t0 = store.load("w", "r").timestamp  # type: ignore[union-attr]
    store.write("w", "r", None, {"a": StepResult("running", payload={}, started_at=1.0)})
    snap = store.load("w", "r")
    assert snap is not None and snap.status == "running" and snap.timestamp >= t0
    assert list(snap.steps) == ["a"] and snap.steps["a"].status == "running"
    # a write of nothing (the status it would repeat is left out) still marks the time
    before = store.stats["statements"]
    store.write("w", "r")
    later = store.load("w", "r")
    assert later is not None and later.timestamp >= snap.timestamp
    assert later.status == "running" and list(later.steps) == ["a"]
    assert store.stats["statements"] - before == 1 and store.stats["writes"] == 4


class Model(BaseModel):
    n: int
    when: datetime


@pytest.mark.parametrize("rec", [
    StepResult("running", payload={"v": 1}, started_at=1795660449.7144508),
    StepResult("success", output={"v": [1, 2.5, None, True, "é\n\""]}, payload=(1, 2),
               started_at=1.0, ended_at=2),
    StepResult("success", output=Model(n=1, when=datetime(2026, 1, 2, tzinfo=UTC)),
               payload=[Model(n=2, when=datetime(2026, 1, 3, tzinfo=UTC))],
               started_at=1.0, ended_at=2.0, metadata={"iteration_count": 3}),
    StepResult("failed", payload={}, error=ZeroDivisionError("division by zero"),
               started_at=1.0, ended_at=2.0),
    StepResult("suspended", payload={"x": {1, 2}.__class__.__name__}, started_at=1.0,
               suspend_payload={"ask": "ok?", "__workflow_meta": {"path": ["a"]}},
               suspended_at=3.0, resume_payload={"add": 1}, resumed_at=4.0),
    StepResult("success", output={"when": datetime(2026, 1, 2, tzinfo=UTC), 3: "int key",
                                  "err": ValueError("bad")}, payload=None),
    StepResult("success", output={(1, 2): "tuple key"}, payload=float("inf")),
])
def test_record_json_is_the_to_dict_document(rec: StepResult) -> None:
    expected = json.dumps(rec.to_dict(), separators=(",", ":"))
    assert record_json(rec) == expected
    assert StepResult.from_dict(json.loads(record_json(rec))).to_dict() == \
        json.loads(expected)


_OLD_SCHEMA = """
CREATE TABLE flow_runs (
    workflow_id TEXT NOT NULL, run_id TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT, state TEXT, result TEXT, error TEXT,
    suspended_paths TEXT, resume_labels TEXT, request_context TEXT, graph TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE TABLE flow_steps (
    workflow_id TEXT NOT NULL, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (workflow_id, run_id, step_id)
);
"""


def _old_file(path: Path, wf: flow.Workflow) -> None:
    """A database as the first layout wrote it: `w`/`old` suspended at `gate` after `first`."""
    con = sqlite3.connect(path)
    con.executescript(_OLD_SCHEMA)
    con.execute(
        "INSERT INTO flow_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        ("w", "old", "suspended", json.dumps({"in": 1}), json.dumps({"k": 1}), "null", "null",
         json.dumps({"gate": [1]}), json.dumps({}), json.dumps({"tenant": "acme"}),
         json.dumps(wf.serialize_graph()), 100.0, 200.0))
    con.execute("INSERT INTO flow_steps VALUES (?,?,?,?)", ("w", "old", "first", json.dumps(
        {"status": "success", "payload": {"in": 1}, "output": {"n": 1}, "started_at": 1.0,
         "ended_at": 2.0})))
    con.execute("INSERT INTO flow_steps VALUES (?,?,?,?)", ("w", "old", "gate", json.dumps(
        {"status": "suspended", "payload": {"n": 1}, "started_at": 3.0,
         "suspend_payload": {"ask": "add?"}, "suspended_at": 4.0})))
    con.commit()
    con.close()


async def test_a_file_of_the_first_layout_is_upgraded_and_resumable(tmp_path: Path) -> None:
    def gate(ctx: StepContext) -> Any:
        if ctx.resume_data is None:
            ctx.suspend({"ask": "add?"})
            return None
        return {"n": ctx.input_data["n"] + ctx.resume_data["add"],
                "tenant": ctx.request_context.get("tenant")}

    wf = (create_workflow(id="w").then(create_step(id="first", execute=lambda c: {"n": 1}))
          .then(create_step(id="gate", execute=gate)).commit())
    db = tmp_path / "old.db"
    _old_file(db, wf)
    a = SqliteSnapshotStore(db)
    b = SqliteSnapshotStore(db)  # a second opener finds it upgraded already
    snap = a.load("w", "old")
    assert snap is not None and snap.status == "suspended" and snap.input == {"in": 1}
    assert snap.graph == wf.serialize_graph() and snap.timestamp == 200.0
    assert list(snap.steps) == ["first", "gate"] and snap.steps["first"].output == {"n": 1}
    assert snap.steps["gate"].suspend_payload == {"ask": "add?"}
    res = await wf.create_run(run_id="old", store=b).resume(resume_data={"add": 4})
    assert res.status == "success" and res.result == {"n": 5, "tenant": "acme"}
    done = a.load("w", "old")
    assert done is not None and done.status == "success" and done.timestamp > 200.0
    assert list(done.steps) == ["first", "gate"]
    cols = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(flow_steps)")]
    assert cols.count("updated_at") == 1
    # a new run in the upgraded file keeps its graph out of the run row
    await wf.create_run(run_id="new", store=a).start(input_data={"in": 2})
    row = sqlite3.connect(db).execute(
        "SELECT graph FROM flow_runs WHERE run_id = 'new'").fetchone()
    assert row == (None,)
    new = b.load("w", "new")
    assert new is not None and new.graph == wf.serialize_graph() and new.status == "suspended"
