"""Scale scenarios: a chain of 1,000 steps and a fan-out of 500 parallel steps.

Expected values by arithmetic: the chain adds 1 a thousand times; the fan-out sums 1..500."""

from __future__ import annotations

from typing import Any

from flow import create_workflow
from scenarios.base import Expect, Scenario, TraceExpect
from scenarios.catalogue._util import tstep

N = "scenarios.natives.scale:"

CHAIN = 1000
FANOUT = 500


def _chain() -> Any:
    wf = create_workflow(id="scale-chain-1000")
    for i in range(1, CHAIN + 1):
        wf = wf.then(tstep(f"inc-{i}", lambda c: {"value": c.input_data["value"] + 1}))
    return wf.commit()


def _fan(i: int) -> Any:
    return tstep(f"fan-{i}", lambda c: {"v": i})


def _fanout() -> Any:
    return (
        create_workflow(id="scale-fanout-500")
        .parallel([_fan(i) for i in range(1, FANOUT + 1)])
        .then(tstep("gather", lambda c: {"total": sum(v["v"] for v in c.input_data.values()),
                                         "count": len(c.input_data)}))
        .commit()
    )


SCENARIOS: list[Scenario] = [
    Scenario(
        id="scale-chain-1000", title="A chain of 1,000 steps", family="scale", wcp=("WCP-1",),
        workflow_factory=_chain, native_ref=N + "scale_chain_1000", input_data={"value": 0},
        expect=Expect(
            status="success", result={"value": CHAIN},
            trace=TraceExpect(runs={"inc-*": CHAIN}, completed={"inc-*": CHAIN}, max_in_flight={"*": 1},
                              before=(("inc-1", "inc-2"), ("inc-999", "inc-1000"))),
        ),
    ),
    Scenario(
        id="scale-fanout-500", title="A fan-out of 500 parallel steps, then a join", family="scale",
        wcp=("WCP-2", "WCP-3", "WCP-13"), workflow_factory=_fanout, native_ref=N + "scale_fanout_500",
        input_data={},
        expect=Expect(
            status="success", result={"total": FANOUT * (FANOUT + 1) // 2, "count": FANOUT},
            trace=TraceExpect(runs={"fan-*": FANOUT, "gather": 1}, completed={"fan-*": FANOUT},
                              before=(("fan-*", "gather"),)),
        ),
    ),
]
