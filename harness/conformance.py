"""Conformance against the committed matrix: the helpers behind tests/conformance.

`baseline_params(path, engines=...)` reads `reports/matrix.json` into (engine, scenario,
verdict) triples for `pytest.mark.parametrize`; `assert_conforms(engine, scenario, expected)`
runs that one cell (its own temp dir and SQLite file, like `wfbench matrix`) and compares its
verdict with the baseline's (verdicts only: durations, diffs and messages are never compared):

- worse than the baseline -> AssertionError "regression: <scenario> on <engine> was <v> in the
  baseline, now <v>" with the diff / reason / exception;
- better than the baseline -> AssertionError starting with `STALE` (the committed matrix no
  longer describes the code: regenerate and commit it), unless `allow_better=True`.

`coverage_problems(path, engines, scenario_ids)` lists the cells the baseline lacks or has in
excess (a scenario added or removed since it was generated): also staleness.

    # tests/conformance/test_conformance.py
    import pytest
    from harness.conformance import assert_conforms, baseline_params

    @pytest.mark.parametrize("engine,scenario,expected", baseline_params())
    def test_cell(engine, scenario, expected, tmp_path):
        assert_conforms(engine, scenario, expected, workdir=tmp_path)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cells import Cell, Verdict
from harness.matrix import Matrix
from harness.runner import CellSpec, run_cell

DEFAULT_BASELINE = Path(__file__).resolve().parents[1] / "reports" / "matrix.json"

STALE = "reports/matrix.json is stale: run `wfbench matrix` and commit reports/"


def load_baseline(path: str | Path = DEFAULT_BASELINE) -> Matrix:
    """The committed matrix; FileNotFoundError saying how to create it when it is missing."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no baseline matrix at {p}: run `wfbench matrix` to create it")
    return Matrix.from_json(p.read_text(encoding="utf-8"))


def baseline_params(path: str | Path = DEFAULT_BASELINE,
                    engines: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """(engine, scenario, verdict) for every cell of the baseline, in its order (scenario-major);
    only the cells of `engines` when given."""
    m = load_baseline(path)
    wanted = m.engine_names if engines is None else [e for e in m.engine_names if e in engines]
    return [(c.engine, c.scenario, c.verdict.value)
            for s in m.scenarios for e in wanted if (c := m.cell(e, s.id)) is not None]


def coverage_problems(path: str | Path, engines: Sequence[str],
                      scenario_ids: Sequence[str]) -> list[str]:
    """Cells of `engines` x `scenario_ids` the baseline has no verdict for, and scenarios it has
    that no longer exist: each one line. Empty when the baseline covers exactly these cells."""
    m = load_baseline(path)
    out: list[str] = []
    known = {s.id for s in m.scenarios}
    for sid in scenario_ids:
        for e in engines:
            if m.cell(e, sid) is None:
                out.append(f"{sid} on {e}: no verdict in the baseline (new scenario or engine)")
    current = set(scenario_ids)
    out += [f"{sid}: in the baseline but no longer a scenario" for sid in sorted(known - current)]
    return out


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


def assert_conforms(engine: str, scenario: str, expected: str, *, workdir: Path | None = None,
                    allow_better: bool = False, **spec: Any) -> Cell:
    """Run one cell (in `workdir`, else a temp dir of its own); AssertionError when its verdict
    is worse than `expected` (a regression) or, unless `allow_better`, better (a stale
    baseline). `spec` goes to `harness.runner.CellSpec` (timeout_s, engine_factory, ...)."""
    want = Verdict.parse(expected)
    cell = run_cell(CellSpec(engine=engine, scenario=scenario, **spec), workdir)
    if cell.verdict.worse_than(want):
        raise AssertionError(f"regression: {scenario} on {engine} was {want.value} in the "
                             f"baseline, now {cell.verdict.value}\n{describe(cell)}")
    if want.worse_than(cell.verdict) and not allow_better:
        raise AssertionError(f"{STALE} ({scenario} on {engine} was {want.value} in the "
                             f"baseline, now {cell.verdict.value})\n{describe(cell)}")
    return cell
