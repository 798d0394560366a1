"""The catalogue: coverage, well-formed expectations, and every scenario run on flow's default
interpreter (Mastra-syntax definition) and on durable's MemoryWorld (native definition)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import scenarios
from flow import SleepEntry
from scenarios import UnknownScenario, all_scenarios, get_scenario
from scenarios.base import FAMILIES, MISSING, load_ref
from scenarios.check import check
from scenarios.drive import drive_flow, drive_native
from scenarios.trace import recording

ALL = all_scenarios()
ISSUE_WCPS = {"WCP-1", "WCP-2", "WCP-3", "WCP-4", "WCP-5", "WCP-6", "WCP-7", "WCP-9", "WCP-13",
              "WCP-14", "WCP-16", "WCP-20", "WCP-21", "WCP-22", "WCP-24", "WCP-30", "WCP-43"}

FLOW_RUNNABLE = [s for s in ALL if s.workflow_factory is not None and s.durability is None]
NATIVE_RUNNABLE = [s for s in ALL if s.native_ref is not None and s.durability is None]


def test_at_least_36_unique_ids_covering_every_family_and_pattern():
    ids = [s.id for s in ALL]
    assert len(ids) >= 36
    assert len(set(ids)) == len(ids)
    assert {s.family for s in ALL} == set(FAMILIES)
    assert ISSUE_WCPS <= {w for s in ALL for w in s.wcp}
    for s in ALL:
        assert s.id == s.id.lower() and " " not in s.id, s.id


def test_every_scenario_has_expectations_and_both_definitions_or_a_reason():
    for s in ALL:
        e = s.expect
        assert e.trace is not None, f"{s.id}: no side-effect expectations"
        assert e.trace.runs, f"{s.id}: no step counts"
        assert e.result is not MISSING or e.error is not None or e.status == "canceled", s.id
        assert s.workflow_factory is not None or s.workflow_reason, s.id
        assert s.native_ref is not None or s.native_reason, s.id
        if s.mastra_gap or s.workflow_reason:
            assert len(s.mastra_gap or s.workflow_reason or "") > 40, f"{s.id}: explain the limitation"


def test_durability_rows_are_data():
    rows = [s for s in ALL if s.durability is not None]
    kinds = {s.kind for s in rows}
    assert {"mid-chain", "during-sleep", "in-foreach", "hook-other-process", "changed-workflow"} <= kinds
    for s in rows:
        assert s.family in ("durability", "determinism")
        assert s.durability is not None and s.durability.kill.name


def test_native_definitions_are_module_level_workflows():
    for s in ALL:
        if s.native_ref is None:
            continue
        fn = s.native
        mod, _, qual = s.native_ref.partition(":")
        assert load_ref(s.native_ref) is fn
        inner = inspect.unwrap(getattr(fn, "fn", fn))
        assert getattr(inner, "__qualname__", qual) == qual, s.native_ref
        assert getattr(inner, "__module__", mod) == mod, s.native_ref


def test_mastra_definitions_build_with_short_sleeps():
    def sleeps(graph):
        for entry in graph:
            if isinstance(entry, SleepEntry) and entry.duration is not None:
                yield entry.duration

    for s in ALL:
        wf = s.workflow
        if wf is None:
            continue
        assert wf.committed, s.id
        for d in sleeps(wf.graph):
            assert d <= 1.0, f"{s.id}: sleep {d}s is longer than 1 s"


def test_get_scenario_and_unknown_id():
    assert get_scenario("wcp1-sequence").wcp == ("WCP-1",)
    with pytest.raises(UnknownScenario, match=r"unknown scenario 'wcp1-sequense'; did you mean wcp1-sequence"):
        get_scenario("wcp1-sequense")
    with pytest.raises(ValueError, match="unknown scenario 'zzz'"):
        get_scenario("zzz")
    assert scenarios.get_scenario is get_scenario


async def _run_flow(s):
    with recording() as rec:
        out = await drive_flow(s)
        return out.diffs + check(s, out.result, rec.trace())


async def _run_native(s):
    import durable

    with recording() as rec:
        out = await drive_native(s, durable.MemoryWorld(), timeout=20)
        return out.diffs + check(s, out.result, rec.trace(), native=True)


@pytest.mark.parametrize("s", FLOW_RUNNABLE, ids=lambda s: s.id)
async def test_mastra_definition_on_default_interpreter(s):
    diffs = await _run_flow(s)
    if s.mastra_gap:
        # The gap is measured: the closest Mastra spelling does not meet the expectation.
        assert diffs, f"{s.id}: expected the documented Mastra gap to show, but it passed"
    else:
        assert diffs == [], "\n".join(diffs)


@pytest.mark.parametrize("s", NATIVE_RUNNABLE, ids=lambda s: s.id)
async def test_native_definition_on_memory_world(s):
    diffs = await _run_native(s)
    assert diffs == [], "\n".join(diffs)


async def test_a_changed_expected_value_fails_with_a_diff():
    s = get_scenario("wcp1-sequence")
    changed = dataclasses.replace(s, expect=dataclasses.replace(s.expect, result={"value": 24}))
    diffs = await _run_flow(changed)
    assert len(diffs) == 1 and diffs[0].startswith("result differs:") and "-  \"value\": 24" in diffs[0]


async def test_a_changed_trace_expectation_fails():
    s = get_scenario("wcp14-foreach-c3")
    tr = dataclasses.replace(s.expect.trace, max_in_flight={"square": 2})
    changed = dataclasses.replace(s, expect=dataclasses.replace(s.expect, trace=tr))
    diffs = await _run_flow(changed)
    assert diffs == ["trace: largest number of 'square' in flight expected 2, got 3"]


async def test_checkpoint_mismatch_is_reported():
    s = get_scenario("hitl-suspend-resume")
    actions = (("expect", {"status": "suspended", "suspended": [["fetch"]]}), *s.actions[1:])
    diffs = await _run_flow(dataclasses.replace(s, actions=actions))
    assert len(diffs) == 1 and "checkpoint (action 0): suspended paths differs" in diffs[0]


@pytest.mark.parametrize("sid", ["wcp1-sequence", "hitl-parallel-suspend", "wcp24-persistent-trigger"])
@pytest.mark.parametrize("engine_name", ["default", "native"])
async def test_drive_engine_through_the_engine_interface(engine_name, sid):
    import durable
    from engines import get_engine
    from scenarios.drive import drive_engine

    s = get_scenario(sid)
    engine = get_engine(engine_name, world=durable.MemoryWorld()) if engine_name == "native" else get_engine(engine_name)
    out = await drive_engine(s, engine)
    diffs = out.diffs + check(s, out.result, out.trace, native=engine_name == "native")
    if engine_name == "default" and s.mastra_gap:
        assert any("raised" in d for d in diffs), diffs  # the early resume is refused
    else:
        assert diffs == [], "\n".join(diffs)
