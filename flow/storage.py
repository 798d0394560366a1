"""Run snapshots for the default engine: the `SnapshotStore` interface and two stores.

A snapshot is one run record (status, input, state, result/error, suspended paths, resume labels,
request context, graph) plus one record per step id. Writes are incremental: `write()` updates the
run's changed fields and upserts only the given step records, in one transaction, so a run of N
steps costs O(N) writes of constant size (never a rewrite of the whole run per step). In SQLite a
write of step records only (the common one: a step started or ended) is a single statement
committed on its own, the record encoded once by json's C encoder.

The default engine is NOT durable against crashes: a snapshot left `running` by a dead process
cannot be recovered (see `flow.run`). Snapshots let a *suspended* run be resumed by run id from
another process.

Every store counts its work in `stats` (`collections.Counter`): "writes" (transactions),
"step_records_written", "loads"; the SQLite store also "statements" (SQL statements its writes
executed, BEGIN/COMMIT included), "record_bytes" (JSON bytes of the step records written) and
"graphs_encoded" (graphs turned into JSON: once per workflow, not per run)."""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from flow.errors import error_from_dict, error_to_dict
from flow.results import StepResult, to_jsonable

RUN_FIELDS = (
    "status",
    "input",
    "state",
    "result",
    "error",
    "suspended_paths",
    "resume_labels",
    "request_context",
    "graph",
)


@dataclass
class RunSnapshot:
    """A run as persisted. `status` is one of pending|running|waiting|suspended|success|failed|canceled."""

    workflow_id: str
    run_id: str
    status: str = "pending"
    input: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: BaseException | None = None
    steps: dict[str, StepResult] = field(default_factory=dict)
    suspended_paths: dict[str, list[int]] = field(default_factory=dict)
    resume_labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_context: dict[str, Any] = field(default_factory=dict)
    graph: list[Any] = field(default_factory=list)
    timestamp: float = 0.0


class SnapshotStore(ABC):
    """Where the default engine keeps run snapshots, keyed by (workflow id, run id)."""

    stats: Counter[str]

    @abstractmethod
    def create(self, snapshot: RunSnapshot) -> bool:
        """Store a new run; return False (and change nothing) if that run already exists."""

    @abstractmethod
    def write(
        self,
        workflow_id: str,
        run_id: str,
        run_fields: Mapping[str, Any] | None = None,
        steps: Mapping[str, StepResult] | None = None,
    ) -> None:
        """Update the given run fields (names from `RUN_FIELDS`) and upsert the given step
        records, in one transaction."""

    @abstractmethod
    def load(self, workflow_id: str, run_id: str) -> RunSnapshot | None:
        """The run's snapshot, or None if there is none."""

    @abstractmethod
    def list_runs(self, workflow_id: str | None = None) -> list[tuple[str, str, str]]:
        """(workflow id, run id, status) of every stored run (of one workflow if given)."""


class MemorySnapshotStore(SnapshotStore):
    """In-process store (tests, single-process use). Step records are kept as objects."""

    def __init__(self) -> None:
        self.stats = Counter()
        self._runs: dict[tuple[str, str], RunSnapshot] = {}

    def create(self, snapshot: RunSnapshot) -> bool:
        key = (snapshot.workflow_id, snapshot.run_id)
        if key in self._runs:
            return False
        self.stats["writes"] += 1
        snapshot.timestamp = time.time()
        self._runs[key] = snapshot
        return True

    def write(self, workflow_id, run_id, run_fields=None, steps=None) -> None:  # type: ignore[no-untyped-def]
        snap = self._runs.get((workflow_id, run_id))
        if snap is None:
            snap = RunSnapshot(workflow_id=workflow_id, run_id=run_id)
            self._runs[(workflow_id, run_id)] = snap
        self.stats["writes"] += 1
        if run_fields:
            for name, value in run_fields.items():
                if name not in RUN_FIELDS:
                    raise ValueError(f"unknown snapshot field {name!r}; expected one of {RUN_FIELDS}")
                if isinstance(value, dict):
                    value = dict(value)
                setattr(snap, name, value)
        if steps:
            self.stats["step_records_written"] += len(steps)
            snap.steps.update(steps)
        snap.timestamp = time.time()

    def load(self, workflow_id: str, run_id: str) -> RunSnapshot | None:
        self.stats["loads"] += 1
        snap = self._runs.get((workflow_id, run_id))
        if snap is None:
            return None
        return RunSnapshot(
            workflow_id=snap.workflow_id,
            run_id=snap.run_id,
            status=snap.status,
            input=snap.input,
            state=dict(snap.state),
            result=snap.result,
            error=snap.error,
            steps=dict(snap.steps),
            suspended_paths={k: list(v) for k, v in snap.suspended_paths.items()},
            resume_labels=dict(snap.resume_labels),
            request_context=dict(snap.request_context),
            graph=snap.graph,
            timestamp=snap.timestamp,
        )

    def list_runs(self, workflow_id: str | None = None) -> list[tuple[str, str, str]]:
        return [
            (w, r, s.status)
            for (w, r), s in self._runs.items()
            if workflow_id is None or w == workflow_id
        ]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_runs (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT, state TEXT, result TEXT, error TEXT,
    suspended_paths TEXT, resume_labels TEXT, request_context TEXT,
    graph TEXT,  -- format 1 only; a run's graph is now in flow_graphs (NULL here)
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE TABLE IF NOT EXISTS flow_steps (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    record TEXT NOT NULL,
    updated_at REAL,
    PRIMARY KEY (workflow_id, run_id, step_id)
);
CREATE TABLE IF NOT EXISTS flow_graphs (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    graph TEXT NOT NULL,
    PRIMARY KEY (workflow_id, run_id)
);
"""

_UPSERT_STEP = (
    "INSERT INTO flow_steps (workflow_id, run_id, step_id, record, updated_at)"
    " VALUES (?,?,?,?,?) ON CONFLICT (workflow_id, run_id, step_id)"
    " DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at"
)

_ROWS_PER_STATEMENT = 1000  # 5 parameters a row, well below SQLite's limit of 32766


@functools.lru_cache(maxsize=64)
def _upsert_rows(k: int) -> str:
    """`_UPSERT_STEP` for `k` rows in one statement."""
    values = ",".join(["(?,?,?,?,?)"] * k)
    return _UPSERT_STEP.replace("VALUES (?,?,?,?,?)", "VALUES " + values)


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"))


# json's C encoder, made once (json.dumps makes one per call); whatever it cannot encode itself
# goes through `to_jsonable` (pydantic models, datetimes, exceptions, ...), so plain data is never
# copied before it is encoded. No circular-reference bookkeeping: a cyclic value ends in
# RecursionError, as `to_jsonable` does.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encoder = (None if _c_make_encoder is None else
              _c_make_encoder(None, to_jsonable, encode_basestring_ascii, None, ":", ",", False,
                              False, True))
_py_encode = json.JSONEncoder(separators=(",", ":"), default=to_jsonable).encode


def _encode(value: Any) -> str:
    if _c_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        return _py_encode(value)
    return "".join(_c_encoder(value, 0))


def record_json(rec: StepResult) -> str:
    """The JSON text of a step record: the same document as `json.dumps(rec.to_dict())` (only
    dict keys that are not strings may be spelled differently: json's "true"/"null" instead of
    "True"/"None"), encoded in one pass without building the `to_dict()` copy first."""
    status = rec.status
    out: dict[str, Any] = {"status": status, "payload": rec.payload}
    if status == "success":
        out["output"] = rec.output
    if rec.error is not None:
        out["error"] = error_to_dict(rec.error)
    # the optional fields in `StepResult.to_dict` order, spelled out (no getattr loop)
    if rec.started_at is not None:
        out["started_at"] = rec.started_at
    if rec.ended_at is not None:
        out["ended_at"] = rec.ended_at
    if rec.suspend_payload is not None:
        out["suspend_payload"] = rec.suspend_payload
    if rec.resume_payload is not None:
        out["resume_payload"] = rec.resume_payload
    if rec.suspended_at is not None:
        out["suspended_at"] = rec.suspended_at
    if rec.resumed_at is not None:
        out["resumed_at"] = rec.resumed_at
    if rec.metadata is not None:
        out["metadata"] = rec.metadata
    try:
        return _encode(out)
    except TypeError:  # e.g. a dict key json cannot spell: `to_jsonable` makes it a string
        return _dumps(rec.to_dict())


def _json(value: Any) -> str:
    """`value` as JSON text: the C encoder, or `to_jsonable` first for what it cannot spell."""
    try:
        return _encode(value)
    except TypeError:
        return _dumps(value)


class SqliteSnapshotStore(SnapshotStore):
    """One SQLite file (stdlib `sqlite3`, WAL). Values are stored as JSON (pydantic models dumped,
    errors as {"name","message"}); several processes may open the same file.

    Layout: `flow_runs` holds one small row per run (status, input, state, result, ...);
    `flow_steps` one row per step record (JSON) with the time it was written; `flow_graphs` the
    run's graph, written once (a large value kept out of the run row, which SQLite rewrites whole
    on every update). A write that only changes step records is one statement in autocommit mode
    (one commit) and does not touch the run row; the snapshot's `timestamp` is the latest write
    time of the run row and its step rows. A file written by the first layout (graph in
    `flow_runs`, no `flow_steps.updated_at`) is upgraded in place when opened and its runs stay
    readable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.stats = Counter()
        self._lock = threading.Lock()
        self._graphs: dict[str, tuple[Any, str]] = {}
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Add `flow_steps.updated_at` to a file of the first layout (once, under the write lock,
        so two processes opening the same old file do not both add it)."""
        def has_column() -> bool:
            cols = self._conn.execute("PRAGMA table_info(flow_steps)").fetchall()
            return any(c[1] == "updated_at" for c in cols)

        if has_column():
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if not has_column():
                self._conn.execute("ALTER TABLE flow_steps ADD COLUMN updated_at REAL")
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()

    def _graph_json(self, workflow_id: str, graph: Any) -> str:
        """The graph's JSON text. The last one of each workflow is kept (with a decoded copy,
        so a caller mutating its list later cannot make it stale): the runs of one workflow,
        whose graphs compare equal as data, encode it once."""
        cached = self._graphs.get(workflow_id)
        if cached is not None and cached[0] == graph:
            return cached[1]
        text = _json(graph)
        self._graphs[workflow_id] = (json.loads(text), text)
        self.stats["graphs_encoded"] += 1
        return text

    def _run(self, statement: str, params: Any = ()) -> sqlite3.Cursor:
        self.stats["statements"] += 1
        return self._conn.execute(statement, params)

    def create(self, snapshot: RunSnapshot) -> bool:
        now = time.time()
        wid, rid = snapshot.workflow_id, snapshot.run_id
        with self._lock:
            self._run("BEGIN IMMEDIATE")
            try:
                cur = self._run(
                    "INSERT OR IGNORE INTO flow_runs (workflow_id, run_id, status, input, state,"
                    " result, error, suspended_paths, resume_labels, request_context, created_at,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        wid, rid, snapshot.status,
                        _json(snapshot.input), _json(snapshot.state), _json(snapshot.result),
                        _json(error_to_dict(snapshot.error)), _json(snapshot.suspended_paths),
                        _json(snapshot.resume_labels), _json(snapshot.request_context),
                        now, now,
                    ),
                )
                created = cur.rowcount == 1
                if created:
                    self._run("INSERT OR REPLACE INTO flow_graphs (workflow_id, run_id, graph)"
                              " VALUES (?,?,?)", (wid, rid, self._graph_json(wid, snapshot.graph)))
                    steps = [(wid, rid, sid, record_json(rec), now)
                             for sid, rec in snapshot.steps.items()]
                    if steps:
                        self.stats["statements"] += 1
                        self._conn.executemany(_UPSERT_STEP, steps)
                self._run("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if created:
                self.stats["writes"] += 1
            return created

    def write(self, workflow_id, run_id, run_fields=None, steps=None) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        stats = self.stats
        if not run_fields and steps and len(steps) <= _ROWS_PER_STATEMENT:
            # the common write (step records only): ONE statement, committed on its own (so
            # atomic), and the run row is left alone
            params: Sequence[Any]
            if len(steps) == 1:
                ((sid, rec),) = steps.items()
                text = record_json(rec)
                sql, params = _UPSERT_STEP, (workflow_id, run_id, sid, text, now)
                nbytes = len(text)
            else:
                flat: list[Any] = []
                nbytes = 0
                for sid, rec in steps.items():
                    text = record_json(rec)
                    nbytes += len(text)
                    flat += (workflow_id, run_id, sid, text, now)
                sql, params = _upsert_rows(len(steps)), flat
            with self._lock:
                self._conn.execute(sql, params)
            stats["statements"] += 1
            stats["record_bytes"] += nbytes
            stats["step_records_written"] += len(steps)
            stats["writes"] += 1
            return
        if not run_fields and not steps:
            # nothing changed but the time of the last write (as the memory store keeps it)
            with self._lock:
                self._conn.execute("UPDATE flow_runs SET updated_at = ? WHERE workflow_id = ?"
                                   " AND run_id = ?", (now, workflow_id, run_id))
            stats["statements"] += 1
            stats["writes"] += 1
            return
        rows = None
        if steps:
            rows = [(workflow_id, run_id, sid, record_json(rec), now)
                    for sid, rec in steps.items()]
            stats["record_bytes"] += sum(len(r[3]) for r in rows)
        update = None
        if run_fields:
            cols, vals = [], []
            for name, value in run_fields.items():
                if name not in RUN_FIELDS:
                    raise ValueError(
                        f"unknown snapshot field {name!r}; expected one of {RUN_FIELDS}")
                if name == "graph":
                    continue  # kept in flow_graphs, below
                cols.append(f"{name} = ?")
                if name == "status":
                    vals.append(value)
                elif name == "error":
                    vals.append(_json(error_to_dict(value)))
                else:
                    vals.append(_json(value))
            vals.extend([now, workflow_id, run_id])
            cols.append("updated_at = ?")
            update = (f"UPDATE flow_runs SET {', '.join(cols)}"
                      " WHERE workflow_id = ? AND run_id = ?", vals)
        with self._lock:
            conn = self._conn
            self._run("BEGIN IMMEDIATE")
            try:
                if update is not None:
                    cur = self._run(*update)
                    if cur.rowcount == 0:
                        self._run(
                            "INSERT INTO flow_runs (workflow_id, run_id, status, created_at,"
                            " updated_at) VALUES (?,?,?,?,?)",
                            (workflow_id, run_id, run_fields.get("status", "running"), now, now),
                        )
                        self._run(*update)
                    if "graph" in run_fields:
                        self._run("INSERT OR REPLACE INTO flow_graphs (workflow_id, run_id, graph)"
                                  " VALUES (?,?,?)",
                                  (workflow_id, run_id, self._graph_json(workflow_id, run_fields["graph"])))
                if rows:
                    self.stats["statements"] += 1
                    conn.executemany(_UPSERT_STEP, rows)
                    self.stats["step_records_written"] += len(rows)
                self._run("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.stats["writes"] += 1

    def load(self, workflow_id: str, run_id: str) -> RunSnapshot | None:
        with self._lock:
            self.stats["loads"] += 1
            row = self._conn.execute(
                "SELECT r.status, r.input, r.state, r.result, r.error, r.suspended_paths,"
                " r.resume_labels, r.request_context, COALESCE(g.graph, r.graph), r.updated_at"
                " FROM flow_runs r LEFT JOIN flow_graphs g"
                " ON g.workflow_id = r.workflow_id AND g.run_id = r.run_id"
                " WHERE r.workflow_id = ? AND r.run_id = ?",
                (workflow_id, run_id),
            ).fetchone()
            if row is None:
                return None
            step_rows = self._conn.execute(
                "SELECT step_id, record, updated_at FROM flow_steps"
                " WHERE workflow_id = ? AND run_id = ? ORDER BY rowid",
                (workflow_id, run_id),
            ).fetchall()

        def js(text: str | None, default: Any) -> Any:
            if text is None:
                return default
            value = json.loads(text)
            return default if value is None else value

        timestamp = max([row[9], *(t for _s, _r, t in step_rows if t is not None)])
        return RunSnapshot(
            workflow_id=workflow_id,
            run_id=run_id,
            status=row[0],
            input=js(row[1], None),
            state=js(row[2], {}),
            result=js(row[3], None),
            error=error_from_dict(js(row[4], None)),
            steps={sid: StepResult.from_dict(json.loads(rec)) for sid, rec, _t in step_rows},
            suspended_paths=js(row[5], {}),
            resume_labels=js(row[6], {}),
            request_context=js(row[7], {}),
            graph=js(row[8], []),
            timestamp=timestamp,
        )

    def list_runs(self, workflow_id: str | None = None) -> list[tuple[str, str, str]]:
        with self._lock:
            if workflow_id is None:
                rows = self._conn.execute(
                    "SELECT workflow_id, run_id, status FROM flow_runs ORDER BY created_at"
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT workflow_id, run_id, status FROM flow_runs WHERE workflow_id = ?"
                    " ORDER BY created_at",
                    (workflow_id,),
                ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]
