"""Conformance against the committed matrix: the helpers behind tests/conformance.

`baseline_params(path)` reads `reports/matrix.json` into (engine, scenario, verdict) triples for
`pytest.mark.parametrize`; `assert_conforms(engine, scenario, expected)` runs that one cell
(its own temp dir and SQLite file, like `wfbench matrix`) and raises AssertionError naming the
scenario, the engine, both verdicts and the diff / reason / exception when the cell is worse
than the baseline. A cell that got better passes (update the baseline with `wfbench matrix`).

    # tests/conformance/test_conformance.py
    import pytest
    from harness.conformance import assert_conforms, baseline_params

    @pytest.mark.parametrize("engine,scenario,expected", baseline_params())
    def test_cell(engine, scenario, expected):
        assert_conforms(engine, scenario, expected)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cells import Cell, Verdict
from harness.matrix import Matrix
from harness.runner import CellSpec, run_cell

DEFAULT_BASELINE = Path(__file__).resolve().parents[1] / "reports" / "matrix.json"


def baseline_params(path: str | Path = DEFAULT_BASELINE) -> list[tuple[str, str, str]]:
    """(engine, scenario, verdict) for every cell of the baseline, in its order."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no baseline matrix at {p}: run `wfbench matrix` to create it")
    m = Matrix.from_json(p.read_text(encoding="utf-8"))
    return [(c.engine, c.scenario, c.verdict.value)
            for s in m.scenarios for e in m.engine_names if (c := m.cell(e, s.id)) is not None]


def describe(cell: Cell) -> str:
    """Everything a failing conformance test should show about a cell."""
    lines = [f"{cell.scenario} on {cell.engine}: {cell.verdict.value} "
             f"({cell.duration_s:.2f} s)"]
    if cell.diff:
        lines += ["diff:", *cell.diff]
    if cell.reason:
        lines.append(f"reason: {cell.reason}")
    if cell.exception:
        lines += [f"exception: {cell.exception.type}: {cell.exception.message}",
                  cell.exception.traceback]
    return "\n".join(lines)


def assert_conforms(engine: str, scenario: str, expected: str, **spec: Any) -> Cell:
    """Run one cell; AssertionError when its verdict is worse than `expected`."""
    want = Verdict.parse(expected)
    cell = run_cell(CellSpec(engine=engine, scenario=scenario, **spec))
    if cell.verdict.worse_than(want):
        raise AssertionError(f"regression: {scenario} on {engine} was {want.value} in the "
                             f"baseline, now {cell.verdict.value}\n{describe(cell)}")
    return cell
