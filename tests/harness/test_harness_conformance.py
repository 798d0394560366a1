"""harness.conformance: baseline triples, and a regression named with its diff."""

from __future__ import annotations

import harness_fakes as hf
import pytest

from harness.cells import Cell, Verdict
from harness.conformance import assert_conforms, baseline_params, coverage_problems
from harness.matrix import EngineInfo, Matrix, ScenarioInfo


def test_baseline_params(tmp_path) -> None:
    m = Matrix.build([EngineInfo.of("default"), EngineInfo.of("native")],
                     [ScenarioInfo("a"), ScenarioInfo("b")],
                     [Cell("default", "a", Verdict.PASS), Cell("native", "a", Verdict.FAIL),
                      Cell("default", "b", Verdict.UNSUPPORTED)])
    p = tmp_path / "matrix.json"
    p.write_text(m.to_json())
    assert baseline_params(p) == [("default", "a", "pass"), ("native", "a", "fail"),
                                  ("default", "b", "unsupported")]
    with pytest.raises(FileNotFoundError, match="run `wfbench matrix`"):
        baseline_params(tmp_path / "none.json")


def test_regression_names_scenario_engine_and_diff() -> None:
    hf.install([hf.FakeScenario("sum", program=(1, 2), expect={"result": 4})],
               [hf.FakeEngine("default")])
    spec = dict(engine_factory=hf.make_engine, scenario_lookup=hf.lookup_scenario,
                check=hf.fake_check)
    with pytest.raises(AssertionError) as info:
        assert_conforms("default", "sum", "pass", **spec)
    text = str(info.value)
    assert text.startswith("regression: sum on default was pass in the baseline, now fail")
    assert "result: expected 4, got 3" in text
    # no worse than the baseline: passes (a fail that stays a fail is not a regression)
    assert assert_conforms("default", "sum", "fail", **spec).verdict is Verdict.FAIL


def _spec() -> dict:
    return dict(engine_factory=hf.make_engine, scenario_lookup=hf.lookup_scenario,
                check=hf.fake_check)


def test_a_better_verdict_says_the_baseline_is_stale(tmp_path) -> None:
    hf.install([hf.FakeScenario("sum", program=(1, 2), expect={"result": 3}),
                hf.FakeScenario("branchy", uses=("branch",), expect={})],
               [hf.FakeEngine("default", refuses=frozenset({"branch"}))])
    for expected in ("fail", "error", "unsupported", "n/a"):
        with pytest.raises(AssertionError) as info:
            assert_conforms("default", "sum", expected, workdir=tmp_path, **_spec())
        text = str(info.value)
        assert text.startswith("reports/matrix.json is stale: run `wfbench matrix` and commit "
                               "reports/")
        assert f"sum on default was {expected} in the baseline, now pass" in text
    cell = assert_conforms("default", "sum", "fail", allow_better=True, **_spec())
    assert cell.verdict is Verdict.PASS
    # refused now, error in the baseline: better, so stale as well
    with pytest.raises(AssertionError, match="is stale") as info:
        assert_conforms("default", "branchy", "error", **_spec())
    assert "was error in the baseline, now unsupported" in str(info.value)


def test_only_the_verdict_is_compared_not_duration_or_texts(tmp_path) -> None:
    # a baseline cell with another duration, diff and reason than any run would give
    m = Matrix.build([EngineInfo.of("default")], [ScenarioInfo("sum")],
                     [Cell("default", "sum", Verdict.FAIL, duration_s=1234.5,
                           diff=["result: expected 99, got 0"], reason="old text")])
    p = tmp_path / "matrix.json"
    p.write_text(m.to_json())
    (engine, scenario, expected), = baseline_params(p)
    hf.install([hf.FakeScenario("sum", program=(1, 2), expect={"result": 4})],
               [hf.FakeEngine("default")])
    cell = assert_conforms(engine, scenario, expected, **_spec())
    assert cell.verdict is Verdict.FAIL
    assert cell.diff == ["result: expected 4, got 3"]
    assert cell.duration_s < 1234.5


def test_baseline_params_for_some_engines_and_coverage(tmp_path) -> None:
    m = Matrix.build([EngineInfo.of("default"), EngineInfo.of("temporal")],
                     [ScenarioInfo("a"), ScenarioInfo("gone")],
                     [Cell("default", "a", Verdict.PASS), Cell("temporal", "a", Verdict.PASS),
                      Cell("default", "gone", Verdict.PASS)])
    p = tmp_path / "matrix.json"
    p.write_text(m.to_json())
    assert baseline_params(p, engines=("default", "native")) == [
        ("default", "a", "pass"), ("default", "gone", "pass")]
    problems = coverage_problems(p, ("default", "native"), ["a", "new"])
    assert problems == ["a on native: no verdict in the baseline (new scenario or engine)",
                        "new on default: no verdict in the baseline (new scenario or engine)",
                        "new on native: no verdict in the baseline (new scenario or engine)",
                        "gone: in the baseline but no longer a scenario"]
    assert coverage_problems(p, ("default",), ["a", "gone"]) == []
