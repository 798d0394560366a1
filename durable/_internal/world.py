"""The World interface: where `durable` keeps runs, events, steps, waits, hooks and the hook
inbox — plus the record types every world returns.

A world is synchronous (SQLite and memory calls are fast and local; the runtime calls them from
the event loop). Writes happen through a few atomic operations only:

- ``create_run`` — insert a run with its ``run_created`` event (optionally leased).
- ``commit(run_id, owner, batch)`` — the driver's one transaction per progress point: append
  events, upsert wait records, create/dispose hooks, consume inbox items, update the run
  (status/output/error) and renew the lease. Checks the lease; returns the run status after.
  Step records are not written separately: the ``step_*`` events carry all their data, and
  ``list_steps`` folds them (`steps_from_events`), so a step costs only its events. An event
  may come with its data already encoded (``NewEvent.text``, ``data`` None): a JSON store
  writes the text, others decode it; likewise the run's output (``Batch.output_text``).
  A world may renew a lease lazily (when a third of it has passed) as long as every commit
  checks it. When the batch ends the run, the run's remaining live hooks are disposed
  (``hook_disposed``) before the terminal event.
- ``claim`` / ``release`` — leases: a driver's time-limited claim on a run.
- ``cancel_run`` — from any process: run -> cancelled, hooks disposed.
- ``send_hook_payload`` — from any process: put a payload for a live hook into its run's
  inbox (the owning driver moves it into the log as ``hook_received`` when it delivers it, so
  the log order is the delivery order).

Reads: ``get_run``, ``list_runs``, ``list_events``, ``list_steps``, ``list_waits``,
``list_hooks``, ``get_hook_by_token``, ``read_inbox``, ``due_runs``; optionally
``list_last_steps(run_id, key)`` (the last call of each step: see `last_steps`, which folds
``list_steps`` for a world without it) and ``peek_run(run_id)`` (`get_run` with ``output``
None, not read: see `peek_run`).

A Postgres world implements the same methods with the same transactions (``SELECT ... FOR
UPDATE`` on the run row in ``commit``). Every world has ``stats: Counter[str]`` with "writes"
(committed write transactions), "events_appended", "events_read"; the runtime adds
"body_executions" and "replays" to the same Counter.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

TERMINAL = ("completed", "failed", "cancelled")
RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled")


@dataclass
class RunRecord:
    """One run. ``input`` is ``{"args": [...], "kwargs": {...}}`` (JSON values)."""

    run_id: str
    workflow_name: str
    entrypoint: str
    status: str
    input: Any
    output: Any = None
    error: dict[str, Any] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    next_due_at: float | None = None
    cancel_reason: str | None = None


@dataclass
class Event:
    """One append-only record of a run's log. ``seq`` orders events (ascending)."""

    seq: int
    run_id: str
    type: str
    correlation_id: str | None
    data: Any
    created_at: float


@dataclass
class StepRecord:
    """A step operation of a run; ``status`` pending|running|completed|failed."""

    run_id: str
    correlation_id: str
    step_name: str
    status: str
    attempt: int
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float | None = None
    completed_at: float | None = None
    retry_after: float | None = None
    created_at: float = 0.0


@dataclass
class WaitRecord:
    """A durable sleep of a run; ``status`` waiting|completed."""

    run_id: str
    correlation_id: str
    resume_at: float
    status: str
    created_at: float = 0.0
    completed_at: float | None = None


@dataclass
class HookRecord:
    """A live hook (existence means active; disposed hooks are deleted). Awaitable (gives
    itself), so ``get_hook_by_token`` can be used with or without ``await``."""

    run_id: str
    correlation_id: str
    token: str
    metadata: Any = None
    created_at: float = 0.0

    def __await__(self) -> Generator[Any, None, HookRecord]:
        if False:  # pragma: no cover - makes this a generator
            yield None
        return self


@dataclass
class InboxItem:
    """A hook payload sent by `resume` and not yet delivered to the workflow."""

    id: int
    run_id: str
    correlation_id: str
    token: str
    payload: Any
    created_at: float


@dataclass(slots=True)
class NewEvent:
    """An event to append (the world assigns ``seq``). ``text``, when given, is ``data``
    already encoded as JSON (the runtime encodes each value once; a world that stores JSON
    writes ``text`` as is instead of encoding ``data`` again)."""

    type: str
    correlation_id: str | None
    data: Any
    created_at: float
    text: str | None = None


@dataclass
class Batch:
    """Everything one `commit` writes atomically."""

    events: list[NewEvent] = field(default_factory=list)
    waits: list[WaitRecord] = field(default_factory=list)  # upserts
    hooks_created: list[HookRecord] = field(default_factory=list)
    hooks_disposed: list[str] = field(default_factory=list)  # correlation ids
    inbox_consumed: list[int] = field(default_factory=list)
    run_update: dict[str, Any] = field(default_factory=dict)  # status/output/error/started_at/..
    # the run's output already encoded as JSON (then `run_update` has no "output"): the runtime
    # encodes a run's output once; a JSON store writes this text as is, others decode it
    output_text: str | None = None

    def empty(self) -> bool:
        return not (
            self.events or self.waits or self.hooks_created
            or self.hooks_disposed or self.inbox_consumed or self.run_update
            or self.output_text is not None
        )


@dataclass
class CommitResult:
    """What `commit` returns: run status after the write and hook tokens that conflicted
    (a ``hook_conflict`` event was appended for each instead of ``hook_created``)."""

    status: str
    conflicts: dict[str, str] = field(default_factory=dict)  # corr id -> conflicting run id


@runtime_checkable
class World(Protocol):
    """The storage interface of the durable runtime (see module docstring)."""

    stats: collections.Counter[str]

    def create_run(self, run: RunRecord, owner: str | None, lease_seconds: float) -> None: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def list_runs(self, status: str | None = None) -> list[RunRecord]: ...

    def list_events(self, run_id: str, after_seq: int = 0) -> list[Event]: ...

    def list_steps(self, run_id: str) -> list[StepRecord]: ...

    def list_waits(self, run_id: str) -> list[WaitRecord]: ...

    def list_hooks(self, run_id: str | None = None) -> list[HookRecord]: ...

    def get_hook_by_token(self, token: str) -> HookRecord | None: ...

    def read_inbox(self, run_id: str) -> list[InboxItem]: ...

    def commit(
        self, run_id: str, owner: str | None, batch: Batch, lease_seconds: float,
        require_running: bool = True,
    ) -> CommitResult: ...

    def claim(
        self, run_id: str, owner: str, lease_seconds: float, now: float,
        steal_from: str | None = None,
    ) -> RunRecord | None: ...

    def release(self, run_id: str, owner: str, next_due_at: float | None) -> None: ...

    def due_runs(self, now: float, limit: int = 100) -> list[RunRecord]: ...

    def cancel_run(self, run_id: str, reason: str | None, at: float) -> bool: ...

    def send_hook_payload(self, token: str, payload: Any, at: float) -> HookRecord: ...

    def close(self) -> None: ...


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """Compact JSON for storage of already-JSON values."""
    return _ENCODE(value)


def copy_record(rec: Any) -> Any:
    """A shallow copy of a record dataclass (worlds never hand out their internal objects)."""
    new = object.__new__(type(rec))
    new.__dict__.update(rec.__dict__)
    return new


def last_steps(world: Any, run_id: str, key: Callable[[str], Any] | None = None
               ) -> list[StepRecord]:
    """The record of the last call of each step of a run, grouped by ``key(step_name)``
    (default: the name), in the order of each group's first call — what folding
    `list_steps` into ``{key(name): record}`` gives. Uses the world's ``list_last_steps``
    when it has one (SqliteWorld reads only those steps' events), else folds `list_steps`."""
    fn = getattr(world, "list_last_steps", None)
    if fn is not None:
        out: list[StepRecord] = fn(run_id, key)
        return out
    return fold_last_steps(world.list_steps(run_id), key)


def peek_run(world: Any, run_id: str) -> RunRecord:
    """The run's record without its output (``output`` None): the world's ``peek_run`` when
    it has one (it does not read or decode the output), else `get_run`'s record."""
    fn = getattr(world, "peek_run", None)
    if fn is not None:
        rec: RunRecord = fn(run_id)
        return rec
    rec = world.get_run(run_id)
    rec.output = None
    return rec


def fold_last_steps(records: list[StepRecord], key: Callable[[str], Any] | None = None
                    ) -> list[StepRecord]:
    """`records` (in creation order) reduced to the last one per ``key(step_name)``, in the
    order of each key's first record."""
    last: dict[Any, StepRecord] = {}
    for rec in records:  # a dict keeps a key at its first insertion: first-call order
        last[rec.step_name if key is None else key(rec.step_name)] = rec
    return list(last.values())


STEP_EVENTS = ("step_created", "step_started", "step_retrying", "step_completed", "step_failed")
TERMINAL_EVENTS = ("run_completed", "run_failed", "run_cancelled")
# events a world does more for than append them (hook tokens, run endings): never on the
# plain step path
SPECIAL_EVENTS = frozenset(("hook_created", *TERMINAL_EVENTS))


def steps_from_events(run_id: str, events: list[tuple[str, str | None, Any, float]]
                      ) -> list[StepRecord]:
    """The step records of a run, folded from its ``step_*`` events (type, correlation id,
    data, created_at) in log order — the same records the runtime upserts with each event:
    created -> pending, started -> running (attempt n; ``started_at`` is the first start),
    retrying -> pending (error, retry_after), completed (output) / failed (error)."""
    recs: dict[str, StepRecord] = {}
    for typ, corr, d, at in events:
        if corr is None:
            continue
        d = d or {}
        if typ == "step_created":
            recs[corr] = StepRecord(run_id, corr, d.get("step_name", ""), "pending", 0,
                                    input=d.get("input"), created_at=at)
            continue
        rec = recs.get(corr)
        if rec is None:
            continue
        if typ == "step_started":
            rec.status = "running"
            rec.attempt = int(d.get("attempt", rec.attempt + 1))
            if rec.started_at is None:
                rec.started_at = at
            rec.retry_after = None
        elif typ == "step_retrying":
            rec.status = "pending"
            rec.attempt = int(d.get("attempt", rec.attempt))
            rec.error = d.get("error")
            rec.retry_after = d.get("retry_after")
        elif typ == "step_completed":
            rec.status = "completed"
            rec.output = d.get("result")
            rec.completed_at = at
        elif typ == "step_failed":
            rec.status = "failed"
            rec.error = d.get("error")
            rec.completed_at = at
    return list(recs.values())
