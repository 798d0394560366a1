"""The side-effect recorder that scenario step bodies call, and the recorded `Trace`.

Step bodies wrap their work in `span(name)` (a plain context manager, usable in sync and async
code, from any thread or task). Each span writes a `start` event and, when the body leaves the
block, an `end` event with `ok=True/False`. Where the events go:

- the recorder installed with `recording()` / `use(recorder)` (in-memory, thread safe): the one
  of the current context (asyncio tasks inherit it, so two cells driven concurrently in one
  process keep separate traces), else the one installed last in this process, else
- the append-only JSON-lines file named by the environment variable `WFBENCH_TRACE_FILE`
  (`FileRecorder`), so the processes of a durability scenario (the one that is killed, the worker
  that recovers) all append to one file; each line is written with one `write()` on an
  `O_APPEND` descriptor, so lines from several processes never interleave;
- nowhere, when neither is set (bodies then run as plain code).

A span keeps the recorder that was active when it started, so a loser of a race that finishes
after its run was checked never writes into the next scenario's recorder.

`Trace` is the read side: counts of starts/completions per name, the largest number of
completed spans in flight at once, first start / last end, and ordering/gap queries that
`scenarios.check` compares with a scenario's `TraceExpect`.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ENV_VAR = "WFBENCH_TRACE_FILE"
"""Environment variable naming the append-only trace file used across processes."""

EventKind = Literal["start", "end"]


@dataclass(frozen=True)
class TraceEvent:
    """One recorded event. `seq` is the position in the recorder (file line order)."""

    seq: int
    kind: EventKind
    name: str
    span: str
    t: float
    pid: int
    ok: bool | None = None
    data: Any = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "name": self.name,
                "span": self.span,
                "t": self.t,
                "pid": self.pid,
                "ok": self.ok,
                "data": self.data,
            },
            default=repr,
        )


class Recorder:
    """In-memory, thread-safe recorder (one per scenario run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[TraceEvent] = []

    def record(self, kind: EventKind, name: str, span: str, ok: bool | None = None, data: Any = None) -> None:
        with self._lock:
            self._events.append(
                TraceEvent(len(self._events), kind, name, span, time.time(), os.getpid(), ok, data)
            )

    def events(self) -> list[TraceEvent]:
        with self._lock:
            return list(self._events)

    def trace(self) -> Trace:
        """The events recorded so far, as a `Trace`."""
        return Trace(self.events())


class FileRecorder(Recorder):
    """Appends one JSON line per event to `path` (shared by several processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)

    def record(self, kind: EventKind, name: str, span: str, ok: bool | None = None, data: Any = None) -> None:
        line = TraceEvent(0, kind, name, span, time.time(), os.getpid(), ok, data).to_json() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def events(self) -> list[TraceEvent]:
        return load_events(self.path)


def load_events(path: str | os.PathLike[str]) -> list[TraceEvent]:
    """Read a trace file; a torn last line (a process killed mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    out: list[TraceEvent] = []
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.append(
            TraceEvent(len(out), d["kind"], d["name"], d["span"], d["t"], d["pid"], d.get("ok"), d.get("data"))
        )
    return out


def load(path: str | os.PathLike[str]) -> Trace:
    """The `Trace` recorded in a trace file."""
    return Trace(load_events(path))


_active_lock = threading.Lock()
_active: Recorder | None = None
_ctx_active: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("wfbench_trace", default=None)
_file_recorders: dict[str, FileRecorder] = {}


def active() -> Recorder | None:
    """The recorder step bodies write to now (see the module docstring), or None.

    Order: the recorder installed by `use()` in this context (tasks inherit it), else the one
    most recently installed in this process (threads and tasks started elsewhere), else the
    `WFBENCH_TRACE_FILE` file."""
    rec = _ctx_active.get()
    if rec is not None:
        return rec
    if _active is not None:
        return _active
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    with _active_lock:
        rec = _file_recorders.get(path)
        if rec is None:
            rec = _file_recorders[path] = FileRecorder(path)
        return rec


@contextmanager
def use(recorder: Recorder | None) -> Iterator[Recorder | None]:
    """Install `recorder` as this process's active recorder for the `with` block."""
    global _active
    with _active_lock:
        previous, _active = _active, recorder
    token = _ctx_active.set(recorder)
    try:
        yield recorder
    finally:
        _ctx_active.reset(token)
        with _active_lock:
            _active = previous


@contextmanager
def recording() -> Iterator[Recorder]:
    """A fresh in-memory recorder, active for the `with` block."""
    rec = Recorder()
    with use(rec):
        yield rec


@contextmanager
def span(name: str, data: Any = None) -> Iterator[None]:
    """Record that the body named `name` started and ended (ok or by an exception).

    BaseExceptions (cancellation, a runtime's suspension signal) end the span with ok=False.
    """
    rec = active()
    if rec is None:
        yield
        return
    sid = uuid.uuid4().hex
    rec.record("start", name, sid, None, data)
    ok = False
    try:
        yield
        ok = True
    finally:
        rec.record("end", name, sid, ok)


def mark(name: str, data: Any = None) -> None:
    """An instantaneous completed span (start and end at once)."""
    with span(name, data):
        pass


@dataclass(frozen=True)
class Span:
    """A started span; `end_seq`/`end_t` are None when it never ended (e.g. killed)."""

    name: str
    span: str
    start_seq: int
    start_t: float
    pid: int
    end_seq: int | None = None
    end_t: float | None = None
    ok: bool | None = None


class Trace:
    """Read-only view of recorded events with the queries `check` needs.

    Name patterns (`pattern` arguments) are fnmatch globs: "copy-*" matches copy-1, copy-2...

    Cost is linear in the number of spans: spans are indexed by name once; a pattern without
    glob characters is a dict lookup, a glob is matched against the distinct names only (never
    against every span), and each pattern's spans are computed once. `stats` counts the work
    ("fnmatch": fnmatch calls, "spans_scanned": spans visited by queries, "matches": patterns
    resolved) so tests can assert linearity without timing anything.
    """

    def __init__(self, events: Iterable[TraceEvent]) -> None:
        self.events: list[TraceEvent] = sorted(events, key=lambda e: e.seq)
        spans: dict[str, Span] = {}
        order: list[str] = []
        for e in self.events:
            if e.kind == "start":
                spans[e.span] = Span(e.name, e.span, e.seq, e.t, e.pid)
                order.append(e.span)
            elif e.span in spans:
                s = spans[e.span]
                spans[e.span] = Span(s.name, s.span, s.start_seq, s.start_t, s.pid, e.seq, e.t, e.ok)
        self.spans: list[Span] = [spans[k] for k in order]
        self._by_name: dict[str, list[Span]] = {}
        for s in self.spans:  # in order of start, names in order of first start
            self._by_name.setdefault(s.name, []).append(s)
        self._matched: dict[str, list[Span]] = {}
        self.stats: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Trace({len(self.events)} events, {len(self.spans)} spans, {len(self._by_name)} names)"

    def names(self) -> list[str]:
        """Distinct span names in order of first start."""
        return list(self._by_name)

    def _match(self, pattern: str) -> list[Span]:
        """The spans whose name matches `pattern`, in order of start (computed once)."""
        hit = self._matched.get(pattern)
        if hit is not None:
            return hit
        self.stats["matches"] += 1
        if not _GLOB_CHARS.intersection(pattern):
            found = self._by_name.get(pattern, [])
        else:
            groups = []
            for name, group in self._by_name.items():
                self.stats["fnmatch"] += 1
                if name == pattern or fnmatch.fnmatchcase(name, pattern):
                    groups.append(group)
            found = groups[0] if len(groups) == 1 else sorted(
                (s for g in groups for s in g), key=lambda s: s.start_seq)
        self.stats["spans_scanned"] += len(found)
        self._matched[pattern] = found
        return found

    def matching_names(self, pattern: str) -> list[str]:
        """The distinct names that `pattern` matches (in order of first start)."""
        if not _GLOB_CHARS.intersection(pattern):
            return [pattern] if pattern in self._by_name else []
        out = []
        for name in self._by_name:
            self.stats["fnmatch"] += 1
            if name == pattern or fnmatch.fnmatchcase(name, pattern):
                out.append(name)
        return out

    def runs(self, pattern: str) -> int:
        """How many spans matching `pattern` started."""
        return len(self._match(pattern))

    def completed(self, pattern: str) -> int:
        """How many spans matching `pattern` ended normally (ok=True)."""
        return sum(1 for s in self._match(pattern) if s.ok)

    def ended(self, pattern: str) -> int:
        """How many spans matching `pattern` ended (normally or not)."""
        return sum(1 for s in self._match(pattern) if s.end_seq is not None)

    def max_in_flight(self, pattern: str = "*") -> int:
        """Largest number of ended spans matching `pattern` open at the same moment (by seq)."""
        points: list[tuple[int, int]] = []
        for s in self._match(pattern):
            if s.end_seq is None:
                continue
            points.append((s.start_seq, 1))
            points.append((s.end_seq, -1))
        cur = best = 0
        for _, d in sorted(points):
            cur += d
            best = max(best, cur)
        return best

    def first_start(self, pattern: str) -> Span | None:
        m = self._match(pattern)
        return min(m, key=lambda s: s.start_seq) if m else None

    def last_end(self, pattern: str) -> Span | None:
        m = [s for s in self._match(pattern) if s.end_seq is not None]
        return max(m, key=lambda s: s.end_seq or 0) if m else None

    def summary(self) -> dict[str, str]:
        """name -> "runs/completed" (for messages; one pass over the spans)."""
        return {n: f"{len(g)}/{sum(1 for s in g if s.ok)}" for n, g in self._by_name.items()}


_GLOB_CHARS = frozenset("*?[")
