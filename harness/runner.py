"""The runner: executes cells (one scenario on one engine) and classifies each one.

Owns the classification rule, and nothing else decides a verdict:

- the engine raised `engines.Unsupported` -> `unsupported`, with the engine's own reason;
- anything else raised -> `error`, with the exception (type, message, traceback);
- the run finished -> `scenarios.check.check(scenario, result, trace)`; no differences -> `pass`,
  otherwise `fail` with the differences as the diff.

Each cell runs in its own temporary directory with its own SQLite file (`$WFBENCH_DB`), in a
worker process of a `ProcessPoolExecutor` (2 workers by default) so cells cannot disturb each
other; `jobs=1` runs them in this process, one after the other. How a scenario is driven
(start, resume, cancel, crash and recover) is `harness.drive`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cells import Cell, ExceptionInfo, Verdict

EngineFactory = Callable[[str], Any]
ScenarioLookup = Callable[[str], Any]
CheckFn = Callable[..., list[str]]

DEFAULT_TIMEOUT_S = 60.0


LOCAL_ENGINES: tuple[str, ...] = ("default", "codegen", "codegen-strict", "stepmode", "native")
TEMPORAL = "temporal"
TEMPORAL_MIN_TIMEOUT_S = 180.0  # a temporal cell is server-bound (scale-chain-1000: ~50 s)
TEMPORAL_HEARTBEAT_S = "2"  # a step cut short by a killed worker is retried after 2 s, not 30


def engine_names() -> tuple[str, ...]:
    """Every engine the harness can run: the local ones, then those that need a server."""
    from engines import LOCAL_ENGINE_NAMES, SERVER_ENGINE_NAMES

    return (*LOCAL_ENGINE_NAMES, *SERVER_ENGINE_NAMES)


def local_engine_names() -> tuple[str, ...]:
    """The engines that need no server: what `wfbench matrix` runs by default."""
    from engines import LOCAL_ENGINE_NAMES

    return tuple(LOCAL_ENGINE_NAMES)


def make_engine(name: str, **options: Any) -> Any:
    """`engines.get_engine(name, **options)`."""
    from engines import get_engine

    return get_engine(name, **options)


def default_engine_factory(name: str, **options: Any) -> Any:
    """`engines.get_engine(name)`, storing runs in `$WFBENCH_DB` (the cell's own file)."""
    from harness.targets import install_engine_resolver

    install_engine_resolver()
    db = os.environ.get("WFBENCH_DB")
    if db and name != TEMPORAL:
        try:
            return make_engine(name, db=db, **options)
        except TypeError:  # an engine without a `db` option uses $WFBENCH_DB or memory
            pass
    return make_engine(name, **options)


def cell_env(engine: str) -> dict[str, str]:
    """Environment one cell runs with (its child processes inherit it): a `temporal` cell gets
    a task queue of its own, so concurrent cells on one server never run each other's steps."""
    if engine != TEMPORAL:
        return {}
    import uuid

    env = {"WFBENCH_TEMPORAL_TASK_QUEUE": f"cell-{uuid.uuid4().hex[:12]}"}
    if not os.environ.get("WFBENCH_TEMPORAL_HEARTBEAT"):
        env["WFBENCH_TEMPORAL_HEARTBEAT"] = TEMPORAL_HEARTBEAT_S
    return env


def reset_process_worlds() -> None:
    """Forget the durable world a previous cell of this worker process created, so the next
    one is opened on the current `$WFBENCH_DB`."""
    durable = sys.modules.get("durable")
    set_world = getattr(durable, "set_world", None)
    if callable(set_world):
        set_world(None)


def default_scenario_lookup(scenario_id: str) -> Any:
    from scenarios import get_scenario

    return get_scenario(scenario_id)


def default_check(scenario: Any, result: Any, trace: Any, *, native: bool = False) -> list[str]:
    from scenarios.check import check

    return list(check(scenario, result, trace, native=native))


def is_unsupported(exc: BaseException) -> bool:
    """True when `exc` is the engines' `Unsupported` refusal (or a subclass of it)."""
    try:
        from engines import Unsupported
    except ImportError:  # engines not importable: only a class named Unsupported counts
        return any(cls.__name__ == "Unsupported" for cls in type(exc).__mro__)
    return isinstance(exc, Unsupported)


@dataclass(frozen=True)
class CellSpec:
    """What a worker process needs to run one cell; picklable (names and importable callables)."""

    engine: str
    scenario: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    engine_factory: EngineFactory = default_engine_factory
    scenario_lookup: ScenarioLookup = default_scenario_lookup
    check: CheckFn = default_check
    keep_dir: bool = False


class CellTimeout(Exception):
    """The cell ran longer than its time limit."""


def run_cell(spec: CellSpec, workdir: Path | None = None) -> Cell:
    """Run one cell in this process and classify it. Never raises for a cell's own failure."""
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix=f"wfbench-{spec.engine}-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        return _run_cell_in(spec, base, started)
    finally:
        if own_dir and not spec.keep_dir:
            shutil.rmtree(base, ignore_errors=True)


def _run_cell_in(spec: CellSpec, workdir: Path, started: float) -> Cell:
    from harness import drive

    env = {"WFBENCH_DB": str(workdir / "runs.db"), **cell_env(spec.engine)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_process_worlds()
    generated: str | None = None
    try:
        engine = spec.engine_factory(spec.engine)
        scenario = spec.scenario_lookup(spec.scenario)
        generated = drive.generated_source(engine, scenario)
        refs = drive.ChildRefs(
            engine_name=spec.engine,
            engine_factory=None if spec.engine_factory is default_engine_factory
            else _ref(spec.engine_factory),
            scenario_lookup=None if spec.scenario_lookup is default_scenario_lookup
            else _ref(spec.scenario_lookup))
        box: dict[str, Any] = {}

        async def main() -> None:
            # The outcome is kept out of the main task's result: asyncio.run's SIGINT handler
            # holds that task, and restoring the handler formats its repr (a whole trace).
            box["outcome"] = await _with_timeout(drive.drive(engine, scenario, workdir, refs),
                                                 spec.timeout_s)

        with _alarm(spec.timeout_s + 5.0) as alarm:
            run_bounded(main(), alarm)
        outcome = box["outcome"]
        native = {"native": True} if outcome.native else {}
        diff = list(outcome.extra_diff) + list(
            spec.check(scenario, outcome.result, outcome.trace, **native))
    except BaseException as exc:  # noqa: BLE001 - classifying every failure is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        elapsed = time.perf_counter() - started
        if is_unsupported(exc):
            return Cell(spec.engine, spec.scenario, Verdict.UNSUPPORTED, elapsed,
                        reason=str(exc) or type(exc).__name__, generated_source=generated)
        if isinstance(exc, drive.NotApplicable):
            return Cell(spec.engine, spec.scenario, Verdict.NA, elapsed, reason=str(exc))
        info = exc.info if isinstance(exc, drive.ChildFailure) else \
            ExceptionInfo.from_exception(exc)
        return Cell(spec.engine, spec.scenario, Verdict.ERROR, elapsed,
                    exception=info, generated_source=generated)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_process_worlds()
    elapsed = time.perf_counter() - started
    verdict = Verdict.FAIL if diff else Verdict.PASS
    return Cell(spec.engine, spec.scenario, verdict, elapsed, diff=diff,
                generated_source=generated)


def _ref(fn: Any) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


CANCEL_GRACE_S = 5.0  # how long a timed-out cell's tasks get to end once cancelled
_ABANDONED: list[asyncio.Task[Any]] = []


async def _with_timeout(coro: Any, timeout_s: float) -> Any:
    """`coro`'s result, or CellTimeout after `timeout_s`. Unlike `asyncio.wait_for`, the wait for
    the cancelled work is bounded too (a Temporal worker's shutdown, for one, can outlast it)."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
        raise CellTimeout(f"the cell did not finish within {timeout_s:g} s")
    return task.result()


def run_bounded(coro: Any, alarm: _alarm | None = None) -> Any:
    """`asyncio.run(coro)`, except that the clean-up is bounded: the tasks still pending when
    `coro` ends (or the hard limit stops the loop) get `CANCEL_GRACE_S` to finish after
    cancellation, then the loop is closed anyway. (`asyncio.run` waits for them without a
    limit, so one task that ignores cancellation would hang the whole matrix.)"""
    loop = asyncio.new_event_loop()
    if alarm is not None:
        alarm.loop = loop
    try:
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(coro)
        except RuntimeError:
            if alarm is not None and alarm.fired:  # the hard limit stopped the loop
                raise CellTimeout(f"the cell blocked for more than {alarm.seconds:g} s") \
                    from None
            raise
    finally:
        if alarm is not None:
            alarm.loop = None
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=CANCEL_GRACE_S))
                # tasks that ignored cancellation are kept, not collected: closing their
                # coroutines later, outside their context, would raise in unrelated code
                _ABANDONED.extend(t for t in pending if not t.done())
            loop.run_until_complete(asyncio.wait(
                {loop.create_task(loop.shutdown_asyncgens()),
                 loop.create_task(loop.shutdown_default_executor())},
                timeout=CANCEL_GRACE_S))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class _alarm:
    """A hard limit (main thread of a process only): when it fires it raises CellTimeout where
    the main thread is (code blocking the loop included) and stops the event loop of
    `run_bounded`, so the cell ends as a CellTimeout however the exception is handled."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = False
        self.fired = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.previous: Any = None

    def __enter__(self) -> _alarm:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        self.previous = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.active = True
        return self

    def _fire(self, signum: int, frame: Any) -> None:
        self.fired = True
        loop = self.loop
        if loop is not None and loop.is_running():
            # if the exception below is swallowed (raised inside a loop callback), the stopped
            # loop still ends run_until_complete (RuntimeError -> CellTimeout)
            loop.stop()
        raise CellTimeout(f"the cell blocked for more than {self.seconds:g} s")

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


@dataclass
class RunPlan:
    """Engines x scenarios to run, and how."""

    engines: Sequence[str]
    scenarios: Sequence[str]
    jobs: int = 2
    timeout_s: float = DEFAULT_TIMEOUT_S
    engine_factory: EngineFactory = default_engine_factory
    scenario_lookup: ScenarioLookup = default_scenario_lookup
    check: CheckFn = default_check
    serial_scenarios: frozenset[str] = field(default_factory=frozenset)

    def timeout_for(self, engine: str) -> float:
        """The cell time limit: `timeout_s`, at least `TEMPORAL_MIN_TIMEOUT_S` on temporal."""
        if engine == TEMPORAL:
            return max(self.timeout_s, TEMPORAL_MIN_TIMEOUT_S)
        return self.timeout_s

    def specs(self) -> list[CellSpec]:
        return [
            CellSpec(engine=e, scenario=s, timeout_s=self.timeout_for(e),
                     engine_factory=self.engine_factory, scenario_lookup=self.scenario_lookup,
                     check=self.check)
            for s in self.scenarios
            for e in self.engines
        ]


def run_matrix_cells(plan: RunPlan, *, progress: bool = False) -> list[Cell]:
    """Run every cell of the plan; cells come back in plan order (scenario-major).

    Cells of `plan.serial_scenarios` (timing-sensitive or heavy scenarios) run after the
    parallel ones, in this process's pool one at a time.
    """
    specs = plan.specs()
    results: dict[tuple[str, str], Cell] = {}
    weight = {sid: _weight(plan, sid) for sid in plan.scenarios}
    ordered = sorted(specs, key=lambda s: -weight[s.scenario])  # slow families first
    parallel = [s for s in ordered if s.scenario not in plan.serial_scenarios]
    serial = [s for s in ordered if s.scenario in plan.serial_scenarios]
    with _Progress(len(specs), enabled=progress) as bar:
        if plan.jobs <= 1:
            for spec in parallel + serial:
                results[(spec.engine, spec.scenario)] = run_cell(spec)
                bar.advance(results[(spec.engine, spec.scenario)])
        else:
            method = start_method(plan.engines)
            for cell in _run_in_pool(parallel, plan.jobs, bar, method):
                results[cell.key] = cell
            for cell in _run_in_pool(serial, 1, bar, method):
                results[cell.key] = cell
    return [results[(s.engine, s.scenario)] for s in specs]


_SLOW_FAMILIES = {"scale": 3, "durability": 2, "determinism": 2}


def _weight(plan: RunPlan, scenario_id: str) -> int:
    """Scheduling weight: cells of slow families are submitted first, so the pool does not end
    on a long tail. Only the order changes, never a verdict."""
    try:
        family = str(getattr(plan.scenario_lookup(scenario_id), "family", ""))
    except Exception:  # noqa: BLE001 - an unknown scenario is reported by its cell
        return 0
    return _SLOW_FAMILIES.get(family, 0)


def start_method(engines: Iterable[str]) -> str:
    """How the pool starts its worker processes: `fork` (cheap), but `spawn` when a temporal
    cell may run: temporalio's runtime (threads of its Rust core) cannot be used across a fork,
    and the process starting the pool may have created one (a test session, for instance)."""
    return "spawn" if TEMPORAL in engines else "fork"


def _run_in_pool(specs: Iterable[CellSpec], jobs: int, bar: _Progress,
                 method: str = "fork") -> list[Cell]:
    pending = list(specs)
    done: list[Cell] = []
    if not pending:
        return done
    ctx = multiprocessing.get_context(method)
    broken: list[CellSpec] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures: dict[Future[Cell], CellSpec] = {pool.submit(run_cell, s): s for s in pending}
        for fut in _as_completed(futures):
            spec = futures[fut]
            try:
                cell = fut.result()
            except BrokenProcessPool:
                broken.append(spec)
                continue
            done.append(cell)
            bar.advance(cell)
    # A worker died (not a Python exception: killed, os._exit, segfault). Rerun each cell that
    # was lost alone, so only the one that kills its process is blamed.
    for spec in broken:
        cell = _run_isolated(spec, ctx)
        done.append(cell)
        bar.advance(cell)
    return done


def _as_completed(futures: dict[Future[Cell], CellSpec]) -> Iterable[Future[Cell]]:
    from concurrent.futures import as_completed

    return as_completed(futures)


def _run_isolated(spec: CellSpec, ctx: Any) -> Cell:
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        try:
            return pool.submit(run_cell, spec).result(timeout=spec.timeout_s + 30)
        except Exception as exc:  # noqa: BLE001
            return Cell(spec.engine, spec.scenario, Verdict.ERROR,
                        time.perf_counter() - started,
                        exception=ExceptionInfo(
                            type=type(exc).__name__,
                            message=f"the cell's worker process died: {exc}",
                            traceback=""))


class _Progress:
    """A rich progress bar on stderr when enabled and stderr is a terminal."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            console = Console(stderr=True)
            self._progress = Progress(
                TextColumn("[bold]cells"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.description}"),
                console=console, transient=True, disable=not console.is_terminal,
                auto_refresh=False,  # no refresh thread: worker processes are forked
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def advance(self, cell: Cell) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1,
                                  description=f"{cell.engine} {cell.scenario}: {cell.verdict}")
            self._progress.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
