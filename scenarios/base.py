"""The scenario model: one workflow pattern, its two definitions and its hand-written expectations.

A `Scenario` carries
- `workflow`: the Mastra-syntax definition (`flow.Workflow`), built lazily by `workflow_factory`
  (cached, or rebuilt on every access when `rebuild=True`, e.g. a static `sleep_until` date);
  `None` with `workflow_reason` when the Mastra syntax cannot express the pattern;
- `native`: the hand-written `durable` workflow, given as `native_ref = "module:qualname"` of a
  module-level `@wf.workflow` function (so a worker in another process can import it) and loaded
  lazily (`scenario.native`); `None` with `native_reason` when it cannot be hand-written;
- how to run it: `input_data` (or a zero-argument callable giving a fresh input per run, see
  `fresh_input()`), `initial_state`, `request_context`, and an `actions` script (below);
- `expect`: an `Expect` (status, result, error, per-step records, suspended paths, state, and a
  `TraceExpect` over the side effects recorded by `scenarios.trace`);
- `durability`: for the durability/determinism rows, a `DurabilitySpec` saying where to SIGKILL
  the process that runs it and how to recover (`scenario.kind` is its short kind string);
- `mastra_gap`: set when the Mastra syntax / flow's default semantics are known not to meet the
  expectation (e.g. no FatalError, no persistent trigger); the Mastra definition is still the
  closest honest spelling, and running it measures the gap. `notes`: workarounds and remarks.

Calling conventions (binding for engines and the harness):
- Mastra syntax: `run = scenario.workflow.create_run(); await run.start(input_data=scenario.fresh_input(),
  initial_state=scenario.initial_state, request_context=scenario.request_context)`.
- Native: `scenario.native` takes the input as its first parameter `input_data` (so starting it
  with the input as the one positional argument works), and `request_context` as a second one
  only when the scenario has a request context. `scenario.native_kwargs()` gives both as keyword
  arguments; prefer it. It returns exactly `expect.result` on success.

Actions (data only; `scenarios.drive.drive` executes them):
- `("resume", {"step": "id" | ["outer", ..., "id"], "resume_data": {...}, "for_each_index": int?,
  "label": str?, "at": seconds?})`: resume the run. Without `at` it is sent after the previous
  call (start or resume) returned; with `at` it is sent concurrently, `at` seconds after start.
  For native definitions the target is the hook whose token is `hook_token(run_id, step,
  for_each_index)`; the native body waits on it with `scenarios.natives.common.wait_resume`.
- `("cancel_after", seconds)`: cancel the run that many seconds after start (concurrently).
- `("expect", {"status": ..., "suspended": [[...], ...]})`: a checkpoint on the result of the
  previous call (flow definitions only: native runs report no suspended paths).
The final result checked against `expect` is the result of the last start/resume call.
"""

from __future__ import annotations

import copy
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal[
    "control-flow", "data", "time", "human-in-the-loop", "errors", "durability", "determinism", "scale"
]
FAMILIES: tuple[str, ...] = (
    "control-flow", "data", "time", "human-in-the-loop", "errors", "durability", "determinism", "scale",
)

Status = Literal["success", "failed", "suspended", "canceled"]
STATUSES: tuple[str, ...] = ("success", "failed", "suspended", "canceled")


class _Missing:
    """Sentinel: this expectation is not checked."""

    _inst: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class _Any:
    """Matches any value inside an expected structure (timestamps, generated ids, ...)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()

Count = int | tuple[int, int]
"""An exact count, or an inclusive range (low, high)."""


@dataclass(frozen=True)
class StepExpect:
    """Expected fields of one step record (`flow.StepResult`); MISSING = not checked."""

    status: str | None = None
    output: Any = MISSING
    payload: Any = MISSING
    suspend_payload: Any = MISSING
    resume_payload: Any = MISSING
    error: ErrorExpect | None = None


@dataclass(frozen=True)
class ErrorExpect:
    """The run's (or a step's) error: its class name and/or a substring of its message."""

    name: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TraceExpect:
    """Expected side effects, checked against a recorded `scenarios.trace.Trace`.

    Keys are span names or fnmatch globs (a glob counts every matching span together).
    - `runs`: how many times each name started (exact or (low, high)).
    - `completed`: how many times each name ended normally.
    - `strict`: no span may start whose name matches none of the `runs` keys.
    - `max_in_flight`: the largest number of matching spans open at once (exact).
    - `before`: pairs (p, q) = "p happened before q". A bare name means its LAST END on the left
      and its FIRST START on the right; "name.start" / "name.end" choose explicitly. A missing
      left event fails; a missing right ".end" counts as "not yet" (the pair holds); a missing
      right start fails.
    - `min_gap`: (a, b, seconds): first start of b - last end of a >= seconds (sleep bounds).
    """

    runs: Mapping[str, Count] = field(default_factory=dict)
    completed: Mapping[str, Count] = field(default_factory=dict)
    strict: bool = True
    max_in_flight: Mapping[str, int] = field(default_factory=dict)
    before: tuple[tuple[str, str], ...] = ()
    min_gap: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class Expect:
    """What a correct engine produces. MISSING / None = not checked.

    Applies to both definitions: `status`, `result`, `error`, `trace`.
    Flow definitions only (native runs have no Mastra step records): `steps`, `absent_steps`,
    `suspended` (compared as a set of paths), `state`.
    """

    status: Status
    result: Any = MISSING
    error: ErrorExpect | None = None
    steps: Mapping[str, StepExpect] = field(default_factory=dict)
    absent_steps: tuple[str, ...] = ()
    suspended: tuple[tuple[str, ...], ...] | None = None
    state: Any = MISSING
    trace: TraceExpect | None = None


@dataclass(frozen=True)
class KillPoint:
    """When to SIGKILL the process running the scenario: once the trace file shows the
    `count`-th `event` ("start" | "end") of spans named `name` (an fnmatch glob), wait `delay`
    seconds, then kill."""

    name: str
    event: Literal["start", "end"] = "end"
    count: int = 1
    delay: float = 0.0

    def reached(self, trace: Any) -> bool:
        """True when `trace` (a `scenarios.trace.Trace`) shows the kill point."""
        if self.event == "start":
            return bool(trace.runs(self.name) >= self.count)
        return bool(trace.ended(self.name) >= self.count)


@dataclass(frozen=True)
class DurabilitySpec:
    """How the harness drives a durability/determinism scenario through subprocesses.

    1. Process A (env `WFBENCH_TRACE_FILE`, `WFBENCH_DB` = a fresh SqliteWorld/snapshot db) starts
       the run with a run id chosen by the harness.
    2. The harness polls the trace file until `kill.reached(trace)`, sleeps `kill.delay`, and
       SIGKILLs A.
    3. If `resume` is set: process B sends that resume action (same form as in `actions`) and
       exits at once.
    4. Process C, with `recover_env` added to its environment, recovers: `durable.Worker(world)`
       `.run(until_idle=True)` (engines without recovery report unsupported, measured by trying).
    5. The run's final result and the whole trace file are checked against `expect`.
    """

    kind: str
    kill: KillPoint
    resume: tuple[str, Any] | None = None
    recover_env: Mapping[str, str] = field(default_factory=dict)


Action = tuple[str, Any]


_cache_lock = threading.Lock()
_workflow_cache: dict[str, Any] = {}


@dataclass(frozen=True, eq=False)
class Scenario:
    """One workflow pattern with its definitions and hand-written expectations."""

    id: str
    title: str
    family: Family
    expect: Expect
    wcp: tuple[str, ...] = ()
    workflow_factory: Callable[[], Any] | None = None
    workflow_reason: str | None = None
    native_ref: str | None = None
    native_reason: str | None = None
    input_data: Any = None
    initial_state: Mapping[str, Any] | None = None
    request_context: Mapping[str, Any] | None = None
    actions: tuple[Action, ...] = ()
    durability: DurabilitySpec | None = None
    rebuild: bool = False
    mastra_gap: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"scenario {self.id!r}: unknown family {self.family!r}; use one of {FAMILIES}")
        if self.expect.status not in STATUSES:
            raise ValueError(f"scenario {self.id!r}: unknown status {self.expect.status!r}; use one of {STATUSES}")
        if (self.workflow_factory is None) == (self.workflow_reason is None):
            raise ValueError(f"scenario {self.id!r}: give exactly one of workflow_factory and workflow_reason")
        if (self.native_ref is None) == (self.native_reason is None):
            raise ValueError(f"scenario {self.id!r}: give exactly one of native_ref and native_reason")
        for w in self.wcp:
            if not (w.startswith("WCP-") and w[4:].isdigit()):
                raise ValueError(f"scenario {self.id!r}: bad pattern id {w!r}; spell it like 'WCP-21'")
        for a in self.actions:
            validate_action(a, self.id)

    # --- definitions -------------------------------------------------------------------
    @property
    def workflow(self) -> Any:
        """The committed Mastra-syntax `flow.Workflow`, or None (see `workflow_reason`)."""
        if self.workflow_factory is None:
            return None
        if self.rebuild:
            return self.workflow_factory()
        with _cache_lock:
            wf = _workflow_cache.get(self.id)
        if wf is None:
            wf = self.workflow_factory()
            with _cache_lock:
                wf = _workflow_cache.setdefault(self.id, wf)
        return wf

    @property
    def native(self) -> Any:
        """The module-level `@wf.workflow` function (imported on first use), or None."""
        if self.native_ref is None:
            return None
        return load_ref(self.native_ref)

    @property
    def kind(self) -> str | None:
        """The durability kind ("mid-chain", "during-sleep", ...) or None."""
        return self.durability.kind if self.durability else None

    @property
    def interactive(self) -> bool:
        return bool(self.actions)

    # --- inputs ------------------------------------------------------------------------
    def fresh_input(self) -> Any:
        """A fresh copy of the input (calls `input_data` when it is a callable)."""
        if callable(self.input_data):
            return self.input_data()
        return copy.deepcopy(self.input_data)

    def native_kwargs(self) -> dict[str, Any]:
        """Keyword arguments to start the native definition with."""
        kw: dict[str, Any] = {"input_data": self.fresh_input()}
        if self.request_context is not None:
            kw["request_context"] = dict(self.request_context)
        return kw


def load_ref(ref: str) -> Any:
    """Import `module:qualname`."""
    mod, _, qual = ref.partition(":")
    if not mod or not qual:
        raise ValueError(f"bad reference {ref!r}: write it as 'package.module:name'")
    obj: Any = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


ACTION_KINDS = ("resume", "cancel_after", "expect")


def validate_action(action: Action, where: str = "?") -> None:
    """Raise ValueError naming the bad action."""
    if not isinstance(action, tuple) or len(action) != 2:
        raise ValueError(f"scenario {where!r}: action {action!r} must be a (kind, argument) pair")
    kind, arg = action
    if kind not in ACTION_KINDS:
        raise ValueError(f"scenario {where!r}: unknown action {kind!r}; use one of {ACTION_KINDS}")
    if kind == "cancel_after" and not isinstance(arg, int | float):
        raise ValueError(f"scenario {where!r}: cancel_after takes seconds, got {arg!r}")
    if kind == "resume":
        if not isinstance(arg, Mapping) or "step" not in arg:
            raise ValueError(f"scenario {where!r}: resume takes a dict with at least 'step', got {arg!r}")
        unknown = set(arg) - {"step", "resume_data", "for_each_index", "label", "at"}
        if unknown:
            raise ValueError(f"scenario {where!r}: resume has unknown keys {sorted(unknown)}")
    if kind == "expect" and (not isinstance(arg, Mapping) or not set(arg) <= {"status", "suspended"}):
        raise ValueError(f"scenario {where!r}: expect takes a dict with 'status' and/or 'suspended', got {arg!r}")


def step_path(step: str | Sequence[str]) -> str:
    """'a' -> 'a'; ['outer', 'inner', 'a'] -> 'outer.inner.a'."""
    if isinstance(step, str):
        return step
    return ".".join(step)


def hook_token(run_id: str, step: str | Sequence[str], for_each_index: int | None = None) -> str:
    """The hook token a native definition waits on for the Mastra step (path) `step`."""
    tok = f"{run_id}/{step_path(step)}"
    if for_each_index is not None:
        tok += f"#{for_each_index}"
    return tok
