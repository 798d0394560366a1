"""MemoryWorld: an in-process World (dicts under a lock) for tests and single-process use."""

from __future__ import annotations

import collections
import copy
import threading
import time
from typing import Any

from durable._internal.errors import HookNotFoundError, LeaseLostError, RunNotFoundError
from durable._internal.leases import owner_is_dead
from durable._internal.serialization import decode_own
from durable._internal.world import (
    SPECIAL_EVENTS,
    STEP_EVENTS,
    TERMINAL,
    TERMINAL_EVENTS,
    Batch,
    CommitResult,
    Event,
    HookRecord,
    InboxItem,
    NewEvent,
    RunRecord,
    StepRecord,
    WaitRecord,
    copy_record,
    steps_from_events,
)

_now = getattr(time.time, "__wrapped__", time.time)  # the real clock, even under the sandbox

class MemoryWorld:
    """A World kept in memory (lost when the process exits). Same semantics as SqliteWorld.

    Events are kept as JSON text when the runtime gives it (else a copy of the data); step
    records are folded from the step events; reads return fresh objects."""

    def __init__(self) -> None:
        self.stats: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        # events as (seq, type, correlation_id, data, text, created_at): ``text`` (JSON) when
        # the runtime gave it, decoded on read; reads always return fresh objects
        self._events: dict[str, list[tuple[int, str, str | None, Any, str | None, float]]] = {}
        self._waits: dict[str, dict[str, WaitRecord]] = {}
        self._hooks: dict[str, HookRecord] = {}  # token -> hook
        self._inbox: dict[str, list[InboxItem]] = {}
        self._seq = 0
        self._inbox_seq = 0
        self._output_text: dict[str, str] = {}  # run_id -> its output as JSON (see `_copy_run`)

    def __repr__(self) -> str:
        return f"MemoryWorld(runs={len(self._runs)})"

    # -- helpers -------------------------------------------------------------------------
    def _append(self, run_id: str, ev: NewEvent) -> None:
        self._seq += 1
        text = ev.text
        self._events[run_id].append((self._seq, ev.type, ev.correlation_id,
                                     copy.deepcopy(ev.data) if text is None else None, text,
                                     ev.created_at))
        self.stats["events_appended"] += 1

    def _copy_run(self, run: RunRecord) -> RunRecord:
        """A fresh copy of a run record (its output decoded from its text when kept as one)."""
        rec = copy.deepcopy(run)
        text = self._output_text.get(run.run_id)
        if text is not None:
            rec.output = decode_own(text)
        return rec

    def _run(self, run_id: str) -> RunRecord:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFoundError(f"unknown run id {run_id!r}: no such run in this world")
        return run

    def _dispose_all_hooks(self, run_id: str, at: float) -> None:
        for token, hook in list(self._hooks.items()):
            if hook.run_id == run_id:
                del self._hooks[token]
                self._append(run_id, NewEvent("hook_disposed", hook.correlation_id, {"token": token}, at))

    # -- writes --------------------------------------------------------------------------
    def create_run(self, run: RunRecord, owner: str | None, lease_seconds: float) -> None:
        with self._lock:
            if run.run_id in self._runs:
                raise ValueError(f"run id {run.run_id!r} already exists: choose another run_id")
            rec = copy_record(run)
            if owner is not None:
                rec.lease_owner = owner
                rec.lease_expires_at = _now() + lease_seconds
            self._runs[run.run_id] = rec
            self._events[run.run_id] = []
            self._waits[run.run_id] = {}
            self._append(
                run.run_id,
                NewEvent(
                    "run_created", None,
                    {"workflow_name": run.workflow_name, "input": run.input,
                     "attributes": run.attributes},
                    run.created_at,
                ),
            )
            self.stats["writes"] += 1

    def commit(
        self, run_id: str, owner: str | None, batch: Batch, lease_seconds: float,
        require_running: bool = True,
    ) -> CommitResult:
        with self._lock:
            run = self._run(run_id)
            if owner is not None and run.lease_owner != owner:
                raise LeaseLostError(f"run {run_id} is now held by {run.lease_owner}")
            result = CommitResult(run.status)
            if run.status in TERMINAL and require_running:
                return result
            now = _now()
            hooks_by_corr = {h.correlation_id: h for h in batch.hooks_created}
            log = self._events[run_id]
            fast = 0
            for ev in batch.events:
                text = ev.text
                if text is not None and ev.type not in SPECIAL_EVENTS:
                    # the step path: append the JSON text as it is
                    self._seq += 1
                    log.append((self._seq, ev.type, ev.correlation_id, None, text, ev.created_at))
                    fast += 1
                    continue
                if ev.type == "hook_created" and ev.correlation_id in hooks_by_corr:
                    hook = hooks_by_corr[ev.correlation_id]
                    other = self._hooks.get(hook.token)
                    if other is not None and not (
                        other.run_id == run_id and other.correlation_id == hook.correlation_id
                    ):
                        result.conflicts[hook.correlation_id] = other.run_id
                        self._append(run_id, NewEvent(
                            "hook_conflict", hook.correlation_id,
                            {"token": hook.token, "conflicting_run_id": other.run_id},
                            ev.created_at,
                        ))
                        continue
                    self._hooks[hook.token] = copy_record(hook)
                elif ev.type in TERMINAL_EVENTS:
                    # the run's remaining live hooks are disposed before its terminal event
                    skip = set(batch.hooks_disposed)
                    for token, hook in list(self._hooks.items()):
                        if hook.run_id == run_id:
                            del self._hooks[token]
                            if hook.correlation_id not in skip:
                                self._append(run_id, NewEvent("hook_disposed", hook.correlation_id,
                                                              {"token": token}, ev.created_at))
                self._append(run_id, ev)
            self.stats["events_appended"] += fast
            for w in batch.waits:
                self._waits[run_id][w.correlation_id] = copy_record(w)
            for corr in batch.hooks_disposed:
                for token, hook in list(self._hooks.items()):
                    if hook.run_id == run_id and hook.correlation_id == corr:
                        del self._hooks[token]
            if batch.inbox_consumed:
                ids = set(batch.inbox_consumed)
                self._inbox[run_id] = [i for i in self._inbox.get(run_id, []) if i.id not in ids]
            for k, v in batch.run_update.items():
                setattr(run, k, v if v is None or isinstance(v, float | int | str) else copy.deepcopy(v))
            if "output" in batch.run_update:
                self._output_text.pop(run_id, None)
            if batch.output_text is not None:  # the output, encoded once by the runtime: kept
                run.output = None               # as its text, decoded by each read
                self._output_text[run_id] = batch.output_text
            if run.status in TERMINAL:
                self._dispose_all_hooks(run_id, now)
                run.lease_owner = None
                run.lease_expires_at = None
                run.next_due_at = None
            elif owner is not None:
                run.lease_expires_at = now + lease_seconds
            run.updated_at = now
            self.stats["writes"] += 1
            result.status = run.status
            return result

    def claim(
        self, run_id: str, owner: str, lease_seconds: float, now: float,
        steal_from: str | None = None,
    ) -> RunRecord | None:
        with self._lock:
            run = self._run(run_id)
            if run.status in TERMINAL:
                return None
            free = (
                run.lease_owner is None
                or (run.lease_expires_at or 0) < now
                or (steal_from is not None and run.lease_owner == steal_from)
            )
            if not free:
                return None
            run.lease_owner = owner
            run.lease_expires_at = now + lease_seconds
            self.stats["writes"] += 1
            return self._copy_run(run)

    def release(self, run_id: str, owner: str, next_due_at: float | None) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.lease_owner != owner:
                return
            run.lease_owner = None
            run.lease_expires_at = None
            run.next_due_at = _now() if self._inbox.get(run_id) else next_due_at
            self.stats["writes"] += 1

    def cancel_run(self, run_id: str, reason: str | None, at: float) -> bool:
        with self._lock:
            run = self._run(run_id)
            if run.status in TERMINAL:
                return False
            run.status = "cancelled"
            run.cancel_reason = reason
            run.completed_at = at
            run.updated_at = at
            run.next_due_at = None
            self._dispose_all_hooks(run_id, at)
            self._append(run_id, NewEvent("run_cancelled", None, {"reason": reason}, at))
            self._inbox.pop(run_id, None)
            self.stats["writes"] += 1
            return True

    def send_hook_payload(self, token: str, payload: Any, at: float) -> HookRecord:
        with self._lock:
            hook = self._hooks.get(token)
            if hook is None or self._runs[hook.run_id].status in TERMINAL:
                raise HookNotFoundError(
                    f"no live hook with token {token!r}: the workflow has not created it yet, "
                    "or it was disposed; check the token or resume later"
                )
            self._inbox_seq += 1
            self._inbox.setdefault(hook.run_id, []).append(
                InboxItem(self._inbox_seq, hook.run_id, hook.correlation_id, token,
                          copy.deepcopy(payload), at)
            )
            run = self._runs[hook.run_id]
            if run.next_due_at is None or run.next_due_at > at:
                run.next_due_at = at
            self.stats["writes"] += 1
            return copy_record(hook)

    # -- reads ---------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            return self._copy_run(self._run(run_id))

    def peek_run(self, run_id: str) -> RunRecord:
        """`get_run` without the output (``output`` is None): a cheap status check."""
        with self._lock:
            run = self._run(run_id)
            output, run.output = run.output, None
            try:
                return copy.deepcopy(run)
            finally:
                run.output = output

    def list_runs(self, status: str | None = None) -> list[RunRecord]:
        with self._lock:
            return [self._copy_run(r) for r in self._runs.values()
                    if status is None or r.status == status]

    def list_events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        with self._lock:
            self._run(run_id)
            evs = [Event(seq, run_id, typ, corr,
                         copy.deepcopy(data) if text is None else decode_own(text), at)
                   for seq, typ, corr, data, text, at in self._events[run_id] if seq > after_seq]
            self.stats["events_read"] += len(evs)
            return evs

    def list_steps(self, run_id: str) -> list[StepRecord]:
        with self._lock:
            self._run(run_id)
            rows = [(typ, corr, copy.deepcopy(data) if text is None else decode_own(text), at)
                    for _, typ, corr, data, text, at in self._events[run_id]
                    if typ in STEP_EVENTS]
            return steps_from_events(run_id, rows)

    def list_waits(self, run_id: str) -> list[WaitRecord]:
        with self._lock:
            self._run(run_id)
            return [copy_record(w) for w in self._waits[run_id].values()]

    def list_hooks(self, run_id: str | None = None) -> list[HookRecord]:
        with self._lock:
            return [copy_record(h) for h in self._hooks.values()
                    if run_id is None or h.run_id == run_id]

    def get_hook_by_token(self, token: str) -> HookRecord | None:
        with self._lock:
            h = self._hooks.get(token)
            return copy_record(h) if h is not None else None

    def read_inbox(self, run_id: str) -> list[InboxItem]:
        with self._lock:
            return [copy.deepcopy(i) for i in self._inbox.get(run_id, [])]

    def due_runs(self, now: float, limit: int = 100) -> list[RunRecord]:
        with self._lock:
            out = []
            for r in self._runs.values():
                if r.status in TERMINAL:
                    continue
                if r.lease_owner is not None:
                    expired = (r.lease_expires_at or 0) < now or owner_is_dead(r.lease_owner)
                    if not expired:
                        continue
                    out.append(self._copy_run(r))
                elif r.next_due_at is not None and r.next_due_at <= now:
                    out.append(self._copy_run(r))
                if len(out) >= limit:
                    break
            return out

    def close(self) -> None:
        """Nothing to close for a memory world."""
