"""The temporal column of `wfbench bench`: one server per session, one worker block per workload,
capped sizes, and the `--engine temporal|all` spelling (fakes; one tiny real run marked
`temporal`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest

from harness.bench import command, runner
from harness.bench.workloads import Workload


class FakeTemporal:
    """A flow-shaped engine with an async context (like TemporalEngine's in-process worker) that
    records whether every run happens inside it."""

    log: list[str] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.inside = False

    def check(self, target: Any) -> None:
        FakeTemporal.log.append(f"check:{target.id}")

    async def __aenter__(self) -> FakeTemporal:
        assert not self.inside
        self.inside = True
        FakeTemporal.log.append("enter")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.inside = False
        FakeTemporal.log.append("exit")

    async def run(self, target: Any, input_data: Any = None, **kw: Any) -> Any:
        FakeTemporal.log.append(f"run:{target.id}:{'in' if self.inside else 'OUT'}")
        if target.id == "bench-suspend":
            return SimpleNamespace(status="suspended", result=None, run_id="r", error=None)
        kind, size = target.id.removeprefix("bench-").rsplit("-", 1)
        return SimpleNamespace(status="success", result=Workload(kind, int(size)).expected_result(),
                               run_id="r", error=None)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     **kw: Any) -> Any:
        FakeTemporal.log.append(f"resume:{step}:{'in' if self.inside else 'OUT'}")
        return SimpleNamespace(status="success", result={"value": resume_data["value"]},
                               run_id=run_id, error=None)


def fake_factory(name: str, db: Path) -> Any:
    return FakeTemporal(name)


class FakeServer:
    def __init__(self) -> None:
        self.sessions: list[list[str]] = []
        self.running = False

    @contextlib.contextmanager
    def __call__(self, engines: Sequence[str]) -> Iterator[str]:
        self.sessions.append(list(engines))
        self.running = True
        try:
            yield "127.0.0.1:1"
        finally:
            self.running = False


PLAN = runner.Plan(name="t", sizes={"chain": (2, 150), "fanout": (3,), "foreach": (5,),
                                    "suspend": (1,), "compile": (4,)},
                   repeats_min=2, repeats_max=2, warmup=1, cell_budget_s=1.0)


def _cells(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["workload"]: c for c in raw["cells"] if c["column"] == "temporal"}


def test_temporal_column_one_server_one_worker_block_per_workload() -> None:
    FakeTemporal.log = []
    server = FakeServer()
    raw = runner.run_bench(PLAN, ["temporal"], floors=[], peers=[], engine_factory=fake_factory,
                           server=server)
    assert server.sessions == [["temporal"]] and not server.running
    cells = _cells(raw)
    assert {w: c["status"] for w, c in cells.items()} == {
        "chain-2": "ok", "chain-150": "skipped", "fanout-3": "ok", "foreach-5": "skipped",
        "suspend-1": "ok", "compile-4": "n/a"}
    assert cells["foreach-5"]["reason"] == "too slow for the time budget (~45 ms/step)"
    assert cells["chain-150"]["reason"].startswith("too slow for the time budget (~45 ms/step)")
    assert "up to 100" in cells["chain-150"]["reason"]
    # measured workloads: chain-2, fanout-3, suspend-1 -> one worker block each, entered after
    # the workflow was checked (registered), 1 warm-up + 2 timed runs inside it
    assert FakeTemporal.log.count("enter") == 3 and FakeTemporal.log.count("exit") == 3
    assert not any(e.endswith(":OUT") for e in FakeTemporal.log)
    assert FakeTemporal.log.count("run:bench-chain-2:in") == 3
    assert FakeTemporal.log.count("resume:ask:in") == 3
    first = FakeTemporal.log.index("check:bench-chain-2")
    assert FakeTemporal.log[first + 1] == "enter"
    assert [c["name"] for c in raw["columns"]] == ["temporal"]


def test_no_server_without_temporal() -> None:
    server = FakeServer()
    raw = runner.run_bench(runner.Plan(name="t", sizes={"chain": (1,)}, repeats_min=1,
                                       repeats_max=1),
                           ["default-mem"], floors=[], peers=[], server=server)
    assert server.sessions == []
    assert _cells(raw) == {}


def test_temporal_skip_reason_caps() -> None:
    assert runner.temporal_skip_reason(Workload("chain", 100)) is None
    assert runner.temporal_skip_reason(Workload("fanout", 100)) is None
    assert runner.temporal_skip_reason(Workload("chain", 1000)) is not None
    assert runner.temporal_skip_reason(Workload("foreach", 1)) == runner.TEMPORAL_TOO_SLOW


def test_make_engine_gives_each_workload_its_own_task_queue(tmp_path: Path) -> None:
    a = runner.make_engine("temporal", tmp_path / "a" / "runs.db")
    b = runner.make_engine("temporal", tmp_path / "a" / "runs.db")
    assert a.name == "temporal" and a.task_queue != b.task_queue
    assert a.task_queue.startswith("bench-a-")


def test_engine_option_spelling() -> None:
    assert command._check_engines(()) is None  # default: local columns only
    assert "temporal" not in runner.engine_columns()
    everything = command._check_engines(("all",))
    assert everything is not None and everything[-1] == "temporal"
    assert set(runner.engine_columns()) <= set(everything)
    assert command._check_engines(("temporal", "codegen", "temporal")) == ["temporal", "codegen"]
    with pytest.raises(click.BadParameter, match="unknown engine 'temporl'"):
        command._check_engines(("temporl",))


@pytest.mark.temporal
def test_real_temporal_column_tiny() -> None:
    pytest.importorskip("temporalio")
    plan = runner.Plan(name="t", sizes={"chain": (3,), "suspend": (1,), "foreach": (2,)},
                       repeats_min=1, repeats_max=1, warmup=1, cell_budget_s=0.1)
    raw = runner.run_bench(plan, ["temporal"], floors=[], peers=[])
    cells = _cells(raw)
    assert cells["chain-3"]["status"] == "ok", cells["chain-3"]["reason"]
    assert cells["suspend-1"]["status"] == "ok", cells["suspend-1"]["reason"]
    assert len(cells["chain-3"]["times_s"]) == 1
    assert cells["foreach-2"]["status"] == "skipped"
