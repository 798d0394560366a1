"""harness.bench runner, workloads, floors, peers and the `bench` command, on tiny sizes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from engines import Unsupported
from harness.bench import command, peers, runner
from harness.bench.floors import CommitLog, Floor, sqlite_run
from harness.bench.workloads import Workload, compile_graph, parse_workload, plain_run

TINY = runner.Plan(name="tiny", sizes={"chain": (1, 3), "fanout": (2,), "foreach": (4,),
                                       "dountil": (3,), "suspend": (1,), "compile": (6,)},
                   repeats_min=3, repeats_max=3, warmup=1, cell_budget_s=1.0, size_cap_s=30.0)


def test_workload_expected_results_and_parse() -> None:
    assert Workload("chain", 3).expected_result() == {"value": 3}
    assert Workload("fanout", 2).expected_result() == {"s0": {"value": 1}, "s1": {"value": 1}}
    assert Workload("foreach", 2).expected_result() == [{"value": 1}, {"value": 2}]
    assert Workload("dountil", 5).expected_result() == {"value": 5}
    assert Workload("suspend", 1).expected_result() == {"value": 7}
    assert parse_workload("fanout-100") == Workload("fanout", 100)
    with pytest.raises(ValueError, match="expected KIND-SIZE"):
        parse_workload("chain")
    with pytest.raises(ValueError, match="unknown workload kind 'loop'"):
        Workload("loop", 3)
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        Workload("chain", 0)


def test_compile_graph_has_exactly_the_entries_asked() -> None:
    assert len(compile_graph(200).graph) == 200
    assert len(compile_graph(7).graph) == 7


async def test_plain_and_sqlite_floors(tmp_path: Path) -> None:
    for w in (Workload("chain", 5), Workload("fanout", 3), Workload("foreach", 12),
              Workload("dountil", 4), Workload("suspend", 1)):
        assert await plain_run(w) == w.expected_result()
    log = CommitLog(tmp_path / "f.db", "NORMAL")
    assert await sqlite_run(Workload("chain", 5), log) == {"value": 5}
    assert log.commits == 5
    await sqlite_run(Workload("suspend", 1), log)
    assert log.commits == 7  # a round trip commits the suspension and the result
    assert log.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    log.close()
    full = Floor("sqlite-full", tmp_path)
    assert full.log is not None
    assert full.log.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    full.close()
    with pytest.raises(ValueError, match="unknown floor 'disk'"):
        Floor("disk", tmp_path)


class FakeEngine:
    """Answers every flow workload correctly (from the workflow id), counting runs."""

    calls: list[str] = []

    def __init__(self, name: str, mode: str = "ok") -> None:
        self.name = name
        self.mode = mode

    def check(self, target: Any) -> None:
        if self.mode == "unsupported":
            raise Unsupported("fake refuses everything")

    async def run(self, target: Any, input_data: Any = None, **kw: Any) -> Any:
        FakeEngine.calls.append(f"{self.name}:{target.id}")
        kind, size = target.id.removeprefix("bench-").rsplit("-", 1) if target.id != "bench-suspend" \
            else ("suspend", "1")
        if kind == "suspend":
            return SimpleNamespace(status="suspended", result=None, run_id="r1", error=None)
        result = Workload(kind, int(size)).expected_result()
        if self.mode == "wrong":
            result = {"value": -1}
        return SimpleNamespace(status="success", result=result, run_id="r1", error=None)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     **kw: Any) -> Any:
        FakeEngine.calls.append(f"{self.name}:resume:{step}")
        return SimpleNamespace(status="success", result={"value": resume_data["value"]},
                               run_id=run_id, error=None)


def fake_factory(name: str, db: Path) -> Any:
    assert db.name == "runs.db"
    return FakeEngine(name, {"fake-wrong": "wrong", "fake-no": "unsupported"}.get(name, "ok"))


def _cells(raw: dict[str, Any], column: str) -> dict[str, dict[str, Any]]:
    return {c["workload"]: c for c in raw["cells"] if c["column"] == column}


def test_runner_with_fake_engines_counts_and_statuses() -> None:
    FakeEngine.calls = []
    raw = runner.run_bench(TINY, ["fake", "fake-wrong", "fake-no"], floors=["plain"], peers=[],
                           engine_factory=fake_factory)
    ok = _cells(raw, "fake")
    assert ok["chain-3"]["status"] == "ok" and len(ok["chain-3"]["times_s"]) == 3
    assert len(ok["chain-3"]["cpu_s"]) == 3
    # one warm-up + 3 timed runs per workload
    assert FakeEngine.calls.count("fake:bench-chain-3") == 4
    assert FakeEngine.calls.count("fake:resume:ask") == 4
    assert ok["compile-6"]["status"] == "n/a"
    wrong = _cells(raw, "fake-wrong")
    assert wrong["chain-1"]["status"] == "error" and "wrong result" in wrong["chain-1"]["reason"]
    refused = _cells(raw, "fake-no")["fanout-2"]
    assert (refused["status"], refused["reason"]) == ("unsupported", "fake refuses everything")
    assert refused["times_s"] == []
    plain = _cells(raw, "plain")
    assert plain["foreach-4"]["status"] == "ok" and plain["compile-6"]["status"] == "n/a"
    assert [c["name"] for c in raw["columns"]] == ["fake", "fake-wrong", "fake-no", "plain"]


def test_size_cap_skips_larger_sizes() -> None:
    plan = replace(TINY, sizes={"chain": (1, 3)}, size_cap_s=0.0)
    raw = runner.run_bench(plan, ["fake"], floors=[], peers=[], engine_factory=fake_factory)
    cells = _cells(raw, "fake")
    assert cells["chain-1"]["status"] == "ok"
    assert cells["chain-3"]["status"] == "skipped" and "already took" in cells["chain-3"]["reason"]


def test_runner_real_engines_tiny() -> None:
    raw = runner.run_bench(TINY, ["default-mem", "native", "codegen-strict"], floors=["plain"],
                           peers=[])
    for col in ("default-mem", "native"):
        cells = _cells(raw, col)
        for wl in ("chain-1", "chain-3", "fanout-2", "foreach-4", "dountil-3", "suspend-1"):
            assert cells[wl]["status"] == "ok", (col, wl, cells[wl]["reason"])
    strict = _cells(raw, "codegen-strict")
    assert strict["chain-3"]["status"] == "ok"
    assert strict["dountil-3"]["status"] == "unsupported"
    assert strict["compile-6"]["status"] == "ok"


def test_peers_unavailable_reason(tmp_path: Path) -> None:
    assert "unknown peer 'temporal'" in (peers.unavailable("temporal") or "")
    cell = peers.measure("temporal", Workload("chain", 1), TINY, tmp_path)
    assert cell.status == "skipped"
    compile_cell = peers.measure("dbos", Workload("compile", 6), TINY, tmp_path)
    assert compile_cell.status in ("n/a", "skipped")


@pytest.mark.slow
def test_dbos_peer_subprocess(tmp_path: Path) -> None:
    if peers.unavailable("dbos"):
        pytest.skip(peers.unavailable("dbos"))
    cell = peers.measure("dbos", Workload("chain", 2), TINY, tmp_path)
    assert (cell.status, cell.reason, len(cell.times_s)) == ("ok", "", 3)


def test_bench_command_writes_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "QUICK", replace(TINY, name="quick", sizes={"chain": (1, 3),
                                                                           "fanout": (3,)}))
    res = CliRunner().invoke(command.bench, ["--quick", "--engine", "default-mem", "--no-peers",
                                             "--output", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "targets" in res.output and "default-mem" in res.output
    data = json.loads((tmp_path / "r" / "bench.json").read_text())
    assert [c["name"] for c in data["columns"]] == ["default-mem", "plain", "sqlite-normal",
                                                    "sqlite-full"]
    assert (tmp_path / "r" / "bench.png").stat().st_size > 0
    assert "### fanout-3" in (tmp_path / "r" / "bench.md").read_text()


def test_bench_command_rejects_unknown_engine(tmp_path: Path) -> None:
    res = CliRunner().invoke(command.bench, ["--engine", "warp", "--output", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown engine 'warp'" in res.output
