"""harness.conformance: baseline triples, and a regression named with its diff."""

from __future__ import annotations

import harness_fakes as hf
import pytest

from harness.cells import Cell, Verdict
from harness.conformance import assert_conforms, baseline_params
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
