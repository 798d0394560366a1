"""pytest-benchmark suite: the `wfbench bench` workloads on every engine and floor.

Run with `tox -e bench` (pytest tests/bench -m bench --benchmark-only). Each benchmark is one
(column, workload) on a fresh SQLite database; every round's result is checked. Nothing here
asserts a time: the targets are reported by `wfbench bench`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engines import Unsupported
from harness.bench.floors import FLOORS
from harness.bench.runner import SKIPPED_ENGINES, EngineColumn, FloorColumn, engine_columns
from harness.bench.workloads import Workload

pytestmark = pytest.mark.bench

WORKLOADS = [Workload("chain", 100), Workload("chain", 1000), Workload("fanout", 100),
             Workload("fanout", 1000), Workload("foreach", 1000), Workload("dountil", 100),
             Workload("suspend", 1)]
ROUNDS = {100: 10, 1000: 3}
ENGINES = [e for e in engine_columns() if e not in SKIPPED_ENGINES]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _bench(benchmark: Any, loop: asyncio.AbstractEventLoop, col: Any, w: Workload) -> None:
    def once() -> None:
        loop.run_until_complete(col.run(w))

    benchmark.extra_info.update({"workload": w.name, "units": w.units})
    try:
        benchmark.pedantic(once, rounds=ROUNDS.get(w.size, 10), warmup_rounds=1, iterations=1)
    finally:
        col.close()


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: w.name)
@pytest.mark.parametrize("engine", ENGINES)
def test_engine(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, engine: str,
                w: Workload) -> None:
    col = EngineColumn(engine, tmp_path)
    try:
        col.check(w)
    except Unsupported as exc:
        col.close()
        pytest.skip(f"{engine} cannot run {w.name}: {exc.reason}")
    benchmark.group = w.name
    _bench(benchmark, loop, col, w)


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: w.name)
@pytest.mark.parametrize("floor", FLOORS)
def test_floor(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, floor: str,
               w: Workload) -> None:
    benchmark.group = w.name
    _bench(benchmark, loop, FloorColumn(floor, tmp_path), w)


@pytest.mark.parametrize("engine", ["codegen", "codegen-strict"])
def test_compile_200(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path,
                     engine: str) -> None:
    benchmark.group = "compile-200"
    _bench(benchmark, loop, EngineColumn(engine, tmp_path), Workload("compile", 200))
