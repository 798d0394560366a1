"""Builder: chain methods, deterministic ids, serialize_graph, clone, and build-time errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

import flow
from flow import FlowError, create_step, create_workflow


def _step(sid: str) -> flow.Step:
    return create_step(id=sid, execute=lambda ctx: ctx.input_data)


def test_chain_builds_graph_and_registry() -> None:
    a, b, c = _step("a"), _step("b"), _step("c")
    wf = (create_workflow(id="w")
          .then(a)
          .parallel([b, c])
          .branch([(lambda ctx: True, a), (lambda ctx: False, b)])
          .dountil(a, lambda ctx: True)
          .dowhile(b, lambda ctx: False)
          .foreach(c, concurrency=3)
          .sleep(0.5)
          .sleep_until(datetime(2030, 1, 1))
          .map(lambda ctx: {})
          .map({"x": flow.map_value(1)})
          .sleep(timedelta(seconds=2))
          .commit())
    g: Any = wf.graph
    kinds = [type(e).__name__ for e in g]
    assert kinds == ["StepEntry", "ParallelEntry", "ConditionalEntry", "LoopEntry", "LoopEntry",
                     "ForeachEntry", "SleepEntry", "SleepUntilEntry", "StepEntry", "StepEntry",
                     "SleepEntry"]
    assert set(wf.steps) == {"a", "b", "c", "mapping_1", "mapping_2"}
    assert wf.committed
    assert g[6].id == "sleep_1" and g[7].id == "sleep_2" and g[10].id == "sleep_3"
    assert g[8].step.id == "mapping_1" and g[9].step.id == "mapping_2"
    assert g[8].step.component == "MAPPING"
    assert g[10].duration == 2.0
    assert g[5].concurrency == 3


def test_generated_ids_are_deterministic() -> None:
    def build() -> list[str]:
        wf = create_workflow(id="w").then(_step("a")).map(lambda c: 1).sleep(1).map({}).commit()
        entries: Any = wf.graph
        return [getattr(e, "id", None) or e.step.id for e in entries]

    assert build() == build() == ["a", "mapping_1", "sleep_1", "mapping_2"]


def test_map_custom_id() -> None:
    wf = create_workflow(id="w").then(_step("a")).map({"k": {"value": 1}}, id="my-map").commit()
    g: Any = wf.graph
    assert g[1].step.id == "my-map"


def test_serialize_graph_is_json_without_callables() -> None:
    inner = create_workflow(id="inner").then(_step("x")).commit()
    wf = (create_workflow(id="w")
          .then(_step("a"))
          .parallel([_step("b"), inner])
          .branch([(lambda ctx: True, _step("c"))])
          .dountil(_step("d"), lambda ctx: True)
          .foreach(_step("e"), concurrency=2)
          .sleep(1)
          .sleep(lambda ctx: 1)
          .sleep_until(datetime(2030, 1, 1))
          .map({"k": flow.map_step("a", "x.y"), "v": {"value": [1]}, "i": {"init_data": True},
                "r": {"request_context_path": "life"}, "f": flow.map_fn(lambda c: 1)})
          .map(lambda ctx: 1)
          .commit())
    data = wf.serialize_graph()
    text = json.dumps(data)  # must not raise
    assert "<lambda>" in text
    assert data[0] == {"type": "step", "step": {"id": "a", "component": "STEP",
                                                 "can_suspend": False}}
    assert data[1]["steps"][1]["step"]["serialized_step_flow"][0]["step"]["id"] == "x"
    assert data[2]["serialized_conditions"][0]["id"] == "c-condition"
    assert data[3]["loop_type"] == "dountil"
    assert data[4]["opts"] == {"concurrency": 2}
    assert data[5] == {"type": "sleep", "id": "sleep_1", "duration": 1.0}
    assert data[7]["date"] == "2030-01-01T00:00:00"
    cfg = data[8]["step"]["map_config"]
    assert cfg["k"] == {"step": "a", "path": "x.y"}
    assert cfg["v"] == {"value": [1]}
    assert cfg["r"] == {"request_context_path": "life"}


def test_clone_workflow_and_clone_step() -> None:
    wf = create_workflow(id="w", retry_config={"attempts": 2, "delay": 0}).then(_step("a")).commit()
    c = flow.clone_workflow(wf, id="w2")
    assert c.id == "w2" and c.committed and c.graph == wf.graph and c.retry_config["attempts"] == 2
    s = flow.clone_step(_step("a"), id="b")
    assert s.id == "b"


def test_empty_workflow_commit_error() -> None:
    with pytest.raises(FlowError, match="Execution flow of workflow 'w' is not defined"):
        create_workflow(id="w").commit()


def test_create_run_on_empty_workflow() -> None:
    with pytest.raises(FlowError, match="Execution flow of workflow 'w' is not defined"):
        create_workflow(id="w").create_run()


def test_uncommitted_workflow_cannot_run() -> None:
    with pytest.raises(FlowError, match="Uncommitted step flow changes detected in workflow 'w'"):
        create_workflow(id="w").then(_step("a")).create_run()


def test_chain_after_commit() -> None:
    wf = create_workflow(id="w").then(_step("a")).commit()
    with pytest.raises(FlowError, match=r"\.then\(\) called after \.commit\(\)"):
        wf.then(_step("b"))
    with pytest.raises(FlowError, match=r"\.commit\(\) called after \.commit\(\)"):
        wf.commit()


@pytest.mark.parametrize("bad", [5, "a", None, lambda ctx: 1])
def test_then_rejects_non_steps(bad: object) -> None:
    with pytest.raises(FlowError, match=r"\.then\(\) expects a step"):
        create_workflow(id="w").then(bad)


def test_other_methods_reject_non_steps() -> None:
    with pytest.raises(FlowError, match=r"\.parallel\(\) expects a step .* got int"):
        create_workflow(id="w").parallel([_step("a"), 3])
    with pytest.raises(FlowError, match=r"\.parallel\(\) expects a non-empty list"):
        create_workflow(id="w").parallel([])
    with pytest.raises(FlowError, match=r"\.branch\(\) items must be"):
        create_workflow(id="w").branch([_step("a")])  # type: ignore[list-item]
    with pytest.raises(FlowError, match=r"\.foreach\(\) expects a step"):
        create_workflow(id="w").foreach("x")
    with pytest.raises(FlowError, match=r"\.dountil\(\) expects a step"):
        create_workflow(id="w").dountil({}, lambda c: True)
    with pytest.raises(FlowError, match="concurrency must be an int >= 1"):
        create_workflow(id="w").foreach(_step("a"), concurrency=0)
    with pytest.raises(FlowError, match="not committed"):
        create_workflow(id="w").then(create_workflow(id="inner").then(_step("a")))
    with pytest.raises(FlowError, match=r"\.sleep\(\) expects seconds"):
        create_workflow(id="w").sleep(-1)


def test_bad_retry_config() -> None:
    with pytest.raises(FlowError, match="retry_config has unknown key"):
        create_workflow(id="w", retry_config={"tries": 1})
    with pytest.raises(FlowError, match=r"retry_config\['attempts'\]"):
        create_workflow(id="w", retry_config={"attempts": -1})


def test_bad_mapping_spec() -> None:
    with pytest.raises(FlowError, match="mapping key 'k'"):
        create_workflow(id="w").map({"k": 3})
    with pytest.raises(FlowError, match="unknown field"):
        create_workflow(id="w").map({"k": {"stepp": "a"}})


def test_workflow_is_a_step() -> None:
    wf = create_workflow(id="w").then(_step("a")).commit()
    assert wf.component == "WORKFLOW"
    assert isinstance(wf, flow.Workflow) and not isinstance(wf, flow.Step)
    assert callable(wf.execute)
