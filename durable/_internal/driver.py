"""The run driver: executes one run of a workflow.

A driver holds the run's lease. If the run has a log (another process started it), the driver
first *replays*: it runs the body from the top and feeds the recorded results back in log
order, checking every call against the log by position (kind, name, arguments); a mismatch is a
NondeterminismError and the run fails. Then — and from the start for a fresh run — it runs
*live*: the body coroutine keeps running on its private BodyLoop; each operation the body calls
is journaled and executed, and each result is delivered back. Per progress point there is one
world commit: the delivered result (``step_completed``) together with the operations the body
called after receiving it (``step_created`` + ``step_started`` of the next step), so a chain
of N steps costs about N commits and no replay. That commit happens before the next step's
body runs: a completed step is durable before anything after it starts.

The hot path (profiled; see /work/notes/perf.md): when the body waits on exactly one step and
nothing else is pending (no other step in flight, no timer, no live hook), the driver runs that
step *inline* — awaited directly in the driver's task, under its own contextvars.Context —
instead of as a task plus two trips through the host loop; a lease heartbeat timer is armed
only if the step really waits. Values are JSON-encoded once (events carry their text); the
receiver's copy of a flat value (scalars, a list or a dict of scalars) is made directly rather
than by decoding that text (`serialization.copy_plain`: the same value). The chain yields to
the host loop every few milliseconds, and the lease is renewed by time, not per step. Steps called together (gather) or next to a sleep/hook run as tasks, concurrently.

Delivery discipline (what makes replay faithful): results are delivered one at a time, and the
body is pumped until idle after each; the log records deliveries in that order, and creations
right after the delivery that caused them.

Correlation ids are positional: ``step_<n>``, ``wait_<n>``, ``hook_<n>``, with one counter per
run in call order (deterministic also under asyncio.gather: the calls happen in argument order).

Steps are at-least-once: a step in flight when its process died is executed again by the process
that recovers the run (its ``step_id``/correlation id is the idempotency key); a completed step is
never executed again.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime as _datetime_mod
import json
import logging
import random as _random
import time as _time_mod
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from durable._internal import sandbox
from durable._internal.bodyloop import BodyLoop
from durable._internal.context import (
    CURRENT_BODY,
    CURRENT_STEP,
    CURRENT_STEP_WORKFLOW,
    LazyStepMetadata,
    WorkflowMetadata,
)
from durable._internal.durations import parse_seconds, to_timestamp
from durable._internal.errors import (
    FatalError,
    HookConflictError,
    LeaseLostError,
    NondeterminismError,
    RetryableError,
    WorldCorruptError,
    WorldWriteError,
)
from durable._internal.leases import retire_owner
from durable._internal.registry import StepFunction, WorkflowFunction
from durable._internal.serialization import (
    NOT_PLAIN,
    copy_call,
    copy_plain,
    decode_own,
    encode,
    encode_call,
    error_from_dict,
    error_to_dict,
)
from durable._internal.world import (
    TERMINAL,
    Batch,
    CommitResult,
    Event,
    HookRecord,
    NewEvent,
    RunRecord,
    WaitRecord,
    World,
)

log = logging.getLogger("durable")
_now = _time_mod.time  # the real clocks (captured before the sandbox wraps them)
_mono = _time_mod.monotonic
_loads = decode_own
_get_running_loop = asyncio.events._get_running_loop
_set_running_loop = asyncio.events._set_running_loop
_STARTED_1 = '{"attempt":1}'
_Future = asyncio.Future
_SandboxDatetime = sandbox.SandboxDatetime
_REAL_DATETIME = sandbox._REAL_DT
_STEP_DATA: dict[str, Any] = {}  # Op.data of a live step (only replay needs the decoded call)
_CREATED_HEAD: dict[str, str] = {}


def _created_head(name: str) -> str:
    """The start of a step_created event's JSON for a step name (cached: names are few)."""
    text = _CREATED_HEAD.get(name)
    if text is None:
        text = _CREATED_HEAD[name] = f'{{"step_name":{encode(name)},"input":'
    return text

LEASE_SECONDS = 15.0
PARK_AFTER = 5.0
MAX_INTERRUPTED = 3  # a step whose process died this many times while running it is failed
YIELD_EVERY = 0.005  # seconds: a chain of inline steps lets the host loop run at least this often
MAX_POLL = 0.5
MIN_POLL = 0.01

CREATION = {"step_created": "step", "wait_created": "wait", "hook_created": "hook",
            "hook_conflict": "hook"}
DELIVERY = {"step_completed", "step_failed", "wait_completed", "hook_received", "hook_conflict"}

LOCAL_DRIVERS: dict[str, Driver] = {}
# run_id -> the error that stopped this process's driver of a run that is not terminal (a
# world that cannot be written): `Run.wait` raises it instead of polling forever
DRIVER_ERRORS: dict[str, BaseException] = {}


class Op:
    """One operation (step, wait or hook) of a body execution. Immutable defaults live on the
    class (an operation sets only what differs: creating one is on every step's path)."""

    input_text = ""  # steps: the JSON of {"args", "kwargs"}, encoded once
    call: tuple[list[Any], dict[str, Any]] | None = None  # the step's own copy of its arguments
    future: asyncio.Future[Any] | None = None
    in_log = False
    log_event: Event | None = None
    done = False
    # steps
    step: StepFunction | None = None
    attempt = 0
    failures = 0  # attempts that ended in an error (crash-interrupted ones are not counted)
    started_at: float | None = None
    retry_at: float | None = None
    state = "new"
    # waits
    resume_at = 0.0
    # hooks
    hook_cls: Any = None
    token = ""
    error: BaseException | None = None
    disposed = False
    payloads: collections.deque[Any]
    waiters: collections.deque[asyncio.Future[Any]]

    def __init__(self, kind: str, corr: str, pos: int, name: str, data: dict[str, Any]) -> None:
        self.kind = kind
        self.corr = corr
        self.pos = pos
        self.name = name
        self.data = data
        if kind == "hook":
            self.payloads = collections.deque()
            self.waiters = collections.deque()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))[:200]


def _describe_event(ev: Event) -> str:
    d = ev.data or {}
    if ev.type == "step_created":
        return f"step {d.get('step_name')!r} with input {_compact(d.get('input'))}"
    if ev.type == "wait_created":
        return f"sleep {json.dumps(d.get('spec'))}"
    if ev.type in ("hook_created", "hook_conflict"):
        return f"hook with token {d.get('token')!r}"
    return ev.type


def _describe_op(op: Op) -> str:
    if op.kind == "step":
        return f"step {op.name!r} with input {_compact(op.data.get('input'))}"
    if op.kind == "wait":
        return f"sleep {json.dumps(op.data.get('spec'))}"
    return f"hook with token {op.data.get('token')!r}"


async def _raise(exc: BaseException) -> Any:
    raise exc


class _InContext:
    """Await a coroutine inside the current task but with its own contextvars.Context: each
    step of the coroutine runs under ``ctx.run`` and whatever it yields (futures) passes
    through to the task, so the task waits on them as if it awaited the coroutine itself.
    The driver's lease heartbeat is armed the first time the coroutine really waits."""

    __slots__ = ("coro", "ctx", "driver", "first")

    def __init__(self, coro: Any, ctx: contextvars.Context, driver: Driver, first: Any) -> None:
        self.coro = coro
        self.ctx = ctx
        self.driver = driver
        self.first = first  # what the coroutine yielded at its first send

    def __await__(self) -> Generator[Any, None, Any]:
        coro, run = self.coro, self.ctx.run
        send, throw = coro.send, coro.throw
        value: Any = None
        exc: BaseException | None = None
        got = self.first
        self.driver._arm_heartbeat()
        while True:
            try:
                value = yield got
                exc = None
            except BaseException as e:  # cancellation of the task, or a future's error
                value, exc = None, e
            try:
                got = run(send, value) if exc is None else run(throw, exc)
            except StopIteration as stop:
                return stop.value


class Driver:
    """Runs one run (replay, then live) while holding its lease. See the module docstring."""

    def __init__(self, world: World, run: RunRecord, wf: WorkflowFunction, owner: str,
                 *, park_idle: bool = False, lease_seconds: float = LEASE_SECONDS) -> None:
        self.world = world
        self.run = run
        self.run_id = run.run_id
        self.wf = wf
        self.wf_name = run.workflow_name
        self.owner = owner
        self.park_idle = park_idle
        self.lease_seconds = lease_seconds
        self.clock = run.created_at
        self.rng = _random.Random(f"{run.run_id}:random")
        self.loop = BodyLoop(lambda: self.clock)  # type: ignore[abstract]
        self.host_loop: asyncio.AbstractEventLoop | None = None
        self.ops: dict[str, Op] = {}
        self.pos = 0
        self.log_ops: list[Event] = []
        self.deliveries_left = 0
        self.log_disposed: set[str] = set()
        self.batch = Batch()
        self.to_start: list[Op] = []
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.timer_at: dict[str, float] = {}
        self.live_hooks: set[str] = set()
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        self.msgs: collections.deque[tuple[Any, ...]] = collections.deque()
        self.waiter: asyncio.Future[Any] | None = None
        self.fatal: BaseException | None = None
        self.stopping = False
        self.finalized = False
        self.cancel_seen = False
        self.body_task: asyncio.Task[Any] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.done = asyncio.Event()
        self.step_base_ctx: contextvars.Context | None = None
        self.heartbeat: asyncio.TimerHandle | None = None
        self.hb_error: BaseException | None = None
        self.last_yield = _mono()
        # True while the body waits only on hooks (nothing in flight, no timer, no payload
        # queued, nothing to commit): what `Run.suspended_here` reports; `idle_waiters` are
        # woken when it becomes True or the driver stops
        self.idle = False
        self.idle_waiters: list[asyncio.Future[None]] = []
        self.outcome = "running"
        self.last_commit = _mono()
        self.poll = MIN_POLL
        self.dt_bindings = sandbox.datetime_bindings([getattr(wf.fn, "__globals__", {})])
        started = run.started_at or run.created_at
        self.wf_meta = WorkflowMetadata(run.run_id, run.workflow_name,
                                        datetime.fromtimestamp(started, UTC), dict(run.attributes))

    # ------------------------------------------------------------------ body-facing API
    def _next(self, kind: str) -> tuple[int, str]:
        self.pos += 1
        return self.pos, f"{kind}_{self.pos}"

    def _nondeterminism(self, pos: int, logged: str, called: str) -> None:
        if self.fatal is None:
            self.fatal = NondeterminismError(
                f"replay diverged at position {pos}: the event log has {logged}, "
                f"but the code called {called}"
            )
        self.stopping = True

    def _match(self, op: Op, same: Any) -> bool:
        if op.pos <= len(self.log_ops):
            ev = self.log_ops[op.pos - 1]
            if CREATION.get(ev.type) != op.kind or not same(ev.data or {}):
                self._nondeterminism(op.pos, _describe_event(ev), _describe_op(op))
                return False
            op.in_log = True
            op.log_event = ev
            return True
        if self.deliveries_left > 0:
            self._nondeterminism(
                op.pos, "no operation at this position yet (the original run called nothing "
                "more before its next recorded result)", _describe_op(op))
            return False
        return True

    def call_step(self, step: StepFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = _Future(loop=self.loop)
        if self.stopping:
            return fut
        try:
            text = encode_call(args, kwargs)
        except TypeError as exc:
            raise TypeError(f"arguments of step {step.name!r}: {exc}") from None
        self.pos = pos = self.pos + 1
        corr = f"step_{pos}"
        op = Op("step", corr, pos, step.name, _STEP_DATA)
        op.input_text = text
        op.future = fut
        op.step = step
        if self.log_ops:  # replaying: the call must match the log (decoded input compared)
            inp = _loads(text)
            op.data = {"step_name": step.name, "input": inp}
            if not self._match(
                    op, lambda d: d.get("step_name") == step.name and d.get("input") == inp):
                return fut
        self.ops[corr] = op
        if not op.in_log:
            now = _now()
            op.attempt = 1
            op.started_at = now
            op.state = "running"
            # the step's own copy of its arguments as they are now (the body may change its
            # objects before the step runs): flat values are copied, others decoded later
            op.call = copy_call(args, kwargs)
            # events carry their JSON text (the world decodes it only if it wants objects)
            events = self.batch.events
            events.append(NewEvent("step_created", corr, None, now,
                                   _created_head(step.name) + text + "}"))
            events.append(NewEvent("step_started", corr, None, now, _STARTED_1))
            self.to_start.append(op)
        return fut

    def sleep(self, duration: Any) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        if isinstance(duration, datetime):
            spec: dict[str, Any] = {"until": to_timestamp(duration)}
        else:
            spec = {"seconds": parse_seconds(duration, "sleep duration")}
        if self.stopping:
            return fut
        pos, corr = self._next("wait")
        op = Op("wait", corr, pos, "sleep", {"spec": spec})
        op.future = fut
        if not self._match(op, lambda d: d.get("spec") == spec):
            return fut
        self.ops[corr] = op
        if op.in_log:
            assert op.log_event is not None
            op.resume_at = float(op.log_event.data["resume_at"])
        else:
            now = _now()
            op.resume_at = spec["until"] if "until" in spec else now + spec["seconds"]
            self.batch.events.append(
                NewEvent("wait_created", corr, {"spec": spec, "resume_at": op.resume_at}, now))
            self.batch.waits.append(WaitRecord(self.run_id, corr, op.resume_at, "waiting", now))
            self.to_start.append(op)
        return fut

    def create_hook(self, hook_cls: Any, token: str | None, metadata: Any) -> Op:
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError(f"hook token must be a non-empty string, got {token!r}")
        try:
            meta = json.loads(encode(metadata))
        except TypeError as exc:
            raise TypeError(f"hook metadata: {exc}") from None
        pos, corr = self._next("hook")
        tok = token if token is not None else f"{self.run_id}:{corr}"
        op = Op("hook", corr, pos, tok, {"token": tok, "type": getattr(hook_cls, "__qualname__", "")})
        op.hook_cls = hook_cls
        op.token = tok
        if self.stopping:
            return op
        if not self._match(op, lambda d: d.get("token") == tok):
            return op
        self.ops[corr] = op
        self.live_hooks.add(corr)
        if not op.in_log:
            now = _now()
            self.batch.events.append(NewEvent(
                "hook_created", corr, {"token": tok, "metadata": meta, "type": op.data["type"]}, now))
            self.batch.hooks_created.append(HookRecord(self.run_id, corr, tok, meta, now))
        return op

    def next_payload(self, op: Op) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        if op.error is not None:
            fut.set_exception(op.error)
        elif op.payloads:
            fut.set_result(op.payloads.popleft())
        elif op.disposed:
            fut.set_exception(RuntimeError(f"hook {op.token!r} was disposed"))
        else:
            op.waiters.append(fut)
        return fut

    def dispose_hook(self, op: Op) -> None:
        self.live_hooks.discard(op.corr)
        if op.disposed or op.corr not in self.ops:
            op.disposed = True
            return
        op.disposed = True
        if op.error is None and op.corr not in self.log_disposed and not self.stopping:
            self.batch.events.append(NewEvent("hook_disposed", op.corr, {"token": op.token},
                                              _now()))
            self.batch.hooks_disposed.append(op.corr)

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # ------------------------------------------------------------------ deliveries
    def _push_hook(self, op: Op, payload: Any) -> None:
        value = payload
        cls = op.hook_cls
        if cls is not None and isinstance(payload, dict):
            try:
                validate = getattr(cls, "model_validate", None)
                value = validate(payload) if callable(validate) else cls(**payload)
            except Exception as exc:  # a payload the class rejects reaches the body as an error
                if op.waiters:
                    op.waiters.popleft().set_exception(exc)
                return
        if op.waiters:
            op.waiters.popleft().set_result(value)
        else:
            op.payloads.append(value)

    def _fail_hook(self, op: Op, err: BaseException) -> None:
        self.live_hooks.discard(op.corr)
        op.error = err
        while op.waiters:
            op.waiters.popleft().set_exception(err)

    def _deliver_step(self, op: Op, ok: bool, value: Any) -> None:
        op.done = True
        assert op.future is not None
        if op.future.done():
            return
        if ok:
            op.future.set_result(value)
        else:
            op.future.set_exception(error_from_dict(value))

    def pump(self) -> None:
        """Run the body until it is idle (blocked on results not yet delivered)."""
        if self.body_task is None:
            return
        prev = _get_running_loop()
        _set_running_loop(self.loop)
        bindings = self.dt_bindings
        _datetime_mod.datetime = _SandboxDatetime  # type: ignore[misc]
        for g, k in bindings:  # (sandbox.swap_datetime, inlined: once per step)
            g[k] = _SandboxDatetime
        try:
            self.loop.run_until_idle()
        finally:
            _datetime_mod.datetime = _REAL_DATETIME  # type: ignore[misc]
            for g, k in bindings:
                g[k] = _REAL_DATETIME
            _set_running_loop(prev)

    # ------------------------------------------------------------------ main
    async def drive(self) -> None:
        """Run the driver to the end of its hold on the run (terminal, parked or lost)."""
        self.host_loop = asyncio.get_running_loop()
        LOCAL_DRIVERS[self.run_id] = self
        DRIVER_ERRORS.pop(self.run_id, None)
        try:
            await self._drive()
        except asyncio.CancelledError:
            self._abandon(release=True)
            raise
        except LeaseLostError:
            self._abandon(release=False)
            self.outcome = "lost"
        except WorldWriteError as exc:
            # the store cannot be written (disk full, read-only...): the run is not failed (what
            # was committed is intact, a worker continues it later); local waiters get the error
            log.error("durable: run %s stopped: %s", self.run_id, exc)
            self._abandon(release=False)
            self.outcome = f"error: {exc}"
            DRIVER_ERRORS[self.run_id] = exc
            try:
                self.world.release(self.run_id, self.owner, _now() + 30)
            except Exception:
                pass
        except Exception as exc:  # internal error: fail the run (or, failing that, release it)
            if isinstance(exc, WorldCorruptError):  # a damaged log: one line, no traceback
                log.error("durable: run %s failed: %s", self.run_id, exc)
            else:
                log.exception("durable driver for run %s failed internally", self.run_id)
            self._abandon(release=False)
            self.outcome = f"error: {exc}"
            try:
                err = error_to_dict(exc)
                err["code"] = ("CORRUPTED_EVENT_LOG" if isinstance(exc, WorldCorruptError)
                               else "RUNTIME_ERROR")
                now = _now()
                self.world.commit(self.run_id, self.owner, Batch(
                    events=[NewEvent("run_failed", None, {"error": err}, now)],
                    run_update={"status": "failed", "error": err, "completed_at": now}),
                    self.lease_seconds)
            except Exception:
                DRIVER_ERRORS[self.run_id] = exc
                try:
                    self.world.release(self.run_id, self.owner, _now() + 30)
                except Exception:
                    pass
        finally:
            for h in self.timers.values():
                h.cancel()
            retire_owner(self.owner)
            if LOCAL_DRIVERS.get(self.run_id) is self:
                del LOCAL_DRIVERS[self.run_id]
            self.idle = False
            self._wake_idle_waiters()
            self.done.set()

    def _abandon(self, release: bool) -> None:
        self.stopping = True
        for t in self.inflight.values():
            t.cancel()
        if self.body_task is not None and not self.body_task.done():
            self.body_task.cancel()
            try:
                self.pump()
            except Exception:
                pass
        if release:
            try:
                self.world.release(self.run_id, self.owner, _now())
            except Exception:
                pass

    def _start_body(self) -> None:
        sandbox.install()
        self.world.stats["body_executions"] += 1
        ctx = contextvars.copy_context()
        ctx.run(CURRENT_BODY.set, self)
        ctx.run(CURRENT_STEP.set, None)
        inp = self.run.input or {}
        args = inp.get("args", [])
        kwargs = inp.get("kwargs", {})
        try:
            coro = ctx.run(self.wf.fn, *args, **kwargs)
        except Exception as exc:  # e.g. arguments that do not fit the signature
            coro = _raise(exc)
        self.body_task = self.loop.create_task(coro, context=ctx)
        self.pump()

    async def _drive(self) -> None:
        events: list[Event] = []
        if self.run.status != "pending" or self.park_idle:
            # a run another process created or ran: read its log (a fresh run started here
            # has only its run_created event, which this process wrote)
            events = self.world.list_events(self.run_id)
        if self.run.status == "pending":
            now = _now()
            self.batch.events.append(NewEvent("run_started", None, {}, now))
            self.batch.run_update.update(status="running", started_at=now)
        self.log_ops = [e for e in events if e.type in CREATION]
        self.deliveries_left = sum(1 for e in events if e.type in DELIVERY)
        self.log_disposed = {e.correlation_id for e in events
                             if e.type == "hook_disposed" and e.correlation_id}
        if self.log_ops:
            self.world.stats["replays"] += 1
        self._start_body()
        if events:
            self._replay(events)
            if self.fatal is None:
                self._resume_after_replay()
        await self._live()

    def _replay(self, events: list[Event]) -> None:
        for ev in events:
            if self.fatal is not None:
                return
            t = ev.type
            corr = ev.correlation_id or ""
            if t in CREATION:
                if corr not in self.ops:
                    pos = self.log_ops.index(ev) + 1
                    self._nondeterminism(pos, _describe_event(ev),
                                         f"nothing at this position (it made {self.pos} calls)")
                    return
            op = self.ops.get(corr)
            if t in DELIVERY:
                self.deliveries_left -= 1
            if op is None:
                continue
            d = ev.data or {}
            if t == "step_started":
                op.attempt = int(d.get("attempt", op.attempt + 1))
                op.started_at = op.started_at or ev.created_at
                op.state = "running"
            elif t == "step_retrying":
                op.attempt = int(d.get("attempt", op.attempt))
                op.failures += 1
                op.retry_at = d.get("retry_after")
                op.state = "retrying"
            elif t in ("step_completed", "step_failed"):
                op.state = "completed" if t == "step_completed" else "failed"
                self.clock = ev.created_at
                self._deliver_step(op, t == "step_completed",
                                   d.get("result") if t == "step_completed" else d.get("error"))
                self.pump()
            elif t == "wait_completed":
                op.done = True
                self.clock = ev.created_at
                assert op.future is not None
                if not op.future.done():
                    op.future.set_result(None)
                self.pump()
            elif t == "hook_received":
                self.clock = ev.created_at
                self._push_hook(op, d.get("payload"))
                self.pump()
            elif t == "hook_conflict":
                self.clock = ev.created_at
                self._fail_hook(op, HookConflictError(
                    f"hook token {op.token!r} is already in use by run {d.get('conflicting_run_id')}"))
                self.pump()
            elif t == "hook_disposed":
                op.disposed = True
                self.live_hooks.discard(op.corr)
        if self.fatal is None and self.pos < len(self.log_ops):
            ev = self.log_ops[self.pos]
            self._nondeterminism(self.pos + 1, _describe_event(ev),
                                 f"nothing at this position (it made {self.pos} calls)")

    def _resume_after_replay(self) -> None:
        """Re-arm what the log left unfinished: in-flight steps run again (next attempt), due
        retries are scheduled, waits resume for the remainder."""
        for op in list(self.ops.values()):
            if not op.in_log or op.done:
                continue
            if op.kind == "step":
                if op.state == "retrying":
                    self._schedule(op, op.retry_at or _now(), ("retry", op))
                else:
                    self._begin_attempt(op)
            elif op.kind == "wait":
                self.to_start.append(op)

    def _begin_attempt(self, op: Op) -> None:
        assert op.step is not None
        now = _now()
        op.attempt += 1
        if op.started_at is None:
            op.started_at = now
        # an attempt cut short by a crash is not a failure: the step runs again (at-least-once)
        # and keeps its retries; only a step whose process keeps dying is given up on
        interrupted = op.attempt - 1 - op.failures
        if interrupted > MAX_INTERRUPTED:
            err = error_to_dict(FatalError(
                f"step {op.name!r} was interrupted {interrupted} times (its process died while "
                f"running it each time): giving up"), fatal=True)
            self._record_failure(op, err, now)
            return
        op.state = "running"
        self.batch.events.append(NewEvent("step_started", op.corr, {"attempt": op.attempt}, now))
        self.to_start.append(op)

    def _record_failure(self, op: Op, err: dict[str, Any], now: float) -> None:
        op.state = "failed"
        self.batch.events.append(NewEvent("step_failed", op.corr,
                                          {"error": err, "attempt": op.attempt}, now))
        if not self.stopping:
            self.clock = now
            self._deliver_step(op, False, err)
            self.pump()

    def _schedule(self, op: Op, at: float, msg: tuple[Any, ...]) -> None:
        assert self.host_loop is not None
        delay = max(0.0, at - _now())
        self.timer_at[op.corr] = at
        self.timers[op.corr] = self.host_loop.call_later(delay, self._post, msg)

    def _start_pending(self) -> None:
        todo, self.to_start = self.to_start, []
        assert self.host_loop is not None
        for op in todo:
            if op.kind == "step":
                self._start_step(op)
            elif op.kind == "wait" and not op.done:
                self._schedule(op, op.resume_at, ("wait", op))

    def _base_ctx(self) -> contextvars.Context:
        """The context steps' contexts are copied from (built once per driver)."""
        base = contextvars.copy_context()
        base.run(CURRENT_BODY.set, None)
        base.run(CURRENT_STEP_WORKFLOW.set, self.wf_meta)
        self.step_base_ctx = base
        return base

    def _step_context(self, op: Op) -> contextvars.Context:
        """A fresh context for one attempt of a step: no workflow body, its StepMetadata, the
        run's WorkflowMetadata (copied from a base context built once per driver)."""
        base = self.step_base_ctx
        if base is None:
            base = self._base_ctx()
        meta = LazyStepMetadata((self.run_id, op.corr, op.name, op.attempt,
                                 op.started_at or _now(), self.run.workflow_name))
        ctx = base.copy()
        ctx.run(CURRENT_STEP.set, meta)
        return ctx

    def _step_args(self, op: Op) -> tuple[list[Any], dict[str, Any]]:
        """Fresh copies of the step's arguments (steps get values, never shared objects): the
        copy made at the call (first attempt), else decoded from the logged input."""
        call = op.call
        if call is not None:
            op.call = None  # a retry gets a fresh copy
            return call
        inp = _loads(op.input_text)
        return inp.get("args", []), inp.get("kwargs", {})

    def _start_step(self, op: Op) -> None:
        assert self.host_loop is not None and op.step is not None
        ctx = self._step_context(op)
        args, kwargs = self._step_args(op)
        task = self.host_loop.create_task(self._exec_step(op, args, kwargs), context=ctx)
        self.inflight[op.corr] = task

    def _inline_start(self, op: Op) -> _InContext | None:
        """Run a step as a direct call inside the driver's task (the common case: the body
        waits on exactly this one step and nothing else is pending), in its own context: no
        task, no trips through the host loop. A step that finishes without waiting is
        recorded here (None); for one that waits, the awaitable driving the rest of it."""
        step = op.step
        assert step is not None
        base = self.step_base_ctx
        ctx = (self._base_ctx() if base is None else base).copy()
        ctx.run(CURRENT_STEP.set, LazyStepMetadata((self.run_id, op.corr, op.name, op.attempt,
                                                    op.started_at or _now(), self.wf_name)))
        call = op.call
        if call is not None:
            op.call = None
            args, kwargs = call
        else:
            args, kwargs = self._step_args(op)
        try:
            coro = ctx.run(step.fn, *args, **kwargs)
            got = ctx.run(coro.send, None)  # a step that never waits ends here
        except StopIteration as stop:
            self._step_finished(op, True, stop.value, _now())
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._step_finished(op, False, exc, _now())
            return None
        return _InContext(coro, ctx, self, got)

    async def _inline_rest(self, op: Op, rest: _InContext) -> None:
        """Await the rest of an inline step (see `_inline_start`), then record its result.
        While it awaits, a timer renews the lease as the driver's poll would."""
        try:
            value = await rest
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            value, ok = exc, False
        finally:
            hb = self.heartbeat
            if hb is not None:
                hb.cancel()
                self.heartbeat = None
        if self.hb_error is not None:
            err, self.hb_error = self.hb_error, None
            raise err
        self._step_finished(op, ok, value, _now())

    def _arm_heartbeat(self) -> None:
        """While an inline step awaits: renew the lease every third of it."""
        assert self.host_loop is not None
        self.heartbeat = self.host_loop.call_later(self.lease_seconds / 3, self._beat)

    def _beat(self) -> None:
        self.heartbeat = None
        try:
            res = self.world.commit(self.run_id, self.owner, Batch(run_update={"updated_at": _now()}),
                                    self.lease_seconds)
            self.last_commit = _mono()
            if res.status in TERMINAL:
                self.cancel_seen = True
        except Exception as exc:  # LeaseLostError and the like: raised when the step returns
            self.hb_error = exc
            return
        self._arm_heartbeat()

    async def _exec_step(self, op: Op, args: list[Any], kwargs: dict[str, Any]) -> None:
        assert op.step is not None
        try:
            value = await op.step.fn(*args, **kwargs)
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            value, ok = exc, False
        self._post(("step", op, ok, value, _now()))

    # ------------------------------------------------------------------ live loop
    def _commit(self, require_running: bool = True) -> CommitResult | None:
        b = self.batch
        if not b.events and b.empty():
            return None
        res = self.world.commit(self.run_id, self.owner, b, self.lease_seconds, require_running)
        self.last_commit = _mono()
        # the batch object is reused (worlds copy what they keep): a fresh one per step costs
        b.events.clear()
        if (b.waits or b.hooks_created or b.hooks_disposed or b.inbox_consumed or b.run_update
                or b.output_text is not None):
            self.batch = Batch()
        return res

    def _check_body(self) -> None:
        if self.finalized:
            return
        task = self.body_task
        if self.fatal is None and (task is None or not task.done()):
            return
        now = _now()
        if self.fatal is not None:
            err = error_to_dict(self.fatal)
            err["code"] = "CORRUPTED_EVENT_LOG"
            self._finalize("failed", None, err, now)
            return
        task = self.body_task
        if task is None or not task.done():
            return
        if task.cancelled():
            err = {"type": "CancelledError", "module": "asyncio", "message": "workflow body was cancelled",
                   "args": None, "fatal": True, "code": "USER_ERROR"}
            self._finalize("failed", None, err, now)
            return
        exc = task.exception()
        if exc is not None:
            err = error_to_dict(exc)
            err["code"] = "USER_ERROR"
            self._finalize("failed", None, err, now)
            return
        try:
            text = encode(task.result())
        except TypeError as e:
            err = error_to_dict(TypeError(f"workflow return value: {e}"))
            err["code"] = "USER_ERROR"
            self._finalize("failed", None, err, now)
            return
        self._finalize("completed", text, None, now)

    def _finalize(self, status: str, output_text: str | None, error: dict[str, Any] | None,
                  now: float) -> None:
        """End the run in the next commit: completed with `output_text` (the output's JSON,
        encoded once: the event and the run record carry the same text) or failed."""
        self.finalized = True
        self.stopping = True
        if status == "completed":
            assert output_text is not None
            self.batch.events.append(NewEvent("run_completed", None, None, now,
                                              '{"output":' + output_text + "}"))
            self.batch.run_update.update(status="completed", completed_at=now)
            self.batch.output_text = output_text
        else:
            self.batch.events.append(NewEvent("run_failed", None, {"error": error}, now))
            self.batch.run_update.update(status="failed", error=error, completed_at=now)
        self.outcome = status

    async def _live(self) -> None:
        while True:
            if self.cancel_seen and not self.finalized:
                await self._on_cancelled()
                return
            if not self.finalized:
                task = self.body_task
                if self.fatal is not None or task is None or task.done():
                    self._check_body()
            res = self._commit()
            if res is not None and res.status in TERMINAL:
                if self.finalized and res.status == self.outcome:
                    await self._after_terminal()
                    return
                await self._on_cancelled()
                return
            if res is not None and res.conflicts:
                for corr, other in res.conflicts.items():
                    op = self.ops[corr]
                    self._fail_hook(op, HookConflictError(
                        f"hook token {op.token!r} is already in use by run {other}"))
                self.pump()
                continue
            todo = self.to_start
            if (len(todo) == 1 and todo[0].kind == "step" and not self.inflight
                    and not self.timers and not self.live_hooks and not self.msgs
                    and not self.finalized):
                # the body waits on exactly this step: run it inline (no task, no messages)
                self.to_start = []
                op = todo[0]
                rest = self._inline_start(op)
                if rest is not None:  # the step waits on something: await the rest of it
                    await self._inline_rest(op, rest)
                if _mono() - self.last_yield > YIELD_EVERY:  # let the host loop breathe
                    await asyncio.sleep(0)
                    self.last_yield = _mono()
                continue
            self._start_pending()
            if self._blocked_forever():
                continue
            if self._should_park():
                self._park()
                return
            if self._waits_on_hooks_only():
                if self.world.read_inbox(self.run_id):  # a payload from another process
                    self._poll_world()
                    continue
                self.idle = True
                self._wake_idle_waiters()
            await self._wait_and_process()
            self.idle = False

    def _blocked_forever(self) -> bool:
        """The body waits, but on nothing the runtime can deliver (no step in flight, no timer,
        no live hook): fail the run instead of hanging."""
        if (self.finalized or self.inflight or self.to_start or self.timers or self.msgs
                or not self.batch.empty() or self._active_hooks()):
            return False
        if self.body_task is None or self.body_task.done():
            return False
        err = error_to_dict(RuntimeError(
            "the workflow body is waiting on something that is not a step, sleep or hook "
            "(nothing can ever resume it): await only durable operations in a workflow body"))
        err["code"] = "USER_ERROR"
        self._finalize("failed", None, err, _now())
        return True

    def _active_hooks(self) -> bool:
        return bool(self.live_hooks)

    def _waits_on_hooks_only(self) -> bool:
        """The body waits, and only on hooks: nothing in flight or to start, no timer (sleep or
        retry), no message, nothing left to commit. (Only checked off the step path.)"""
        task = self.body_task
        return (bool(self.live_hooks) and not self.finalized and not self.inflight
                and not self.to_start and not self.timers and not self.msgs
                and self.batch.empty() and task is not None and not task.done())

    def _wake_idle_waiters(self) -> None:
        waiters, self.idle_waiters = self.idle_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait_idle(self) -> bool:
        """Wait until the body waits only on hooks (True) or the driver stops (False)."""
        while not self.done.is_set():
            if self.idle:
                return True
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.idle_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self.idle_waiters:  # (cancelled: do not keep it)
                    self.idle_waiters.remove(fut)
        return False

    def _next_timer(self) -> float | None:
        return min(self.timer_at.values()) if self.timer_at else None

    def _should_park(self) -> bool:
        if not self.park_idle or self.inflight or self.to_start or not self.batch.empty():
            return False
        nxt = self._next_timer()
        if nxt is not None and nxt - _now() <= PARK_AFTER:
            return False
        if self._active_hooks() and self.world.read_inbox(self.run_id):
            return False
        return True

    def _park(self) -> None:
        self.world.release(self.run_id, self.owner, self._next_timer())
        self.outcome = "parked"
        self._abandon(release=False)

    def _post(self, msg: tuple[Any, ...]) -> None:
        """Hand a message (step finished, timer due, wake) to the driver loop."""
        self.idle = False  # (a payload sent in this process wakes the driver with this)
        self.msgs.append(msg)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _get_message(self, timeout: float) -> tuple[Any, ...] | None:
        """The next message, or None after `timeout` seconds."""
        if self.msgs:
            return self.msgs.popleft()
        assert self.host_loop is not None
        w = self.host_loop.create_future()
        self.waiter = w
        handle = self.host_loop.call_later(
            timeout, lambda: None if w.done() else w.set_result(None))
        try:
            await w
        finally:
            handle.cancel()
            self.waiter = None
        return self.msgs.popleft() if self.msgs else None

    async def _wait_and_process(self) -> None:
        msg = await self._get_message(self.poll)
        if msg is None:
            self.poll = min(self.poll * 2, MAX_POLL)
            self._poll_world()
            return
        self.poll = MIN_POLL
        msgs = [msg]
        while self.msgs:
            msgs.append(self.msgs.popleft())
        wake = False
        for m in msgs:
            if m[0] == "wake":
                wake = True
            else:
                self._process(m)
        if wake:
            self._poll_world()

    def _poll_world(self) -> None:
        run = self.world.get_run(self.run_id)
        if run.status in TERMINAL:
            self.cancel_seen = True
            return
        if run.lease_owner != self.owner:
            raise LeaseLostError(f"run {self.run_id} is now held by {run.lease_owner}")
        if self._active_hooks():
            for item in self.world.read_inbox(self.run_id):
                op = self.ops.get(item.correlation_id)
                self.batch.inbox_consumed.append(item.id)
                if op is None or op.disposed or op.error is not None or self.stopping:
                    continue
                now = _now()
                self.batch.events.append(NewEvent(
                    "hook_received", op.corr, {"payload": item.payload, "token": item.token}, now))
                self.clock = now
                self._push_hook(op, item.payload)
                self.pump()
        if self.batch.empty() and _mono() - self.last_commit > self.lease_seconds / 3:
            self.batch.run_update["updated_at"] = _now()  # heartbeat: renews the lease

    def _process(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "step":
            _, op, ok, value, at = msg
            self.inflight.pop(op.corr, None)
            self._step_finished(op, ok, value, at)
        elif kind == "wait":
            op = msg[1]
            self.timers.pop(op.corr, None)
            self.timer_at.pop(op.corr, None)
            if op.done or self.stopping:
                return
            now = _now()
            if now < op.resume_at:  # the host timer fired a hair early: wait the remainder
                self._schedule(op, op.resume_at, ("wait", op))
                return
            op.done = True
            self.batch.events.append(NewEvent("wait_completed", op.corr, {}, now))
            self.batch.waits.append(WaitRecord(self.run_id, op.corr, op.resume_at, "completed",
                                               op.log_event.created_at if op.log_event else now, now))
            self.clock = now
            assert op.future is not None
            if not op.future.done():
                op.future.set_result(None)
            self.pump()
        elif kind == "retry":
            op = msg[1]
            self.timers.pop(op.corr, None)
            self.timer_at.pop(op.corr, None)
            if not self.stopping:
                if op.retry_at is not None and _now() < op.retry_at:
                    self._schedule(op, op.retry_at, ("retry", op))
                    return
                self._begin_attempt(op)

    def _step_finished(self, op: Op, ok: bool, value: Any, at: float) -> None:
        assert op.step is not None
        if ok:
            try:
                text = encode(value)
            except TypeError as exc:
                ok = False
                value = TypeError(f"return value of step {op.name!r}: {exc}")
                fatal = True
            else:
                # the log keeps the text, the body gets a decoded copy: a body that mutates the
                # result it received cannot change the log
                op.state = "completed"
                self.batch.events.append(NewEvent("step_completed", op.corr, None, at,
                                                  '{"result":' + text + "}"))
                del self.ops[op.corr]  # done: nothing looks a finished step up again (O(1) memory)
                if not self.stopping:
                    self.clock = at
                    op.done = True
                    fut = op.future
                    assert fut is not None
                    if not fut.done():
                        copy = copy_plain(value)
                        fut.set_result(_loads(text) if copy is NOT_PLAIN else copy)
                    self.pump()
                return
        else:
            fatal = isinstance(value, FatalError)
        err = error_to_dict(value, fatal=fatal)
        failures = op.failures + 1  # failed attempts including this one
        if not fatal and failures < op.step.max_retries + 1 and not self.stopping:
            if isinstance(value, RetryableError):
                ra = value.retry_after
                if ra is None:
                    retry_at = at + 1.0
                elif isinstance(ra, datetime):
                    retry_at = to_timestamp(ra)
                else:
                    retry_at = at + parse_seconds(ra, "retry_after")
            else:
                retry_at = at + op.step.retry_delay
            op.state = "retrying"
            op.failures = failures
            op.retry_at = retry_at
            self.batch.events.append(NewEvent(
                "step_retrying", op.corr,
                {"attempt": op.attempt, "error": err, "retry_after": retry_at}, at))
            self._schedule(op, retry_at, ("retry", op))
            return
        if not fatal and failures >= op.step.max_retries + 1:
            err["fatal"] = True
        self._record_failure(op, err, at)

    async def _after_terminal(self) -> None:
        """The run is completed/failed: let stray in-flight steps finish (results unused)."""
        self._abandon(release=False)

    async def _on_cancelled(self) -> None:
        """The run was cancelled (from any process): stop the body, let in-flight steps finish,
        then let go of the run. Nothing is appended after the log's terminal ``run_cancelled``
        event: the result of a step that finishes after the cancel is not journaled (its
        record stays ``running``; steps are at-least-once, and the run will not continue)."""
        self.outcome = "cancelled"
        self.stopping = True
        if self.body_task is not None and not self.body_task.done():
            self.body_task.cancel()
            self.pump()
        for h in self.timers.values():
            h.cancel()
        self.timers.clear()
        self.timer_at.clear()
        self.batch = Batch()
        while self.inflight:
            msg = await self._get_message(1.0)
            if msg is not None and msg[0] == "step":
                self.inflight.pop(msg[1].corr, None)
        # a no-op write clears the lease of the terminal run
        self.world.commit(self.run_id, self.owner, Batch(), self.lease_seconds,
                          require_running=False)

    def wake(self) -> None:
        """Ask the driver to look at the world now (hook payload or cancel in this process)."""
        if self.host_loop is None or self.host_loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.host_loop:
            self._post(("wake",))
        else:
            self.host_loop.call_soon_threadsafe(self._post, ("wake",))


BodyContext = Driver
