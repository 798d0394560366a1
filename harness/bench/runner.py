"""Bench runner: every column (engines, floors, peers) on every workload, in one run.

Owns `Plan` (sizes, repeats, per-cell time budget; `QUICK` and `FULL`), the engine columns
(`ENGINE_COLUMNS`, `make_engine`: each engine on a fresh temp SQLite db per workload — flow's
`SqliteSnapshotStore` for `default`/`stepmode`, durable's `SqliteWorld` (WAL, NORMAL) for
`codegen`, `codegen-strict`, `native`; `default-mem` is the default engine without a store), the
server column `temporal` (`SERVER_ENGINE_COLUMNS`; only when asked for: one Temporal dev server for
the whole bench session via `harness.session.temporal_server`, a unique task queue per workload
and one in-process worker (`async with engine:`) serving all runs of that workload; sizes capped
by `TEMPORAL_MAX_SIZE`, ~45 ms/step), and `run_bench(...) -> dict`, the raw measurements
(`report.summarize` turns them into figures).

A cell is (workload, column): one untimed warm-up run, then `repeats` timed runs (wall clock,
`time.perf_counter`). Every run's result is checked against the workload's expected result, so a
wrong engine is an `error` cell, not a fast one. A column that cannot run a workload is
`unsupported` (reason kept) or `n/a`; a size is `skipped` when the same column's smaller size of
that kind already blew the time budget.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from harness.bench import peers as peers_mod
from harness.bench.floors import FLOORS, Floor, floor_applies
from harness.bench.workloads import (
    KINDS,
    Workload,
    flow_input,
    flow_workflow,
    native_call,
    suspend_token,
)

# `default-mem` is not an engine name: the `default` engine without a snapshot store.
EXTRA_ENGINE_COLUMNS: tuple[str, ...] = ("default-mem",)
# Engines that need a server: measured only when named (`wfbench bench --engine temporal|all`).
SERVER_ENGINE_COLUMNS: tuple[str, ...] = ("temporal",)
TEMPORAL = "temporal"
TEMPORAL_TOO_SLOW = "too slow for the time budget (~45 ms/step)"
# The largest size of each kind the temporal column runs (0 = none); larger ones are skipped.
TEMPORAL_MAX_SIZE: dict[str, int] = {"chain": 100, "fanout": 100, "foreach": 0, "dountil": 100,
                                     "suspend": 1}
SKIPPED_ENGINES: dict[str, str] = {}
DURABLE_ENGINES = ("codegen", "codegen-strict", "native")
DEBUG = bool(os.environ.get("WFBENCH_BENCH_DEBUG"))


def engine_columns() -> tuple[str, ...]:
    """Every engine of `engines.ENGINE_NAMES` (plus `default-mem`), in a stable order."""
    from engines import ENGINE_NAMES

    cols: list[str] = []
    for name in ENGINE_NAMES:
        cols.append(name)
        if name == "default":
            cols.extend(EXTRA_ENGINE_COLUMNS)
    return tuple(cols)


def all_engine_columns() -> tuple[str, ...]:
    """`engine_columns()` plus the server engines (`temporal`): what `--engine all` measures."""
    return engine_columns() + SERVER_ENGINE_COLUMNS


def temporal_skip_reason(w: Workload) -> str | None:
    """Why the temporal column skips `w` (None when it runs it): sizes above
    `TEMPORAL_MAX_SIZE` cost ~45 ms per step on a Temporal server."""
    limit = TEMPORAL_MAX_SIZE.get(w.kind)
    if limit is None or w.size <= limit:
        return None
    if limit == 0:
        return TEMPORAL_TOO_SLOW
    return f"{TEMPORAL_TOO_SLOW}; temporal runs {w.kind} sizes up to {limit}"


@dataclass(frozen=True)
class Plan:
    """What to measure. `sizes[kind]` are the sizes of each workload kind; each cell runs
    `warmup` untimed runs then between `repeats_min` and `repeats_max` timed runs, as many as fit
    in `cell_budget_s` (judged from the warm-up). A cell whose median exceeds `size_cap_s` stops
    that column's larger sizes of the same kind."""

    name: str
    sizes: dict[str, tuple[int, ...]]
    repeats_min: int = 3
    repeats_max: int = 7
    warmup: int = 1
    cell_budget_s: float = 10.0
    size_cap_s: float = 20.0
    peer_max_size: dict[str, int] = field(default_factory=dict)
    peer_timeout_s: float = 120.0

    def workloads(self) -> list[Workload]:
        out: list[Workload] = []
        for kind in KINDS:
            out.extend(Workload(kind, n) for n in self.sizes.get(kind, ()))
        return out


FULL = Plan(
    name="full",
    sizes={"chain": (1, 10, 100, 1000), "fanout": (10, 100, 1000), "foreach": (1000,),
           "dountil": (100,), "suspend": (1,), "compile": (200,)},
    repeats_min=3, repeats_max=15, cell_budget_s=12.0, size_cap_s=30.0,
    # the official SDK replays the whole run per step (O(N^2)): 159 s for a chain of 1000
    peer_max_size={"vercel-workflow": 100}, peer_timeout_s=300.0,
)
QUICK = Plan(
    name="quick",
    sizes={"chain": (1, 10, 100, 300), "fanout": (10, 100, 300), "foreach": (300,),
           "dountil": (100,), "suspend": (1,), "compile": (200,)},
    repeats_min=3, repeats_max=9, cell_budget_s=2.5, size_cap_s=8.0,
    peer_max_size={"vercel-workflow": 10}, peer_timeout_s=60.0,
)


class BenchError(RuntimeError):
    """A run returned the wrong status or result."""


class Column(Protocol):
    """Something that runs a workload once (`run`) and frees its resources (`close`)."""

    async def run(self, w: Workload) -> None: ...

    def close(self) -> None: ...


def make_engine(name: str, db: Path) -> Any:
    """The engine `name` on a fresh SQLite database at `db`."""
    from engines import get_engine

    if name == "default-mem":
        return get_engine("default")
    if name == TEMPORAL:
        # the session's dev server ($WFBENCH_TEMPORAL_ADDRESS), a task queue of its own
        return get_engine(name, task_queue=f"bench-{db.parent.name}-{uuid.uuid4().hex[:8]}")
    if name in ("default", "stepmode"):
        from flow import SqliteSnapshotStore

        return get_engine(name, store=SqliteSnapshotStore(db))
    if name in DURABLE_ENGINES:
        import durable

        return get_engine(name, world=durable.SqliteWorld(db))
    return get_engine(name, db=str(db))


def check_result(w: Workload, column: str, result: Any) -> None:
    status = getattr(result, "status", None)
    if status != w.expected_status:
        err = getattr(result, "error", None)
        raise BenchError(f"{column} on {w.name}: status {status!r}, expected "
                         f"{w.expected_status!r}" + (f" ({err!r})" if err else ""))
    if result.result != w.expected_result():
        raise BenchError(f"{column} on {w.name}: wrong result {str(result.result)[:120]}")


class EngineColumn:
    """An engine (or `default-mem`) as a bench column, on a fresh db in `workdir`."""

    def __init__(self, name: str, workdir: Path,
                 factory: Callable[[str, Path], Any] = make_engine) -> None:
        self.name = name
        self.engine = factory(name, workdir / "runs.db")

    def supports(self, w: Workload) -> str | None:
        """None if this column runs `w`, else the reason it is n/a."""
        if w.kind == "compile" and self.name not in ("codegen", "codegen-strict"):
            return "compile time applies to the codegen engines only"
        return None

    def check(self, w: Workload) -> None:
        """Raise `engines.Unsupported` before anything is timed."""
        if w.kind == "compile":
            return
        if self.name == "native":
            self.engine.check(native_call(w)[0])
        else:
            self.engine.check(flow_workflow(w))
            if self.name == "codegen-strict":
                from engines.codegen.compiler import compile_workflow

                compile_workflow(flow_workflow(w), strict=True)

    async def run(self, w: Workload) -> None:
        if w.kind == "compile":
            from engines.codegen.compiler import compile_workflow

            # extra_globals bypasses the compiler's per-workflow cache: every run compiles
            compile_workflow(flow_workflow(w), strict=self.name == "codegen-strict", extra_globals={})
            return
        if self.name == "native":
            fn, args = native_call(w)
            result = await self.engine.run(fn, args=args)
            if w.kind == "suspend":
                if result.status != "suspended":
                    raise BenchError(f"native on {w.name}: status {result.status!r}, expected 'suspended'")
                result = await self.engine.resume(fn, result.run_id, step=suspend_token(result.run_id),
                                                  resume_data={"value": 7})
        else:
            wf = flow_workflow(w)
            result = await self.engine.run(wf, input_data=flow_input(w))
            if w.kind == "suspend":
                if result.status != "suspended":
                    raise BenchError(f"{self.name} on {w.name}: status {result.status!r}, "
                                     "expected 'suspended'")
                result = await self.engine.resume(wf, result.run_id, step="ask",
                                                  resume_data={"value": 7})
        check_result(w, self.name, result)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """The block every run of one workload happens in: for an engine with an async context
        (temporal: one in-process worker for the block, entered after `check` registered the
        workflow), that context; else nothing."""
        if hasattr(self.engine, "__aenter__"):
            async with self.engine:
                yield
        else:
            yield

    def close(self) -> None:
        for holder in (getattr(self.engine, "store", None), getattr(self.engine, "_world", None)):
            close = getattr(holder, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # pragma: no cover - closing is best effort
                    pass


class FloorColumn:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.floor = Floor(name, workdir)

    async def run(self, w: Workload) -> None:
        result = await self.floor.run(w)
        if result != w.expected_result():
            raise BenchError(f"floor {self.name} on {w.name}: wrong result {str(result)[:120]}")

    def close(self) -> None:
        self.floor.close()


@dataclass
class Cell:
    """The raw measurement of one (workload, column)."""

    workload: str
    kind: str
    size: int
    units: int
    column: str
    column_kind: str  # engine | floor | peer
    status: str  # ok | unsupported | error | skipped | n/a
    reason: str = ""
    times_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times_s) if self.times_s else None


async def time_column(col: Column, w: Workload, plan: Plan) -> tuple[list[float], list[float]]:
    """Warm up, then time `col.run(w)` between repeats_min and repeats_max times; returns the
    wall-clock times and the CPU times (`time.process_time`, this process) of the timed runs."""
    warm = 0.0
    for _ in range(plan.warmup):
        t0 = time.perf_counter()
        await col.run(w)
        warm = time.perf_counter() - t0
    fit = int(plan.cell_budget_s / warm) if warm > 0 else plan.repeats_max
    repeats = max(plan.repeats_min, min(plan.repeats_max, fit))
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        await col.run(w)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


ProgressFn = Callable[[str], None]


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


async def measure_cell(make: Callable[[Path], Column], w: Workload, column: str, column_kind: str,
                       plan: Plan, root: Path) -> Cell:
    cell = Cell(w.name, w.kind, w.size, w.units, column, column_kind, "ok")
    workdir = Path(tempfile.mkdtemp(prefix=f"{column}-{w.name}-", dir=root))
    col: Column | None = None
    try:
        col = make(workdir)
        reason = col.supports(w) if isinstance(col, EngineColumn) else None
        if reason:
            cell.status, cell.reason = "n/a", reason
            return cell
        if isinstance(col, EngineColumn):
            col.check(w)
            async with col.serving():
                cell.times_s, cell.cpu_s = await time_column(col, w, plan)
        else:
            cell.times_s, cell.cpu_s = await time_column(col, w, plan)
    except Exception as exc:
        from engines import Unsupported

        if isinstance(exc, Unsupported):
            cell.status, cell.reason = "unsupported", exc.reason
        else:
            cell.status, cell.reason = "error", _one_line(exc)
            if DEBUG:
                traceback.print_exc()
    finally:
        if col is not None:
            col.close()
    return cell


def _floor_maker(name: str) -> Callable[[Path], Column]:
    def make(workdir: Path) -> Column:
        return FloorColumn(name, workdir)

    return make


def _engine_maker(name: str, factory: Callable[[str, Path], Any]) -> Callable[[Path], Column]:
    def make(workdir: Path) -> Column:
        return EngineColumn(name, workdir, factory)

    return make


def machine_info() -> dict[str, Any]:
    """Python, platform, CPUs, SQLite version and the load average (other work on the machine
    makes wall-clock figures noisy; CPU times are reported too)."""
    return {"load_avg": [round(x, 2) for x in os.getloadavg()],"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "sqlite": __import__("sqlite3").sqlite_version}


async def run_bench_async(plan: Plan, engines: Sequence[str] | None = None, *,
                          floors: Sequence[str] = FLOORS, peers: Sequence[str] | None = None,
                          engine_factory: Callable[[str, Path], Any] = make_engine,
                          progress: ProgressFn | None = None,
                          on_cell: Callable[[Cell], None] | None = None,
                          server: Callable[[Sequence[str]], AbstractContextManager[Any]] | None = None,
                          ) -> dict[str, Any]:
    """Measure every column on every workload of `plan`; returns the raw results (JSON-able).

    `engines` default to every engine column; `peers` default to `peers.PEERS` (each reported as
    skipped with the reason when not installed); `engine_factory(name, db_path)` builds an engine
    (tests pass a fake one). With `temporal` among `engines`, `server(engines)` (default
    `harness.session.temporal_server`) provides the one Temporal server of the session."""
    engine_names = list(engines) if engines is not None else list(engine_columns())
    peer_names = list(peers) if peers is not None else list(peers_mod.PEERS)
    columns: list[dict[str, Any]] = []
    for name in engine_names:
        columns.append({"name": name, "kind": "engine", "status": "ok",
                        "reason": SKIPPED_ENGINES.get(name, "")})
        if name in SKIPPED_ENGINES:
            columns[-1]["status"] = "skipped"
    columns += [{"name": f, "kind": "floor", "status": "ok", "reason": ""} for f in floors]
    for p in peer_names:
        missing = peers_mod.unavailable(p)
        columns.append({"name": p, "kind": "peer", "status": "skipped" if missing else "ok",
                        "reason": missing or "", "version": peers_mod.version(p)})
    cells: list[Cell] = []
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    too_slow: dict[tuple[str, str], str] = {}
    if server is None:
        from harness.session import temporal_server

        server = temporal_server
    session = server(engine_names) if TEMPORAL in engine_names else nullcontext()
    with session, tempfile.TemporaryDirectory(prefix="wfbench-bench-") as tmp:
        root = Path(tmp)
        for w in plan.workloads():
            for col in columns:
                name, kind = col["name"], col["kind"]
                if progress:
                    progress(f"{w.name} · {name}")
                cell = Cell(w.name, w.kind, w.size, w.units, name, kind, "ok")
                if col["status"] == "skipped":
                    cell.status, cell.reason = "skipped", col["reason"]
                elif (name, w.kind) in too_slow:
                    cell.status, cell.reason = "skipped", too_slow[(name, w.kind)]
                elif name == TEMPORAL and (why := temporal_skip_reason(w)) and w.kind != "compile":
                    cell.status, cell.reason = "skipped", why
                elif kind == "floor" and not floor_applies(w):
                    cell.status, cell.reason = "n/a", "no floor for compile time"
                elif kind == "peer":
                    cell = await asyncio.to_thread(peers_mod.measure, name, w, plan, root)
                elif kind == "floor":
                    cell = await measure_cell(_floor_maker(name), w, name, kind, plan, root)
                else:
                    cell = await measure_cell(_engine_maker(name, engine_factory), w, name, kind,
                                              plan, root)
                med = cell.median_s
                if med is not None and med > plan.size_cap_s:
                    too_slow[(name, w.kind)] = (f"{w.kind}-{w.size} already took {med:.1f} s "
                                                f"(cap {plan.size_cap_s:g} s in the {plan.name} plan)")
                cells.append(cell)
                if on_cell:
                    on_cell(cell)
    return {
        "schema": "wfbench-bench-1",
        "plan": {"name": plan.name, "sizes": {k: list(v) for k, v in plan.sizes.items()},
                 "repeats_min": plan.repeats_min, "repeats_max": plan.repeats_max,
                 "warmup": plan.warmup},
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(time.perf_counter() - started, 2),
        "machine": {**machine_info(), "load_avg_start": load_before},
        "columns": columns,
        "cells": [asdict(c) for c in cells],
    }


def run_bench(plan: Plan, engines: Sequence[str] | None = None, **kw: Any) -> dict[str, Any]:
    """Synchronous wrapper of `run_bench_async` (its own event loop)."""
    return asyncio.run(run_bench_async(plan, engines, **kw))

