"""Property test: random flow graphs give the same `result` as an independent evaluator.

Hypothesis draws a small graph spec (plain data): then / parallel / branch / foreach / dountil /
dowhile entries (plus map functions and zero sleeps) over pure steps on ints, possibly nesting
workflows. The spec is built twice:
once into a `flow` workflow run by flow's interpreter, and once evaluated by `evaluate()` below,
a ~60-line recursive evaluator written from reference/mastra-semantics.md section 3.1-3.7 that
does not use flow at all. Both must agree on `result`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flow

# --------------------------------------------------------------------------------------------
# pure step functions on values


def val(x: Any) -> int:
    """The int carried by any value a step can receive.

    {"value": n} -> n; a block output {child_id: out | None} -> sum over the children;
    a foreach output [out, ...] -> sum over the items; anything else -> 0.
    """
    if isinstance(x, dict):
        if "value" in x and isinstance(x["value"], int):
            return x["value"]
        return sum(val(v) for v in x.values() if v is not None)
    if isinstance(x, list):
        return sum(val(v) for v in x)
    return 0


def apply_op(op: tuple[str, int], x: Any) -> Any:
    kind, k = op
    v = val(x)
    if kind == "add":
        return {"value": v + k}
    if kind == "mul":
        return {"value": v * k}
    if kind == "spread":  # a list-producing step (foreach input)
        return [{"value": v + i} for i in range(k)]
    raise AssertionError(kind)


def cond_holds(cond: tuple[str, int], x: Any) -> bool:
    kind, k = cond
    v = val(x)
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "mod":
        return v % 3 == k
    if kind == "gt":
        return v > k
    raise AssertionError(kind)


# --------------------------------------------------------------------------------------------
# graph spec (plain data)
#
# StepSpec  = ("op", (kind, k), is_async) | ("nested", [Entry, ...])
# Entry     = ("then", StepSpec)
#           | ("parallel", [StepSpec, ...])
#           | ("branch", [(Cond, StepSpec), ...])
#           | ("foreach", spread_count, StepSpec, concurrency)   # a spread step, then foreach
#           | ("loop", "dountil" | "dowhile", add_k, max_iterations, mod_target)
#           | ("map", (kind, k))                                 # map(fn)
#           | ("sleep", seconds)                                 # pass-through

ops = st.tuples(st.sampled_from(["add", "mul"]), st.integers(-3, 4))
conds = st.tuples(st.sampled_from(["true", "false", "mod", "gt"]), st.integers(0, 2))
op_step = st.tuples(st.just("op"), ops, st.booleans())


def entries(step: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    loop = st.tuples(
        st.just("loop"),
        st.sampled_from(["dountil", "dowhile"]),
        st.integers(1, 3),
        st.integers(1, 4),
        st.integers(0, 2),
    )
    return st.one_of(
        st.tuples(st.just("then"), step),
        st.tuples(st.just("parallel"), st.lists(step, min_size=1, max_size=3)),
        st.tuples(st.just("branch"), st.lists(st.tuples(conds, step), min_size=1, max_size=3)),
        st.tuples(st.just("foreach"), st.integers(0, 3), step, st.integers(1, 3)),
        loop,
        loop,  # listed twice: loops are drawn as often as the other main kinds
        st.tuples(st.just("map"), ops),
        st.tuples(st.just("sleep"), st.sampled_from([0, 0.001])),
    )


def step_specs(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return op_step
    nested = st.tuples(
        st.just("nested"), st.lists(entries(step_specs(depth - 1)), min_size=1, max_size=3)
    )
    return st.one_of(op_step, op_step, nested)


graphs = st.lists(entries(step_specs(1)), min_size=1, max_size=4)
inputs = st.integers(-5, 10).map(lambda n: {"value": n})


# --------------------------------------------------------------------------------------------
# the independent evaluator (semantics of reference section 3, no flow involved)


def eval_step(spec: Any, x: Any) -> Any:
    if spec[0] == "op":
        return apply_op(spec[1], x)
    return evaluate(spec[1], x)


def loop_stop(out: Any, iteration: int, max_it: int, target: int) -> bool:
    """Whether the loop ends after `iteration` (1-based) produced `out` (dountil's condition;
    dowhile's condition is its negation)."""
    return iteration >= max_it or val(out) % 3 == target


def evaluate(graph: list[Any], inp: Any) -> Any:
    """The `result` of running `graph` on `inp` (section 3.1: result = last entry's output)."""
    prev = inp
    result: Any = None
    for entry in graph:
        kind = entry[0]
        if kind == "then":
            result = eval_step(entry[1], prev)
        elif kind == "parallel":
            result = {sid: eval_step(s, prev) for sid, s in entry[1]}
        elif kind == "branch":
            result = {sid: eval_step(s, prev) for sid, c, s in entry[1] if cond_holds(c, prev)}
        elif kind == "foreach":
            _, count, spec, _conc = entry
            items = apply_op(("spread", count), prev)
            result = [eval_step(spec, item) for item in items]
        elif kind == "map":
            result = apply_op(entry[1], prev)
        elif kind == "sleep":
            result = prev
        elif kind == "loop":
            _, loop_type, k, max_it, target = entry
            x, iteration = prev, 0
            while True:
                iteration += 1
                x = apply_op(("add", k), x)
                if loop_stop(x, iteration, max_it, target):
                    break
            result = x
        else:
            raise AssertionError(kind)
        prev = result
    return result


# --------------------------------------------------------------------------------------------
# building the same spec with flow


@dataclass
class Builder:
    """Builds a spec with flow; returns the flow object and the evaluator's tree (the same spec
    with the generated step ids filled in)."""

    ids: Callable[[], int]

    def step(self, spec: Any) -> tuple[Any, Any]:
        n = self.ids()
        if spec[0] == "nested":
            return self.workflow(spec[1], f"w{n}")
        op, is_async = spec[1], spec[2]
        if is_async:

            async def aexec(ctx: Any, op: tuple[str, int] = op) -> Any:
                await asyncio.sleep(0)
                return apply_op(op, ctx.input_data)

            return flow.create_step(id=f"s{n}", execute=aexec), spec

        def sexec(ctx: Any, op: tuple[str, int] = op) -> Any:
            return apply_op(op, ctx.input_data)

        return flow.create_step(id=f"s{n}", execute=sexec), spec

    def workflow(self, graph: list[Any], wid: str) -> tuple[Any, Any]:
        w = flow.create_workflow(id=wid)
        tree: list[Any] = []
        for entry in graph:
            kind = entry[0]
            if kind == "then":
                s, t = self.step(entry[1])
                w = w.then(s)
                tree.append(("then", t))
            elif kind == "parallel":
                children = [self.step(c) for c in entry[1]]
                w = w.parallel([s for s, _ in children])
                tree.append(("parallel", [(s.id, t) for s, t in children]))
            elif kind == "branch":
                built = [(c, *self.step(spec)) for c, spec in entry[1]]

                def make_cond(c: tuple[str, int]) -> Callable[[Any], bool]:
                    return lambda ctx: cond_holds(c, ctx.input_data)

                w = w.branch([(make_cond(c), s) for c, s, _ in built])
                tree.append(("branch", [(s.id, c, t) for c, s, t in built]))
            elif kind == "foreach":
                _, count, spec, conc = entry

                def spread_exec(ctx: Any, count: int = count) -> Any:
                    return apply_op(("spread", count), ctx.input_data)

                spread = flow.create_step(id=f"spread{self.ids()}", execute=spread_exec)
                s, t = self.step(spec)
                w = w.then(spread).foreach(s, concurrency=conc)
                tree.append(("foreach", count, t, conc))
            elif kind == "map":

                def map_fn(ctx: Any, op: tuple[str, int] = entry[1]) -> Any:
                    return apply_op(op, ctx.input_data)

                w = w.map(map_fn)
                tree.append(entry)
            elif kind == "sleep":
                w = w.sleep(entry[1])
                tree.append(entry)
            else:
                _, loop_type, k, max_it, target = entry

                def body_exec(ctx: Any, k: int = k) -> Any:
                    return apply_op(("add", k), ctx.input_data)

                body = flow.create_step(id=f"loop{self.ids()}", execute=body_exec)

                def cond(
                    ctx: Any, loop_type: str = loop_type, max_it: int = max_it, target: int = target
                ) -> bool:
                    stop = loop_stop(ctx.input_data, ctx.iteration_count, max_it, target)
                    return stop if loop_type == "dountil" else not stop

                w = w.dountil(body, cond) if loop_type == "dountil" else w.dowhile(body, cond)
                tree.append(entry)
        return w.commit(), ("nested", tree)


# --------------------------------------------------------------------------------------------
# the property


def run_flow(graph: list[Any], inp: Any) -> tuple[Any, Any]:
    counter = itertools.count()
    builder = Builder(ids=lambda: next(counter))
    w, (_, tree) = builder.workflow(graph, "root")
    res = asyncio.run(w.create_run().start(input_data=inp))
    return res, tree


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(graph=graphs, inp=inputs)
def test_random_graphs_match_reference_evaluator(graph: list[Any], inp: Any) -> None:
    res, tree = run_flow(graph, inp)
    assert res.status == "success", (res.status, res.error)
    assert res.result == evaluate(tree, inp)


def test_evaluator_sanity() -> None:
    """The evaluator itself, on hand-computed cases (so the property cannot pass vacuously)."""
    add1 = ("op", ("add", 1), False)
    mul2 = ("op", ("mul", 2), False)
    assert evaluate([("then", add1), ("then", mul2)], {"value": 3}) == {"value": 8}
    assert evaluate([("parallel", [("a", add1), ("b", mul2)])], {"value": 3}) == {
        "a": {"value": 4},
        "b": {"value": 6},
    }
    # block output feeds the next step as the sum of its children: 4 + 6 = 10, +1
    assert evaluate([("parallel", [("a", add1), ("b", mul2)]), ("then", add1)], {"value": 3}) == {
        "value": 11
    }
    assert evaluate(
        [("branch", [("a", ("false", 0), add1), ("b", ("gt", 2), mul2)])], {"value": 3}
    ) == {"b": {"value": 6}}
    assert evaluate([("branch", [("a", ("false", 0), add1)]), ("then", add1)], {"value": 3}) == {
        "value": 1
    }
    # spread 3 from 2 -> [2, 3, 4], each +1
    assert evaluate([("foreach", 3, add1, 2)], {"value": 2}) == [
        {"value": 3},
        {"value": 4},
        {"value": 5},
    ]
    assert evaluate([("foreach", 0, add1, 1), ("then", add1)], {"value": 2}) == {"value": 1}
    # loop: add 2 from 0 -> 2 (2%3 != 0), 4, 6 (6%3 == 0): stops after 3 iterations
    assert evaluate([("loop", "dountil", 2, 9, 0)], {"value": 0}) == {"value": 6}
    assert evaluate([("loop", "dowhile", 2, 2, 0)], {"value": 0}) == {"value": 4}
    assert evaluate([("then", ("nested", [("then", add1), ("then", mul2)]))], {"value": 1}) == {
        "value": 4
    }
    assert evaluate([("map", ("mul", 3)), ("sleep", 0), ("then", add1)], {"value": 2}) == {
        "value": 7
    }


def test_property_flow_matches_hand_example() -> None:
    """One fixed graph through flow, expected value computed by hand."""
    add1 = ("op", ("add", 1), False)
    graph = [
        ("parallel", [add1, ("op", ("mul", 2), True)]),  # {s0: 4, s1: 6}
        ("foreach", 2, add1, 2),  # spread 10 -> [10, 11], +1 -> [11, 12]
        ("loop", "dountil", 1, 5, 0),  # 23 -> 24 (24 % 3 == 0): one iteration
    ]
    res, _ = run_flow(graph, {"value": 3})
    assert res.status == "success", res.error
    assert res.result == {"value": 24}
