"""Data scenarios: function map, mapping object, get_step_result/get_init_data, state in parallel.

Expectations from reference/mastra-semantics.md section 1.4 (map forms), 1.3 (context) and 3.11
(state; flow uses the merged-children semantics of issue 2)."""

from __future__ import annotations

from typing import Any

import flow
from flow import create_workflow
from scenarios.base import Expect, Scenario, StepExpect, TraceExpect
from scenarios.catalogue._util import tstep
from scenarios.trace import span

N = "scenarios.natives.data:"


def _map_fn() -> Any:
    def to_full(ctx: Any) -> Any:
        u = ctx.input_data["user"]
        return {"full": f"{u['first']} {u['last']}", "id": ctx.input_data["id"]}

    return (
        create_workflow(id="data-map-fn")
        .then(tstep("load-user", lambda c: {"user": dict(c.input_data), "id": 7}))
        .map(to_full, id="to-full")
        .then(tstep("greet", lambda c: {"greeting": f"Hello, {c.input_data['full']} (#{c.input_data['id']})"}))
        .commit()
    )


def _map_object() -> Any:
    score = tstep("score", lambda c: {"score": 42, "detail": {"grade": "A"}})
    wf = create_workflow(id="data-map-object").then(score)
    return (
        wf.map(
            {
                "name": flow.map_init("user.name"),
                "score": flow.map_step(score, "score"),
                "grade": flow.map_step(score, "detail.grade"),
                "kind": flow.map_value("report"),
                "tenant": flow.map_request_context("tenant"),
            },
            id="collect",
        )
        .then(tstep("report"))
        .commit()
    )


def _step_result_init() -> Any:
    a = tstep("step-a", lambda c: {"a": 1})

    def combine(ctx: Any) -> Any:
        init = ctx.get_init_data()
        return {"sum": init["base"] + ctx.get_step_result(a)["a"] + ctx.input_data["b"] + ctx.get_step_result("step-a")["a"],
                "init": init}

    return (
        create_workflow(id="data-step-result-init")
        .then(a)
        .then(tstep("step-b", lambda c: {"b": 2}))
        .then(tstep("combine", combine))
        .commit()
    )


def _state_parallel() -> Any:
    def mark(key: str, value: int) -> Any:
        def body(ctx: Any) -> Any:
            with span(f"mark-{key}"):
                ctx.set_state({**ctx.state, key: value})
                return {"marked": key}

        return flow.create_step(id=f"mark-{key}", execute=body)

    return (
        create_workflow(id="data-state-parallel")
        .parallel([mark("a", 1), mark("b", 2)])
        .then(tstep("read-state", lambda c: {"state": dict(c.state)}))
        .commit()
    )


SCENARIOS: list[Scenario] = [
    Scenario(
        id="data-map-fn", title="Function map between two steps", family="data",
        workflow_factory=_map_fn, native_ref=N + "data_map_fn", input_data={"first": "Ada", "last": "Lovelace"},
        expect=Expect(
            status="success", result={"greeting": "Hello, Ada Lovelace (#7)"},
            steps={"to-full": StepExpect("success", output={"full": "Ada Lovelace", "id": 7},
                                         payload={"user": {"first": "Ada", "last": "Lovelace"}, "id": 7}),
                   "greet": StepExpect("success", payload={"full": "Ada Lovelace", "id": 7})},
            trace=TraceExpect(runs={"load-user": 1, "greet": 1}, before=(("load-user", "greet"),)),
        ),
        notes="map(fn) is a closure: codegen lifts it into a registered step, codegen-strict refuses it.",
    ),
    Scenario(
        id="data-map-object", title="Mapping object: step path, init data, constant, request_context",
        family="data", workflow_factory=_map_object, native_ref=N + "data_map_object",
        input_data={"user": {"name": "Ada"}}, request_context={"tenant": "acme"},
        expect=Expect(
            status="success",
            result={"name": "Ada", "score": 42, "grade": "A", "kind": "report", "tenant": "acme"},
            steps={"collect": StepExpect("success", output={"name": "Ada", "score": 42, "grade": "A",
                                                            "kind": "report", "tenant": "acme"})},
            trace=TraceExpect(runs={"score": 1, "report": 1}),
        ),
        notes="Natively the request context is an ordinary keyword argument of the workflow.",
    ),
    Scenario(
        id="data-step-result-init", title="get_step_result and get_init_data", family="data",
        workflow_factory=_step_result_init, native_ref=N + "data_step_result_init", input_data={"base": 10},
        expect=Expect(
            status="success", result={"sum": 14, "init": {"base": 10}},
            steps={"combine": StepExpect("success", payload={"b": 2})},
            trace=TraceExpect(runs={"step-a": 1, "step-b": 1, "combine": 1}),
        ),
        notes="combine reads step-a's output twice (by step object and by id): 10 + 1 + 2 + 1 = 14.",
    ),
    Scenario(
        id="data-state-parallel", title="State set inside parallel children is merged", family="data",
        workflow_factory=_state_parallel, native_ref=N + "data_state_parallel",
        input_data={}, initial_state={"init": True},
        expect=Expect(
            status="success", result={"state": {"init": True, "a": 1, "b": 2}},
            state={"init": True, "a": 1, "b": 2},
            trace=TraceExpect(runs={"mark-a": 1, "mark-b": 1, "read-state": 1}),
        ),
        notes="Mastra R0/R1beta lose state set in parallel children (issue #10917); flow follows the "
        "1.x fix (children's states merged). Natively state is a local variable.",
    ),
]
