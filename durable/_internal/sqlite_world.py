"""SqliteWorld: the embedded default World — one SQLite file (stdlib sqlite3), WAL mode,
synchronous=NORMAL. Several worker processes on one machine share the file through leases.

Path: the ``path`` argument, else ``$WFBENCH_DB``, else ``.wfbench/runs.db``.
Tables: runs, events, waits, hooks, inbox, meta. Values are stored as JSON text. ``events`` is
clustered by run (``PRIMARY KEY (run_id, seq)``, WITHOUT ROWID: one B-tree, a run's log is
contiguous); ``seq`` counts 1, 2, 3... per run, assigned as the run's last seq + 1.

Cost per step (the hot path): ONE SQL statement, its own transaction: a multi-row INSERT of the
step's events (already-encoded JSON) whose first row's run_id is a subquery that is NULL unless
the run is running and held by this owner (NULL violates NOT NULL: the statement writes
nothing), so the lease and status check is atomic with the append. Their seqs continue from the
last seq this connection wrote for the run; had anyone else appended since, the primary key
refuses the statement (nothing written) and the full commit below reads the real last seq. Anything else (run updates,
hooks, waits, a lease to renew, or a guard that fails) goes through the full commit: BEGIN
IMMEDIATE, read the run's status and holder (skipped when ``PRAGMA data_version`` shows no other
connection wrote since this one's last commit), write, COMMIT. Step records are not a table:
`list_steps` folds them from the ``step_*`` events (they carry the same data), and the lease is
renewed (an UPDATE of the run row) only when a third of it has passed, not on every commit.
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable._internal.errors import (
    HookNotFoundError,
    LeaseLostError,
    RunNotFoundError,
    WorldCorruptError,
    WorldWriteError,
)
from durable._internal.leases import owner_is_dead
from durable._internal.serialization import decode_own
from durable._internal.world import (
    SPECIAL_EVENTS,
    TERMINAL,
    TERMINAL_EVENTS,
    Batch,
    CommitResult,
    Event,
    HookRecord,
    InboxItem,
    RunRecord,
    StepRecord,
    WaitRecord,
    dumps,
    fold_last_steps,
    steps_from_events,
)

SCHEMA_ID = "wfbench-durable-3"
_OLD_SCHEMA_IDS = ("wfbench-durable-2",)  # migrated on open (same data, events re-keyed)
log = logging.getLogger("durable")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, entrypoint TEXT NOT NULL,
  status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, attributes TEXT,
  created_at REAL, started_at REAL, completed_at REAL, updated_at REAL,
  lease_owner TEXT, lease_expires_at REAL, next_due_at REAL, cancel_reason TEXT);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
  correlation_id TEXT, data TEXT, created_at REAL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waits (
  run_id TEXT NOT NULL, correlation_id TEXT NOT NULL, resume_at REAL, status TEXT,
  created_at REAL, completed_at REAL, PRIMARY KEY (run_id, correlation_id));
CREATE TABLE IF NOT EXISTS hooks (
  run_id TEXT NOT NULL, correlation_id TEXT NOT NULL, token TEXT NOT NULL UNIQUE,
  metadata TEXT, created_at REAL, PRIMARY KEY (run_id, correlation_id));
CREATE TABLE IF NOT EXISTS inbox (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, correlation_id TEXT NOT NULL,
  token TEXT, payload TEXT, created_at REAL);
CREATE INDEX IF NOT EXISTS inbox_run ON inbox(run_id, id);
"""

_RUN_COLS = (
    "run_id, workflow_name, entrypoint, status, input, output, error, attributes, created_at, "
    "started_at, completed_at, updated_at, lease_owner, lease_expires_at, next_due_at, cancel_reason"
)
_PEEK_COLS = _RUN_COLS.replace(" output,", " NULL,")  # everything but the output
_JSON_RUN_FIELDS = {"input", "output", "error", "attributes"}
_SELECT_HOLD = "SELECT status, lease_owner FROM runs WHERE run_id=?"
_APPEND_SQL: dict[int, str] = {}
_INSERT_EVENT = ("INSERT INTO events(run_id, seq, type, correlation_id, data, created_at)"
                 " VALUES (?,?,?,?,?,?)")
_MAX_SEQ = "SELECT MAX(seq) FROM events WHERE run_id=?"
_RUNNING = CommitResult("running")


def _loads(text: Any) -> Any:
    return None if text is None else decode_own(text)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    msg = str(exc).lower()
    return (type(exc) is sqlite3.DatabaseError or "malformed" in msg
            or "not a database" in msg or "file is not a database" in msg)


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _run_from_row(row: tuple[Any, ...], path: Any = "") -> RunRecord:
    try:
        return RunRecord(
            run_id=row[0], workflow_name=row[1], entrypoint=row[2], status=row[3],
            input=_loads(row[4]), output=_loads(row[5]), error=_loads(row[6]),
            attributes=_loads(row[7]) or {}, created_at=row[8], started_at=row[9],
            completed_at=row[10], updated_at=row[11], lease_owner=row[12],
            lease_expires_at=row[13], next_due_at=row[14], cancel_reason=row[15],
        )
    except (ValueError, TypeError) as exc:
        raise WorldCorruptError(
            f"run {row[0]!r} in {str(path)!r} has a damaged record ({exc}): "
            "delete or repair that run; other runs are not affected"
        ) from None


_now = getattr(time.time, "__wrapped__", time.time)  # the real clock, even under the sandbox

CHECKPOINT_EVERY = 400  # write transactions between two background WAL checkpoints (~1000 pages)
# the connection's own automatic checkpoint (the default is 1000 pages) stays as a backstop for
# when the background one falls behind
AUTOCHECKPOINT_PAGES = 4000


class _Checkpointer:
    """Checkpoints the WAL of one database file from a daemon thread, on a connection of its
    own, when `kick` asks (what SQLite's WAL documentation suggests for applications that
    cannot afford checkpoint pauses): the copy of WAL pages into the database file and its
    fsyncs then happen beside the writes, not inside one of them. A PASSIVE checkpoint never
    blocks writers or readers; a process killed in the middle of one loses nothing (SQLite
    finishes or redoes it on the next open)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.wake = threading.Event()
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.runs = 0  # checkpoints done (for tests)

    def kick(self) -> None:
        t = self.thread
        if t is None or self.pid != os.getpid() or not t.is_alive():
            if self.stopped:
                return
            self.pid = os.getpid()
            self.wake = threading.Event()
            t = self.thread = threading.Thread(target=self._loop, name="durable-wal-checkpoint",
                                               daemon=True)
            t.start()
        self.wake.set()

    def _loop(self) -> None:
        try:  # mode=rw: never creates the file (it may be gone by now)
            conn = sqlite3.connect(Path(self.path).resolve().as_uri() + "?mode=rw", uri=True,
                                   timeout=5.0, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, ValueError):
            return
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            wake = self.wake
            while True:
                wake.wait()
                wake.clear()
                if self.stopped:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:  # busy, or the file went away: the backstop checkpoints
                    pass
        finally:
            conn.close()

    def stop_soon(self) -> None:
        """Let the thread end (the world was garbage-collected without `close`)."""
        self.stopped = True
        self.wake.set()

    def stop(self) -> None:
        self.stopped = True
        t = self.thread
        if t is not None and self.pid == os.getpid() and t.is_alive():
            self.wake.set()
            t.join(timeout=10)


class SqliteWorld:
    """A World in one SQLite file (see module docstring). Safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0) -> None:
        if path is None:
            path = os.environ.get("WFBENCH_DB") or os.path.join(".wfbench", "runs.db")
        self.path = Path(path)
        self.stats: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        # run_id -> (owner, lease_expires_at) last written by this connection: a commit renews
        # the lease only when a third of it has passed (the lease is still checked every time)
        self._leases: dict[str, tuple[str, float]] = {}
        # run_id -> (owner, status, write generation, data_version) after this connection's
        # last commit for the run; `_gen` counts write transactions through this object
        self._known: dict[str, tuple[str, str, int, int]] = {}
        self._gen = 0
        # run_id -> the seq its next event gets, as of this connection's last append (the fast
        # path's guess: a stale one collides with the primary key and writes nothing)
        self._next_seq: dict[str, int] = {}
        self._cursor: sqlite3.Cursor | None = None
        self._checkpointer = _Checkpointer(str(self.path))
        weakref.finalize(self, self._checkpointer.stop_soon)
        self._since_checkpoint = 0
        if self.path.exists() and self.path.is_dir():
            raise WorldCorruptError(f"SqliteWorld path {str(self.path)!r} is a directory: pass a file path")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorldWriteError(
                f"cannot create SqliteWorld at {str(self.path)!r}: its directory "
                f"{str(self.path.parent)!r} cannot be created ({exc.strerror or exc}): "
                "pass another path / $WFBENCH_DB"
            ) from None
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._init_schema()
        except sqlite3.OperationalError as exc:
            if _is_corruption(exc):
                raise WorldCorruptError(
                    f"{str(self.path)!r} is not a SQLite database or is corrupt ({exc}): "
                    "move it away or pass another path / $WFBENCH_DB"
                ) from None
            raise self._db_error(exc) from None
        except sqlite3.DatabaseError as exc:
            raise WorldCorruptError(
                f"{str(self.path)!r} is not a SQLite database or is corrupt ({exc}): "
                "move it away or pass another path / $WFBENCH_DB"
            ) from None

    def __repr__(self) -> str:
        return f"SqliteWorld({str(self.path)!r})"

    def _init_schema(self) -> None:
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise WorldCorruptError(
                f"{str(self.path)!r} is a SQLite database but not a wfbench runs database "
                f"(tables: {sorted(tables)}): pass another path"
            )
        c.execute("BEGIN IMMEDIATE")
        try:
            row = None
            if "meta" in tables:
                row = c.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] in _OLD_SCHEMA_IDS and "events" in tables:
                self._migrate_events(c)
                c.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_ID,))
                row = (SCHEMA_ID,)
            if row is not None and row[0] != SCHEMA_ID:
                raise WorldCorruptError(
                    f"{str(self.path)!r} has schema {row[0]!r}, expected {SCHEMA_ID!r}: pass another path"
                )
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if row is None:
                c.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_ID,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    @staticmethod
    def _migrate_events(c: sqlite3.Connection) -> None:
        """wfbench-durable-2 -> 3: the events table re-keyed by (run_id, seq), WITHOUT ROWID
        (the old global seqs are kept: unique, and ascending within each run)."""
        c.execute("ALTER TABLE events RENAME TO events_v2")
        c.execute("DROP INDEX IF EXISTS events_run")
        c.execute(_SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS events"):].split(";")[0])
        c.execute("INSERT INTO events(run_id, seq, type, correlation_id, data, created_at)"
                  " SELECT run_id, seq, type, correlation_id, data, created_at FROM events_v2")
        c.execute("DROP TABLE events_v2")

    def _db_error(self, exc: sqlite3.DatabaseError) -> Exception:
        """The durable error for a failed SQLite call (the message names the file)."""
        if _is_corruption(exc):
            return WorldCorruptError(
                f"{str(self.path)!r} is corrupt ({exc}): move it away or pass another path")
        if isinstance(exc, sqlite3.OperationalError) and not _is_busy(exc):
            msg = str(exc).lower()
            if "readonly" in msg or "read-only" in msg:
                why = "the database is read-only; make it writable"
            elif "full" in msg or "i/o" in msg:
                why = f"database or disk is full or failing ({exc}); free disk space"
            else:
                why = f"{exc}; check the file and its directory"
            return WorldWriteError(
                f"cannot write to {str(self.path)!r}: {why} or pass another path / $WFBENCH_DB "
                "(what was committed is intact)")
        return exc

    # -- transaction helper ---------------------------------------------------------------
    def _write(self, fn: Any) -> Any:
        with self._lock:
            c = self._conn
            try:
                c.execute("BEGIN IMMEDIATE")
                out = fn(c)
                c.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._next_seq.clear()  # seqs counted in the rolled-back transaction
                if c.in_transaction:  # after SQLITE_FULL/IOERR SQLite has rolled back already
                    try:
                        c.execute("ROLLBACK")
                    except sqlite3.DatabaseError:
                        pass
                raise self._db_error(exc) from None
            except BaseException:
                self._next_seq.clear()
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            self.stats["writes"] += 1
            self._gen += 1
            self._since_checkpoint += 1
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                self._since_checkpoint = 0
                self._checkpointer.kick()
            return out

    def _field(self, text: Any, run_id: str, what: str) -> Any:
        """Decode one stored JSON value; a damaged one is a WorldCorruptError naming the run."""
        try:
            return _loads(text)
        except ValueError as exc:
            raise WorldCorruptError(
                f"run {run_id!r} in {str(self.path)!r} has a damaged {what} ({exc}): "
                "delete or repair that run; other runs are not affected"
            ) from None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                err = self._db_error(exc)
                if err is exc:
                    raise
                raise err from None

    def _insert_events(self, c: sqlite3.Connection, run_id: str,
                       rows: list[tuple[str, str | None, str | None, float]]) -> None:
        """Append (type, correlation id, JSON text, created_at) rows to a run's log inside a
        write transaction, numbered from the run's last seq + 1 (read in this transaction)."""
        if not rows:
            return
        last = c.execute(_MAX_SEQ, (run_id,)).fetchone()[0] or 0
        c.executemany(_INSERT_EVENT, [(run_id, last + i, *r) for i, r in enumerate(rows, 1)])
        self._next_seq[run_id] = last + len(rows) + 1
        self.stats["events_appended"] += len(rows)

    def _append(self, c: sqlite3.Connection, run_id: str, type_: str, corr: str | None,
                data: Any, at: float) -> None:
        self._insert_events(c, run_id, [(type_, corr, dumps(data), at)])

    def _dispose_all_hooks(self, c: sqlite3.Connection, run_id: str, at: float) -> None:
        rows = c.execute("SELECT correlation_id, token FROM hooks WHERE run_id=?", (run_id,)).fetchall()
        for corr, token in rows:
            self._append(c, run_id, "hook_disposed", corr, {"token": token}, at)
        if rows:
            c.execute("DELETE FROM hooks WHERE run_id=?", (run_id,))

    # -- writes --------------------------------------------------------------------------
    def create_run(self, run: RunRecord, owner: str | None, lease_seconds: float) -> None:
        def tx(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM runs WHERE run_id=?", (run.run_id,)).fetchone():
                raise ValueError(f"run id {run.run_id!r} already exists: choose another run_id")
            c.execute(
                f"INSERT INTO runs({_RUN_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.run_id, run.workflow_name, run.entrypoint, run.status, dumps(run.input),
                 None, None, dumps(run.attributes), run.created_at, None, None, run.created_at,
                 owner, (_now() + lease_seconds) if owner else None, run.next_due_at, None),
            )
            if owner:
                self._leases[run.run_id] = (owner, _now() + lease_seconds)
            self._append(c, run.run_id, "run_created", None,
                         {"workflow_name": run.workflow_name, "input": run.input,
                          "attributes": run.attributes}, run.created_at)
        self._write(tx)

    def commit(
        self, run_id: str, owner: str | None, batch: Batch, lease_seconds: float,
        require_running: bool = True,
    ) -> CommitResult:
        if owner is not None and not (batch.run_update or batch.output_text is not None
                                      or batch.hooks_created or batch.waits
                                      or batch.hooks_disposed or batch.inbox_consumed):
            held = self._leases.get(run_id)
            if held is not None and held[0] == owner and (
                    held[1] - _now() >= lease_seconds * (2 / 3)):
                lock = self._lock
                lock.acquire()  # (cheaper than `with` on this path, once per step)
                try:
                    done = self._append_if_held(run_id, owner, batch)
                finally:
                    lock.release()
                if done is not None:
                    return done
        with self._lock:
            result, lease, dv = self._write(
                lambda c: self._commit_tx(c, run_id, owner, batch, lease_seconds, require_running))
            # what this commit leaves known about the run (valid while nothing else writes)
            if lease is not None:
                self._leases[run_id] = lease
            elif result.status in TERMINAL:
                self._leases.pop(run_id, None)
            if owner is not None and result.status not in TERMINAL:
                self._known[run_id] = (owner, result.status, self._gen, dv)
            else:
                self._known.pop(run_id, None)
            return result

    def _append_if_held(self, run_id: str, owner: str, batch: Batch) -> CommitResult | None:
        """The step path: append plain events in ONE statement (its own transaction) that
        checks, atomically, that `owner` still holds the run and that it is running. None when
        it wrote nothing (lease lost, run ended, another writer appended, special events): the
        full commit decides."""
        seq = self._next_seq.get(run_id)
        if seq is None:
            return None
        events = batch.events
        n = len(events)
        if n == 0 or n > 512:  # (a statement has at most 32766 parameters)
            return None
        params: list[Any] = [run_id, owner, seq]
        for ev in events:
            typ = ev.type
            text = ev.text
            if text is None or typ in SPECIAL_EVENTS:
                return None
            params += (typ, ev.correlation_id, text, ev.created_at)
        sql = _APPEND_SQL.get(n)
        if sql is None:
            # one multi-row INSERT; the first row's run_id is the guard: NULL (-> NOT NULL
            # constraint, the whole statement aborts) unless the run is running and held by
            # `owner`; row k has seq ?3 + k (a seq already taken: the primary key aborts it)
            sql = _APPEND_SQL[n] = (
                "INSERT INTO events(run_id, seq, type, correlation_id, data, created_at) VALUES "
                "((SELECT run_id FROM runs WHERE run_id=?1 AND lease_owner=?2"
                " AND status='running'),?3,?4,?5,?6,?7)"
                + "".join(f",(?1,?3+{k},?{4 * k + 4},?{4 * k + 5},?{4 * k + 6},?{4 * k + 7})"
                          for k in range(1, n)))
        c = self._conn
        cur = self._cursor
        if cur is None:  # one cursor for this statement (Connection.execute makes one per call)
            cur = self._cursor = c.cursor()
        try:
            cur.execute(sql, params)
        except sqlite3.IntegrityError:  # the guard or the seq failed: nothing was written
            self._next_seq.pop(run_id, None)
            if c.in_transaction:
                c.execute("ROLLBACK")
            return None
        except sqlite3.DatabaseError as exc:
            self._next_seq.pop(run_id, None)
            if c.in_transaction:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.DatabaseError:
                    pass
            raise self._db_error(exc) from None
        if cur.rowcount != n:
            self._next_seq.pop(run_id, None)
            return None
        self._next_seq[run_id] = seq + n
        stats = self.stats
        stats["writes"] += 1
        stats["events_appended"] += n
        self._gen += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            self._checkpointer.kick()
        return _RUNNING  # (shared: callers only read a CommitResult)

    def _commit_tx(
        self, c: sqlite3.Connection, run_id: str, owner: str | None, batch: Batch,
        lease_seconds: float, require_running: bool,
    ) -> tuple[CommitResult, tuple[str, float] | None, int]:
        # The run's status and lease holder: known without a read when the last write through
        # this connection was this driver's commit and no other connection has written since
        # (PRAGMA data_version is unchanged); otherwise read from the run row.
        dv = c.execute("PRAGMA data_version").fetchone()[0]
        known = self._known.get(run_id)
        if (known is not None and owner is not None and known[0] == owner
                and known[2] == self._gen and known[3] == dv):
            status, holder = known[1], owner
            held = self._leases.get(run_id)
            if (not (batch.run_update or batch.output_text is not None
                     or batch.hooks_created or batch.waits
                     or batch.hooks_disposed or batch.inbox_consumed)
                    and held is not None and held[0] == owner
                    and held[1] - _now() >= lease_seconds * (2 / 3)
                    and not (require_running and status in TERMINAL)):
                # the step path: nothing but plain events (the run row is not touched)
                fast: list[tuple[Any, ...]] = []
                for ev in batch.events:
                    typ = ev.type
                    if typ in SPECIAL_EVENTS:
                        break
                    text = ev.text
                    fast.append((typ, ev.correlation_id,
                                 dumps(ev.data) if text is None else text, ev.created_at))
                else:
                    self._insert_events(c, run_id, fast)
                    return CommitResult(status), None, dv
        else:
            row = c.execute(_SELECT_HOLD, (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
            status, holder = row
        if owner is not None and holder != owner:
            raise LeaseLostError(f"run {run_id} is now held by {holder}")
        if require_running and status in TERMINAL:
            return CommitResult(status), None, dv
        now = _now()
        upd = batch.run_update
        new_status = upd.get("status")
        result = CommitResult(new_status or status)
        lease: tuple[str, float] | None = None
        sets: list[str] = []
        args: list[Any] = []
        for k, v in upd.items():
            sets.append(f"{k}=?")
            args.append(dumps(v) if k in _JSON_RUN_FIELDS else v)
        if batch.output_text is not None:  # the output, encoded once by the runtime
            sets.append("output=?")
            args.append(batch.output_text)
        if result.status in TERMINAL:
            if new_status is not None or holder is not None:
                sets += ["lease_owner=NULL", "lease_expires_at=NULL", "next_due_at=NULL"]
        elif owner is not None:
            held = self._leases.get(run_id)
            if sets or held is None or held[0] != owner or held[1] - now < lease_seconds * (2 / 3):
                lease = (owner, now + lease_seconds)
                sets.append("lease_expires_at=?")
                args.append(lease[1])
        if sets:
            if "updated_at" not in upd:
                sets.append("updated_at=?")
                args.append(now)
            c.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id=?", (*args, run_id))
        rows: list[tuple[Any, ...]] = []
        hooks_by_corr = {h.correlation_id: h for h in batch.hooks_created}
        for ev in batch.events:
            typ = ev.type
            if typ in SPECIAL_EVENTS:
                if typ == "hook_created" and ev.correlation_id in hooks_by_corr:
                    hook = hooks_by_corr[ev.correlation_id]
                    other = c.execute(
                        "SELECT run_id, correlation_id FROM hooks WHERE token=?", (hook.token,)
                    ).fetchone()
                    if other is not None and tuple(other) != (run_id, hook.correlation_id):
                        result.conflicts[hook.correlation_id] = other[0]
                        rows.append(("hook_conflict", hook.correlation_id,
                                     dumps({"token": hook.token, "conflicting_run_id": other[0]}),
                                     ev.created_at))
                        continue
                    if other is None:
                        c.execute(
                            "INSERT INTO hooks(run_id, correlation_id, token, metadata, created_at)"
                            " VALUES (?,?,?,?,?)",
                            (run_id, hook.correlation_id, hook.token, dumps(hook.metadata),
                             hook.created_at),
                        )
                elif typ in TERMINAL_EVENTS:
                    # the run's remaining live hooks are disposed before its terminal event
                    skip = set(batch.hooks_disposed)
                    for corr, token in c.execute(
                            "SELECT correlation_id, token FROM hooks WHERE run_id=?", (run_id,)
                    ).fetchall():
                        if corr not in skip:
                            rows.append(("hook_disposed", corr, dumps({"token": token}),
                                         ev.created_at))
                    c.execute("DELETE FROM hooks WHERE run_id=?", (run_id,))
            text = ev.text
            rows.append((typ, ev.correlation_id,
                         dumps(ev.data) if text is None else text, ev.created_at))
        self._insert_events(c, run_id, rows)
        for w in batch.waits:
            c.execute(
                "INSERT OR REPLACE INTO waits(run_id, correlation_id, resume_at, status,"
                " created_at, completed_at) VALUES (?,?,?,?,?,?)",
                (run_id, w.correlation_id, w.resume_at, w.status, w.created_at, w.completed_at),
            )
        for corr in batch.hooks_disposed:
            c.execute("DELETE FROM hooks WHERE run_id=? AND correlation_id=?", (run_id, corr))
        for iid in batch.inbox_consumed:
            c.execute("DELETE FROM inbox WHERE id=?", (iid,))
        if result.status in TERMINAL:
            self._dispose_all_hooks(c, run_id, now)
        return result, lease, dv

    def claim(
        self, run_id: str, owner: str, lease_seconds: float, now: float,
        steal_from: str | None = None,
    ) -> RunRecord | None:
        def tx(c: sqlite3.Connection) -> RunRecord | None:
            row = c.execute(f"SELECT {_RUN_COLS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
            run = _run_from_row(row, self.path)
            if run.status in TERMINAL:
                return None
            free = (
                run.lease_owner is None
                or (run.lease_expires_at or 0) < now
                or (steal_from is not None and run.lease_owner == steal_from)
            )
            if not free:
                return None
            c.execute("UPDATE runs SET lease_owner=?, lease_expires_at=? WHERE run_id=?",
                      (owner, now + lease_seconds, run_id))
            self._leases[run_id] = (owner, now + lease_seconds)
            run.lease_owner = owner
            run.lease_expires_at = now + lease_seconds
            return run
        out: RunRecord | None = self._write(tx)
        return out

    def release(self, run_id: str, owner: str, next_due_at: float | None) -> None:
        def tx(c: sqlite3.Connection) -> None:
            due = next_due_at
            if c.execute("SELECT 1 FROM inbox WHERE run_id=? LIMIT 1", (run_id,)).fetchone():
                due = _now()
            c.execute(
                "UPDATE runs SET lease_owner=NULL, lease_expires_at=NULL, next_due_at=?"
                " WHERE run_id=? AND lease_owner=?", (due, run_id, owner),
            )
            self._leases.pop(run_id, None)
        self._write(tx)

    def cancel_run(self, run_id: str, reason: str | None, at: float) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
            if row[0] in TERMINAL:
                return False
            c.execute(
                "UPDATE runs SET status='cancelled', cancel_reason=?, completed_at=?, updated_at=?,"
                " next_due_at=NULL WHERE run_id=?", (reason, at, at, run_id),
            )
            self._dispose_all_hooks(c, run_id, at)
            self._append(c, run_id, "run_cancelled", None, {"reason": reason}, at)
            c.execute("DELETE FROM inbox WHERE run_id=?", (run_id,))
            return True
        out: bool = self._write(tx)
        return out

    def send_hook_payload(self, token: str, payload: Any, at: float) -> HookRecord:
        def tx(c: sqlite3.Connection) -> HookRecord:
            row = c.execute(
                "SELECT h.run_id, h.correlation_id, h.token, h.metadata, h.created_at, r.status"
                " FROM hooks h JOIN runs r ON r.run_id = h.run_id WHERE h.token=?", (token,),
            ).fetchone()
            if row is None or row[5] in TERMINAL:
                raise HookNotFoundError(
                    f"no live hook with token {token!r}: the workflow has not created it yet, "
                    "or it was disposed; check the token or resume later"
                )
            c.execute(
                "INSERT INTO inbox(run_id, correlation_id, token, payload, created_at) VALUES (?,?,?,?,?)",
                (row[0], row[1], token, dumps(payload), at),
            )
            c.execute(
                "UPDATE runs SET next_due_at=? WHERE run_id=? AND (next_due_at IS NULL OR next_due_at>?)",
                (at, row[0], at),
            )
            return HookRecord(row[0], row[1], row[2], self._field(row[3], row[0], "hook metadata"),
                              row[4])
        out: HookRecord = self._write(tx)
        return out

    # -- reads ---------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read(f"SELECT {_RUN_COLS} FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
        return _run_from_row(rows[0], self.path)

    def peek_run(self, run_id: str) -> RunRecord:
        """`get_run` without reading the output (``output`` is None): a status check that does
        not decode a large output."""
        rows = self._read(f"SELECT {_PEEK_COLS} FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
        return _run_from_row(rows[0], self.path)

    def list_runs(self, status: str | None = None) -> list[RunRecord]:
        if status is None:
            rows = self._read(f"SELECT {_RUN_COLS} FROM runs ORDER BY created_at")
        else:
            rows = self._read(f"SELECT {_RUN_COLS} FROM runs WHERE status=? ORDER BY created_at", (status,))
        return [_run_from_row(r, self.path) for r in rows]

    def list_events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        rows = self._read(
            "SELECT seq, run_id, type, correlation_id, data, created_at FROM events"
            " WHERE run_id=? AND seq>? ORDER BY seq", (run_id, after_seq),
        )
        if not rows and after_seq == 0:
            self.get_run(run_id)
        self.stats["events_read"] += len(rows)
        try:
            return [Event(r[0], r[1], r[2], r[3], None if r[4] is None else decode_own(r[4]), r[5])
                    for r in rows]
        except ValueError:  # name the damaged one
            return [Event(r[0], r[1], r[2], r[3], self._field(r[4], run_id, f"event {r[0]}"), r[5])
                    for r in rows]

    def list_steps(self, run_id: str) -> list[StepRecord]:
        """The run's step records in creation order, folded from its ``step_*`` events."""
        self.get_run(run_id)
        rows = self._read(
            "SELECT type, correlation_id, data, created_at FROM events WHERE run_id=? AND type IN"
            " ('step_created','step_started','step_retrying','step_completed','step_failed')"
            " ORDER BY seq", (run_id,),
        )
        try:
            events = [(r[0], r[1], None if r[2] is None else decode_own(r[2]), r[3]) for r in rows]
        except ValueError:  # name the damaged one
            events = [(r[0], r[1], self._field(r[2], run_id, "step event"), r[3]) for r in rows]
        return steps_from_events(run_id, events)

    def list_last_steps(self, run_id: str, key: Callable[[str], Any] | None = None
                        ) -> list[StepRecord]:
        """The record of the last call of each step, grouped by ``key(step_name)`` (default:
        the name), in order of each group's first call (see `world.last_steps`). Reads and
        decodes only the chosen steps' events: a chain of N calls of one step reads 1 step."""
        try:
            groups = self._read(
                "SELECT COALESCE(json_extract(data, '$.step_name'), ''), MIN(seq), MAX(seq)"
                " FROM events WHERE run_id=? AND type='step_created' GROUP BY 1 ORDER BY 2",
                (run_id,))
        except (sqlite3.DatabaseError, WorldCorruptError):  # damaged JSON: the full read names it
            return fold_last_steps(self.list_steps(run_id), key)
        if not groups:
            self.get_run(run_id)  # RunNotFoundError for an unknown run
            return []
        chosen: dict[Any, tuple[int, int]] = {}  # key -> (first seq, last seq)
        for name, first, last in groups:
            if not isinstance(name, str):
                return fold_last_steps(self.list_steps(run_id), key)
            k = name if key is None else key(name)
            prev = chosen.get(k)
            chosen[k] = (first, last) if prev is None else (prev[0], max(prev[1], last))
        if len(chosen) > 200:  # many distinct steps: reading them all costs the same
            return fold_last_steps(self.list_steps(run_id), key)
        seqs = [last for _, last in chosen.values()]
        marks = ",".join("?" * len(seqs))
        corr_of = dict(self._read(  # created seq -> correlation id (primary key lookups)
            f"SELECT seq, correlation_id FROM events WHERE run_id=? AND seq IN ({marks})",
            (run_id, *seqs)))
        corrs = set(corr_of.values())
        if len(corr_of) != len(seqs) or len(corrs) != len(seqs) or None in corrs:
            return fold_last_steps(self.list_steps(run_id), key)
        # a step's events all come at or after its step_created: scan from the first chosen one
        rows = self._read(
            "SELECT type, correlation_id, data, created_at FROM events WHERE run_id=? AND"
            f" seq>=? AND correlation_id IN ({marks}) AND type IN ('step_created',"
            "'step_started','step_retrying','step_completed','step_failed') ORDER BY seq",
            (run_id, min(seqs), *corrs))
        try:
            events = [(r[0], r[1], None if r[2] is None else decode_own(r[2]), r[3]) for r in rows]
        except ValueError:  # name the damaged one
            events = [(r[0], r[1], self._field(r[2], run_id, "step event"), r[3]) for r in rows]
        recs = {rec.correlation_id: rec for rec in steps_from_events(run_id, events)}
        if len(recs) != len(seqs):  # not one step_created per id: fold everything
            return fold_last_steps(self.list_steps(run_id), key)
        return [recs[corr_of[last]] for _, last in sorted(chosen.values())]

    def list_waits(self, run_id: str) -> list[WaitRecord]:
        rows = self._read(
            "SELECT run_id, correlation_id, resume_at, status, created_at, completed_at FROM waits"
            " WHERE run_id=?", (run_id,),
        )
        return [WaitRecord(*r) for r in rows]

    def list_hooks(self, run_id: str | None = None) -> list[HookRecord]:
        sql = "SELECT run_id, correlation_id, token, metadata, created_at FROM hooks"
        rows = self._read(sql + " WHERE run_id=?", (run_id,)) if run_id else self._read(sql)
        return [HookRecord(r[0], r[1], r[2], self._field(r[3], r[0], "hook metadata"), r[4])
                for r in rows]

    def get_hook_by_token(self, token: str) -> HookRecord | None:
        rows = self._read(
            "SELECT run_id, correlation_id, token, metadata, created_at FROM hooks WHERE token=?",
            (token,),
        )
        if not rows:
            return None
        r = rows[0]
        return HookRecord(r[0], r[1], r[2], self._field(r[3], r[0], "hook metadata"), r[4])

    def read_inbox(self, run_id: str) -> list[InboxItem]:
        rows = self._read(
            "SELECT id, run_id, correlation_id, token, payload, created_at FROM inbox"
            " WHERE run_id=? ORDER BY id", (run_id,),
        )
        return [InboxItem(r[0], r[1], r[2], r[3], self._field(r[4], run_id, "hook payload"), r[5])
                for r in rows]

    def due_runs(self, now: float, limit: int = 100) -> list[RunRecord]:
        rows = self._read(
            f"SELECT {_RUN_COLS} FROM runs WHERE status IN ('pending','running') AND ("
            " (lease_owner IS NULL AND next_due_at IS NOT NULL AND next_due_at<=?)"
            " OR lease_owner IS NOT NULL) ORDER BY created_at",
            (now,),
        )
        out = []
        for r in rows:
            try:
                run = _run_from_row(r, self.path)
            except WorldCorruptError as exc:  # one damaged run must not block the others
                log.warning("%s", exc)
                continue
            if run.lease_owner is not None and not (
                (run.lease_expires_at or 0) < now or owner_is_dead(run.lease_owner)
            ):
                continue
            out.append(run)
            if len(out) >= limit:
                break
        return out

    def close(self) -> None:
        """Close the SQLite connection (and stop the background checkpoints)."""
        self._checkpointer.stop()
        with self._lock:
            self._conn.close()
