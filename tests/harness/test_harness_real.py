"""The harness on the real engines and scenarios: verdicts come from running, never typed in.

- changing one scenario's expected value turns its cell `fail`, with the diff;
- an engine made to refuse a construct turns the cell `unsupported`, with its reason;
- a durability cell is measured by killing and recovering: the default engine refuses to
  recover (unsupported, its own reason), codegen recovers.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness.cells import Verdict
from harness.runner import CellSpec, RunPlan, run_cell, run_matrix_cells


def real_scenario(sid: str):
    from scenarios import get_scenario

    return get_scenario(sid)


def test_changed_expectation_turns_a_real_cell_fail_with_a_diff() -> None:
    original = real_scenario("wcp1-sequence")
    assert run_cell(CellSpec("default", "wcp1-sequence")).verdict is Verdict.PASS
    wrong = dataclasses.replace(
        original, expect=dataclasses.replace(original.expect, result={"value": -1}))
    cell = run_cell(CellSpec("default", "wcp1-sequence",
                             scenario_lookup=lambda sid: wrong))
    assert cell.verdict is Verdict.FAIL
    assert cell.diff and cell.diff[0].startswith("result differs:")
    assert '-  "value": -1' in cell.diff[0]


class _RefusesBranches:
    """The real default engine, told to refuse any graph with a branch (ConditionalEntry)."""

    name = "default"

    def __init__(self) -> None:
        from engines import get_engine

        self.inner = get_engine("default")

    def check(self, target) -> None:
        from engines import Unsupported
        from flow import ConditionalEntry

        for no, entry in enumerate(target.workflow.graph, start=1):
            if isinstance(entry, ConditionalEntry):
                raise Unsupported(f"entry {no} is a branch; this engine refuses branches")
        self.inner.check(target)

    async def run(self, target, **kw):
        self.check(target)
        return await self.inner.run(target, **kw)

    async def resume(self, target, run_id, **kw):
        return await self.inner.resume(target, run_id, **kw)


def test_an_engine_refusing_a_construct_gives_unsupported() -> None:
    spec = dict(engine_factory=lambda name: _RefusesBranches())
    cell = run_cell(CellSpec("default", "branch-closure", **spec))
    assert cell.verdict is Verdict.UNSUPPORTED
    assert cell.reason == "entry 1 is a branch; this engine refuses branches"
    assert run_cell(CellSpec("default", "wcp1-sequence", **spec)).verdict is Verdict.PASS


@pytest.mark.slow
def test_real_cells_in_the_process_pool() -> None:
    plan = RunPlan(engines=["default", "codegen", "codegen-strict", "stepmode", "native"],
                   scenarios=["wcp1-sequence", "branch-closure"], jobs=2)
    got = {(c.scenario, c.engine): c.verdict.value for c in run_matrix_cells(plan)}
    # codegen-strict refuses the branch condition (a Python closure); everything else passes
    assert got == {
        ("wcp1-sequence", "default"): "pass", ("wcp1-sequence", "codegen"): "pass",
        ("wcp1-sequence", "codegen-strict"): "pass", ("wcp1-sequence", "stepmode"): "pass",
        ("wcp1-sequence", "native"): "pass",
        ("branch-closure", "default"): "pass", ("branch-closure", "codegen"): "pass",
        ("branch-closure", "codegen-strict"): "unsupported", ("branch-closure", "stepmode"): "pass",
        ("branch-closure", "native"): "pass",
    }


@pytest.mark.slow
def test_codegen_cell_carries_its_generated_source() -> None:
    cell = run_cell(CellSpec("codegen", "branch-closure"))
    assert cell.generated_source is not None
    assert "async def workflow_branch_closure" in cell.generated_source


@pytest.mark.slow
def test_durability_is_measured_by_killing_and_recovering() -> None:
    cell = run_cell(CellSpec("default", "dur-kill-mid-chain"))
    assert cell.verdict is Verdict.UNSUPPORTED, cell
    assert cell.reason and "cannot recover" in cell.reason
    cell = run_cell(CellSpec("codegen", "dur-kill-mid-chain"))
    assert cell.verdict is Verdict.PASS, cell.summary()
