"""Every scenario with a Mastra-syntax definition (not the subprocess durability rows) on the
codegen engine through `scenarios.drive.drive_engine`: the checkpoints of its actions and its
expectations all hold (issue 5: codegen passes every scenario that default passes)."""

from __future__ import annotations

import dataclasses

import pytest

import durable
from engines import get_engine
from scenarios import all_scenarios, get_scenario
from scenarios.check import check
from scenarios.drive import drive_engine

ROWS = [s for s in all_scenarios() if s.workflow_factory is not None and s.durability is None]


async def _diffs(s) -> list[str]:
    out = await drive_engine(s, get_engine("codegen", world=durable.MemoryWorld()))
    return out.diffs + check(s, out.result, out.trace)


@pytest.mark.parametrize("s", [s for s in ROWS if not s.mastra_gap], ids=lambda s: s.id)
async def test_scenario_passes_on_codegen(s):
    diffs = await _diffs(s)
    assert diffs == [], "\n".join(diffs)


async def test_foreach_resume_by_index_stays_suspended_until_the_last_item():
    """hitl-foreach-resume-index: after resuming item 2, then item 0, the run is still
    `suspended` (item 1 waits) — checked by the scenario's ("expect", ...) checkpoints."""
    s = get_scenario("hitl-foreach-resume-index")
    assert [a[0] for a in s.actions] == ["expect", "resume", "expect", "resume", "expect", "resume"]
    assert await _diffs(s) == []
    # the checkpoints are live: expecting `success` after the first resume is reported
    actions = list(s.actions)
    actions[2] = ("expect", {"status": "success"})
    diffs = await _diffs(dataclasses.replace(s, actions=tuple(actions)))
    assert len(diffs) == 1
    assert "status expected 'success', got 'suspended'" in diffs[0]
