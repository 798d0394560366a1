"""The runner classifies cells from what actually happens: pass, fail+diff, unsupported, error."""

from __future__ import annotations

import harness_fakes as hf
import pytest

from harness.cells import Cell, ExceptionInfo, Verdict
from harness.runner import CellSpec, RunPlan, run_cell, run_matrix_cells


def spec(engine: str, scenario: str, **kw) -> CellSpec:
    return CellSpec(engine=engine, scenario=scenario, engine_factory=hf.make_engine,
                    scenario_lookup=hf.lookup_scenario, check=hf.fake_check, **kw)


@pytest.fixture
def world():
    hf.install(
        [
            hf.FakeScenario("sum", program=(1, 2, 3), expect={"status": "success", "result": 6}),
            hf.FakeScenario("branchy", program=(5,), uses=("branch",),
                            expect={"status": "success", "result": 5}),
            hf.FakeScenario("crashes", behaviour="raise", expect={"status": "success"}),
        ],
        [hf.FakeEngine("a"), hf.FakeEngine("strict", refuses=frozenset({"branch"}))],
    )
    yield


def test_verdict_order() -> None:
    order = sorted(Verdict, key=lambda v: v.goodness)
    assert [v.value for v in order] == ["error", "fail", "unsupported", "n/a", "pass"]
    assert Verdict.FAIL.worse_than(Verdict.UNSUPPORTED)
    assert not Verdict.PASS.worse_than(Verdict.PASS)
    with pytest.raises(ValueError, match="'maybe'"):
        Verdict.parse("maybe")


def test_cell_round_trip() -> None:
    c = Cell("codegen", "seq", Verdict.ERROR, 0.5, diff=["x"], reason=None,
             exception=ExceptionInfo("KeyError", "'k'", "Traceback..."), generated_source="src")
    assert Cell.from_dict(c.to_dict()) == c


def test_pass(world) -> None:
    cell = run_cell(spec("a", "sum"))
    assert cell.verdict is Verdict.PASS
    assert cell.diff == []


def test_changed_expectation_turns_cell_fail_with_diff(world) -> None:
    hf.SCENARIOS["sum"].expect["result"] = 7
    cell = run_cell(spec("a", "sum"))
    assert cell.verdict is Verdict.FAIL
    assert cell.diff == ["result: expected 7, got 6"]


def test_refusal_is_unsupported_with_reason(world) -> None:
    cell = run_cell(spec("strict", "branchy"))
    assert cell.verdict is Verdict.UNSUPPORTED
    assert cell.reason == "strict cannot run branch"
    assert run_cell(spec("a", "branchy")).verdict is Verdict.PASS


def test_exception_is_error_with_traceback(world) -> None:
    cell = run_cell(spec("a", "crashes"))
    assert cell.verdict is Verdict.ERROR
    assert cell.exception is not None
    assert cell.exception.type == "RuntimeError"
    assert cell.exception.message == "boom in crashes"
    assert "raise RuntimeError" in cell.exception.traceback


def test_each_cell_gets_its_own_db(world, tmp_path, monkeypatch) -> None:
    seen = []

    def check(scenario, result, trace):
        seen.append(result.db)
        return []

    monkeypatch.delenv("WFBENCH_DB", raising=False)
    for i in range(2):
        run_cell(CellSpec("a", "sum", engine_factory=hf.make_engine,
                          scenario_lookup=hf.lookup_scenario, check=check),
                 workdir=tmp_path / f"c{i}")
    assert seen == [str(tmp_path / "c0" / "runs.db"), str(tmp_path / "c1" / "runs.db")]
    import os

    assert "WFBENCH_DB" not in os.environ


def test_timeout_is_error(world) -> None:
    hf.SCENARIOS["slow"] = hf.FakeScenario("slow", behaviour="slow")
    cell = run_cell(spec("a", "slow", timeout_s=0.2))
    assert cell.verdict is Verdict.ERROR
    assert cell.exception is not None and cell.exception.type == "CellTimeout"


@pytest.mark.timeout(60)
def test_a_cell_that_ignores_cancellation_still_ends(world, monkeypatch) -> None:
    # asyncio.wait_for / asyncio.run would wait for it for ever (here: 60 s)
    import harness.runner

    monkeypatch.setattr(harness.runner, "CANCEL_GRACE_S", 0.2)
    hf.SCENARIOS["stubborn"] = hf.FakeScenario("stubborn", behaviour="stubborn")
    cell = run_cell(spec("a", "stubborn", timeout_s=0.2))
    assert cell.verdict is Verdict.ERROR
    assert cell.exception is not None and cell.exception.type == "CellTimeout"
    assert "did not finish within 0.2 s" in cell.exception.message
    # the process can run the next cell
    assert run_cell(spec("a", "sum")).verdict is Verdict.PASS


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_cell_that_blocks_the_event_loop_hits_the_hard_limit(world, monkeypatch) -> None:
    import harness.runner

    monkeypatch.setattr(harness.runner, "CANCEL_GRACE_S", 0.2)
    hf.SCENARIOS["block"] = hf.FakeScenario("block", behaviour="block")
    cell = run_cell(spec("a", "block", timeout_s=0.2))  # hard limit: 0.2 + 5 s
    assert cell.verdict is Verdict.ERROR
    assert cell.exception is not None and cell.exception.type == "CellTimeout"
    assert "blocked for more than 5.2 s" in cell.exception.message


@pytest.mark.slow
def test_matrix_in_process_pool_keeps_plan_order(world) -> None:
    hf.SCENARIOS["dies"] = hf.FakeScenario("dies", behaviour="die")
    plan = RunPlan(engines=["a", "strict"], scenarios=["sum", "branchy", "crashes", "dies"],
                   jobs=2, engine_factory=hf.make_engine, scenario_lookup=hf.lookup_scenario,
                   check=hf.fake_check)
    cells = run_matrix_cells(plan)
    got = [(c.scenario, c.engine, c.verdict.value) for c in cells]
    assert got == [
        ("sum", "a", "pass"), ("sum", "strict", "pass"),
        ("branchy", "a", "pass"), ("branchy", "strict", "unsupported"),
        ("crashes", "a", "error"), ("crashes", "strict", "error"),
        ("dies", "a", "error"), ("dies", "strict", "error"),
    ]
    dead = cells[-1]
    assert dead.exception is not None and "worker process died" in dead.exception.message


@pytest.mark.slow
def test_durability_cell_kills_and_recovers_in_child_processes(monkeypatch) -> None:
    from pathlib import Path

    from scenarios.trace import load

    monkeypatch.setenv("PYTHONPATH", str(Path(hf.__file__).parent))
    seen = {}

    def check(scenario, result, trace):
        seen["trace"] = trace
        return hf.fake_check(scenario, result, trace)

    def dspec(engine, scenario):
        return CellSpec(engine=engine, scenario=scenario, engine_factory=hf.make_durable_engine,
                        scenario_lookup=hf.lookup_durable_scenario, check=check, timeout_s=60)

    cell = run_cell(dspec("journal", "kill-mid-chain"))
    assert cell.verdict is Verdict.PASS, cell
    trace = seen["trace"]
    # steps 1-2 ran once (in the killed process) and were not run again; step 3 may have been
    # in flight when the kill came; every step completed exactly once
    assert [trace.runs(f"step{i}") for i in (1, 2, 4, 5)] == [1, 1, 1, 1]
    assert trace.runs("step3") in (1, 2)
    assert [trace.completed(f"step{i}") for i in range(1, 6)] == [1, 1, 1, 1, 1]
    assert len({s.pid for s in trace.spans}) == 2
    assert load  # the trace is the file the children appended to

    cell = run_cell(dspec("volatile", "kill-mid-chain"))
    assert cell.verdict is Verdict.UNSUPPORTED
    assert cell.reason == "volatile keeps runs in memory; it cannot recover kill-mid-chain-volatile"


@pytest.mark.slow
def test_durability_cell_that_never_reaches_its_kill_point_fails(monkeypatch) -> None:
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(hf.__file__).parent))
    cell = run_cell(CellSpec(engine="journal", scenario="kill-never",
                             engine_factory=hf.make_durable_engine,
                             scenario_lookup=hf.lookup_durable_scenario, check=hf.fake_check))
    assert cell.verdict is Verdict.FAIL
    assert cell.diff[0].startswith("the kill point (end #1 of 'step9') was never reached")


def test_generated_source_is_kept_and_cut_when_huge() -> None:
    from harness.drive import SOURCE_LIMIT, generated_source

    class Compiling:
        name = "codegen"

        def __init__(self, lines: int) -> None:
            self.lines = lines

        def source(self, scenario):
            return "".join(f"x{i} = {i}\n" for i in range(self.lines))

    scen = hf.FakeScenario("big")
    assert generated_source(Compiling(3), scen) == "x0 = 0\nx1 = 1\nx2 = 2\n"
    cut = generated_source(Compiling(10_000), scen)
    assert cut is not None and len(cut) < SOURCE_LIMIT + 200
    assert cut.endswith("for the whole source\n") and "`wfbench codegen big`" in cut
    assert generated_source(hf.FakeEngine("default"), scen) is None
