"""Run snapshots for the default engine: the `SnapshotStore` interface and two stores.

A snapshot is one run record (status, input, state, result/error, suspended paths, resume labels,
request context, graph) plus one record per step id. Writes are incremental: `write()` updates the
run's changed fields and upserts only the given step records, in one transaction, so a run of N
steps costs O(N) writes of constant size (never a rewrite of the whole run per step).

The default engine is NOT durable against crashes: a snapshot left `running` by a dead process
cannot be recovered (see `flow.run`). Snapshots let a *suspended* run be resumed by run id from
another process.

Every store counts its work in `stats` (`collections.Counter`): "writes" (transactions),
"step_records_written", "loads".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    suspended_paths TEXT, resume_labels TEXT, request_context TEXT, graph TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE TABLE IF NOT EXISTS flow_steps (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (workflow_id, run_id, step_id)
);
"""

_JSON_FIELDS = ("input", "state", "result", "suspended_paths", "resume_labels",
                "request_context", "graph")


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"))


class SqliteSnapshotStore(SnapshotStore):
    """One SQLite file (stdlib `sqlite3`, WAL). Values are stored as JSON (pydantic models dumped,
    errors as {"name","message"}); several processes may open the same file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.stats = Counter()
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def create(self, snapshot: RunSnapshot) -> bool:
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO flow_runs (workflow_id, run_id, status, input, state, result,"
                " error, suspended_paths, resume_labels, request_context, graph, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    snapshot.workflow_id, snapshot.run_id, snapshot.status,
                    _dumps(snapshot.input), _dumps(snapshot.state), _dumps(snapshot.result),
                    _dumps(error_to_dict(snapshot.error)), _dumps(snapshot.suspended_paths),
                    _dumps(snapshot.resume_labels), _dumps(snapshot.request_context),
                    _dumps(snapshot.graph), now, now,
                ),
            )
            created = cur.rowcount == 1
            if created:
                self.stats["writes"] += 1
            return created

    def write(self, workflow_id, run_id, run_fields=None, steps=None) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if run_fields:
                    cols, vals = [], []
                    for name, value in run_fields.items():
                        if name not in RUN_FIELDS:
                            raise ValueError(
                                f"unknown snapshot field {name!r}; expected one of {RUN_FIELDS}"
                            )
                        cols.append(f"{name} = ?")
                        if name == "status":
                            vals.append(value)
                        elif name == "error":
                            vals.append(_dumps(error_to_dict(value)))
                        else:
                            vals.append(_dumps(value))
                    vals.extend([now, workflow_id, run_id])
                    cur = conn.execute(
                        f"UPDATE flow_runs SET {', '.join(cols)}, updated_at = ?"
                        " WHERE workflow_id = ? AND run_id = ?",
                        vals,
                    )
                    if cur.rowcount == 0:
                        conn.execute(
                            "INSERT INTO flow_runs (workflow_id, run_id, status, created_at,"
                            " updated_at) VALUES (?,?,?,?,?)",
                            (workflow_id, run_id, run_fields.get("status", "running"), now, now),
                        )
                        conn.execute(
                            f"UPDATE flow_runs SET {', '.join(cols)}, updated_at = ?"
                            " WHERE workflow_id = ? AND run_id = ?",
                            vals,
                        )
                if steps:
                    conn.executemany(
                        "INSERT INTO flow_steps (workflow_id, run_id, step_id, record)"
                        " VALUES (?,?,?,?) ON CONFLICT (workflow_id, run_id, step_id)"
                        " DO UPDATE SET record = excluded.record",
                        [(workflow_id, run_id, sid, _dumps(rec.to_dict()))
                         for sid, rec in steps.items()],
                    )
                    self.stats["step_records_written"] += len(steps)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.stats["writes"] += 1

    def load(self, workflow_id: str, run_id: str) -> RunSnapshot | None:
        with self._lock:
            self.stats["loads"] += 1
            row = self._conn.execute(
                "SELECT status, input, state, result, error, suspended_paths, resume_labels,"
                " request_context, graph, updated_at FROM flow_runs"
                " WHERE workflow_id = ? AND run_id = ?",
                (workflow_id, run_id),
            ).fetchone()
            if row is None:
                return None
            step_rows = self._conn.execute(
                "SELECT step_id, record FROM flow_steps WHERE workflow_id = ? AND run_id = ?"
                " ORDER BY rowid",
                (workflow_id, run_id),
            ).fetchall()

        def js(text: str | None, default: Any) -> Any:
            if text is None:
                return default
            value = json.loads(text)
            return default if value is None else value

        return RunSnapshot(
            workflow_id=workflow_id,
            run_id=run_id,
            status=row[0],
            input=js(row[1], None),
            state=js(row[2], {}),
            result=js(row[3], None),
            error=error_from_dict(js(row[4], None)),
            steps={sid: StepResult.from_dict(json.loads(rec)) for sid, rec in step_rows},
            suspended_paths=js(row[5], {}),
            resume_labels=js(row[6], {}),
            request_context=js(row[7], {}),
            graph=js(row[8], []),
            timestamp=row[9],
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
