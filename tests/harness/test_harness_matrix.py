"""Matrix rows and scores are derived from cell verdicts; renderers show them; --check compares."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness.cells import Cell, ExceptionInfo, Verdict
from harness.matrix import EngineInfo, Matrix, ScenarioInfo, check_against, row_value
from harness.render import render

P, F, U, E, NA = Verdict.PASS, Verdict.FAIL, Verdict.UNSUPPORTED, Verdict.ERROR, Verdict.NA


def synthetic(overrides: dict[tuple[str, str], Verdict] | None = None) -> Matrix:
    scenarios = [
        ScenarioInfo("seq", "Sequence", "control flow", ("WCP-1",)),
        ScenarioInfo("par", "Parallel split", "control flow", ("WCP-2", "WCP-3")),
        ScenarioInfo("branch-closure", "Branch with closure", "control flow", ("WCP-4",)),
        ScenarioInfo("discriminator", "First of three", "control flow", ("WCP-9",),
                     workaround="parallel + a shared flag in state"),
        ScenarioInfo("dynamic-sleep", "Dynamic sleep", "time"),
        ScenarioInfo("kill-mid-chain", "Crash mid chain", "durability"),
        ScenarioInfo("kill-sleep", "Crash during sleep", "durability"),
    ]
    engines = [EngineInfo.of("default"), EngineInfo.of("codegen-strict"), EngineInfo.of("native")]
    verdicts = {
        "default": [P, P, P, P, P, U, U],
        "codegen-strict": [P, P, U, P, U, P, F],
        "native": [P, P, P, P, P, P, P],
    }
    cells = []
    for e, vs in verdicts.items():
        for s, v in zip(scenarios, vs, strict=True):
            v = (overrides or {}).get((e, s.id), v)
            cells.append(Cell(e, s.id, v, 0.25,
                              diff=["result: expected 3, got 4"] if v is F else [],
                              reason=f"{e} cannot recover a run" if v is U else None,
                              exception=ExceptionInfo("KeyError", "'x'", "Traceback: ...")
                              if v is E else None,
                              generated_source="async def wf():\n    return '<b>'\n"
                              if e == "codegen-strict" else None))
    return Matrix.build(engines, scenarios, cells)


def comparison(m: Matrix) -> dict[str, dict[str, str]]:
    return {r["key"]: {e: v["value"] for e, v in r["values"].items()} for r in m.comparison()}


def test_comparison_rows_are_derived_from_verdicts() -> None:
    rows = comparison(synthetic())
    assert rows["sequential"] == {"default": "yes", "codegen-strict": "yes", "native": "yes"}
    assert rows["conditional"] == {"default": "yes", "codegen-strict": "no", "native": "yes"}
    assert rows["dynamic_sleep"] == {"default": "yes", "codegen-strict": "no", "native": "yes"}
    assert rows["durability"] == {"default": "no", "codegen-strict": "broken", "native": "yes"}
    # nothing in the synthetic set measures nondeterminism detection
    assert rows["nondeterminism"]["native"] == "n/a"
    # flipping one verdict flips the derived value
    rows2 = comparison(synthetic({("default", "seq"): F}))
    assert rows2["sequential"]["default"] == "broken"


def test_row_value_partial_and_reason() -> None:
    cells = [Cell("x", "a", P), Cell("x", "b", U, reason="no closures")]
    v = row_value(cells)
    assert (v.value, v.passed, v.total) == ("partial", 1, 2)
    only_refused = row_value([Cell("x", "b", U, reason="no closures")])
    assert (only_refused.value, only_refused.detail) == ("no", "no closures")


def test_wcp_scores() -> None:
    w = synthetic().wcp()
    scores = {p["wcp"]: p["scores"] for p in w["patterns"]}
    assert list(scores) == ["WCP-1", "WCP-2", "WCP-3", "WCP-4", "WCP-9"]
    assert scores["WCP-4"] == {"default": "+", "codegen-strict": "-", "native": "+"}
    # the Mastra-syntax engines need the workaround for the discriminator; native code does not
    assert scores["WCP-9"] == {"default": "+/-", "codegen-strict": "+/-", "native": "+"}
    assert w["totals"]["codegen-strict"] == {"+": 3, "+/-": 1, "-": 1}


def test_wcp_score_rules() -> None:
    from harness.matrix import wcp_score

    def cells(*vs):
        return [Cell("e", f"s{i}", v) for i, v in enumerate(vs)]

    assert wcp_score(cells(P, P), workaround=False) == "+"
    assert wcp_score(cells(P, P), workaround=True) == "+/-"
    assert wcp_score(cells(P, U), workaround=False) == "+/-"  # partial support
    assert wcp_score(cells(U, U), workaround=False) == "-"  # not expressible
    assert wcp_score(cells(P, F), workaround=False) == "-"  # failing
    assert wcp_score(cells(P, E, U), workaround=False) == "-"


def test_durability_scenarios_do_not_count_in_the_wcp_score() -> None:
    m = synthetic()
    m.scenarios.append(ScenarioInfo("kill-in-foreach", "", "durability", ("WCP-1",)))
    m.cells[("default", "kill-in-foreach")] = Cell("default", "kill-in-foreach", U)
    scores = {p["wcp"]: p for p in m.wcp()["patterns"]}
    assert scores["WCP-1"]["scenarios"] == ["seq"]
    assert scores["WCP-1"]["scores"]["default"] == "+"


def test_json_round_trip_and_schema() -> None:
    m = synthetic()
    data = json.loads(m.to_json())
    assert data["schema"] == "wfbench-matrix/1"
    assert len(data["cells"]) == 21
    back = Matrix.from_json(m.to_json())
    assert back.cells == m.cells
    assert back.to_json() == m.to_json()
    with pytest.raises(ValueError, match="not a wfbench matrix"):
        Matrix.from_json('{"schema": "other"}')


def test_check_names_every_worse_cell_and_ignores_durations() -> None:
    base = synthetic()
    assert check_against(base, base) == []
    slower = synthetic()
    for c in slower.cells.values():
        c.duration_s = 99.0
    assert check_against(base, slower) == []
    worse = synthetic({("native", "par"): F, ("default", "seq"): E,
                       ("codegen-strict", "kill-sleep"): U})  # fail -> unsupported is better
    regs = check_against(base, worse)
    assert [(r.scenario, r.engine, r.baseline.value, r.current.value) for r in regs] == [
        ("seq", "default", "pass", "error"),
        ("par", "native", "pass", "fail"),
    ]
    assert "par on native: pass -> fail" in str(regs[1])


def test_table_and_markdown_show_every_cell() -> None:
    m = synthetic({("native", "seq"): E})
    table = render(m, "table")
    assert "ERROR" in table and "FAIL" in table
    assert "seq on native: error: KeyError: 'x'" in table
    md = render(m, "markdown")
    assert "| `kill-sleep`" in md
    assert "- **durability**: `kill-mid-chain`, `kill-sleep`" in md
    assert "`kill-sleep` on `codegen-strict`: fail: result: expected 3, got 4" in md
    # one line per scenario in the scenario table
    assert sum(1 for line in md.splitlines() if line.startswith("| `")) == 7


def test_junit() -> None:
    root = ET.fromstring(render(synthetic({("native", "seq"): E}), "junit"))
    assert root.get("tests") == "21"
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("1", "1", "4")
    suite = root.find("testsuite[@name='codegen-strict']")
    assert suite is not None
    case = suite.find("testcase[@name='kill-sleep']")
    assert case is not None and case.find("failure") is not None


def test_html_is_self_contained_and_escaped() -> None:
    page = render(synthetic(), "html")
    assert page.count('<td class="cell') == 21
    for external in ("http://", "https://", "<link", "src="):
        assert external not in page
    # the generated source contains '<b>': it must not appear as markup anywhere
    assert "<b>" not in page
