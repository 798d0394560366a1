"""Control-flow scenarios (WCP-1..9, 13, 14, 21, 22, 30): Mastra-syntax definitions and expectations.

Expected values are written by hand from reference/mastra-semantics.md sections 3.1-3.10 and the
flow decisions of issue 2 (branch output keyed only by the branches that ran; foreach keeps input
order; a nested workflow's result is its last entry's output).
"""

from __future__ import annotations

import asyncio
from typing import Any

from flow import create_step, create_workflow
from scenarios.base import Expect, Scenario, StepExpect, TraceExpect
from scenarios.catalogue._util import present, tstep
from scenarios.trace import span

N = "scenarios.natives.control:"


# --- WCP-1 sequence ----------------------------------------------------------------------
def _wcp1() -> Any:
    return (
        create_workflow(id="wcp1-sequence")
        .then(tstep("add-one", lambda c: {"value": c.input_data["value"] + 1}))
        .then(tstep("times-ten", lambda c: {"value": c.input_data["value"] * 10}))
        .then(tstep("add-three", lambda c: {"value": c.input_data["value"] + 3}))
        .commit()
    )


# --- WCP-2/3 parallel split + synchronization -------------------------------------------
def _wcp2() -> Any:
    return (
        create_workflow(id="wcp2-3-parallel-sync")
        .parallel([
            tstep("left", lambda c: {"l": c.input_data["value"] + 1}, delay=0.1),
            tstep("right", lambda c: {"r": c.input_data["value"] * 2}, delay=0.1),
        ])
        .then(tstep("join", lambda c: {"sum": c.input_data["left"]["l"] + c.input_data["right"]["r"]}))
        .commit()
    )


# --- WCP-4/5 exclusive choice + simple merge --------------------------------------------
def _merge_labels(c: Any) -> dict[str, Any]:
    ran = present(c.input_data)
    return {"merged": [v["label"] for v in ran.values()], "branches": sorted(ran)}


def _wcp4() -> Any:
    return (
        create_workflow(id="wcp4-5-exclusive-choice")
        .then(tstep("classify", lambda c: {"value": c.input_data["value"],
                                            "size": "big" if c.input_data["value"] > 10 else "small"}))
        .branch([
            (lambda c: c.input_data["size"] == "big", tstep("big", lambda c: {"label": f"big:{c.input_data['value']}"})),
            (lambda c: c.input_data["size"] == "small", tstep("small", lambda c: {"label": f"small:{c.input_data['value']}"})),
        ])
        .then(tstep("merge", _merge_labels))
        .commit()
    )


# --- WCP-6/7 multi-choice + structured synchronizing merge --------------------------------
def _wcp6() -> Any:
    return (
        create_workflow(id="wcp6-7-multi-choice")
        .branch([
            (lambda c: c.input_data["value"] > 0, tstep("positive", lambda c: {"tag": "positive"}, delay=0.1)),
            (lambda c: c.input_data["value"] % 2 == 0, tstep("even", lambda c: {"tag": "even"}, delay=0.1)),
            (lambda c: c.input_data["value"] > 100, tstep("huge", lambda c: {"tag": "huge"}, delay=0.1)),
        ])
        .then(tstep("sync-merge", lambda c: {"tags": sorted(v["tag"] for v in present(c.input_data).values())}))
        .commit()
    )


# --- branch with no true condition ---------------------------------------------------------
def _none_true() -> Any:
    return (
        create_workflow(id="branch-none-true")
        .branch([
            (lambda c: c.input_data["value"] > 100, tstep("huge", lambda c: {"tag": "huge"})),
            (lambda c: c.input_data["value"] < 0, tstep("negative", lambda c: {"tag": "negative"})),
        ])
        .then(tstep("after", lambda c: {"received": present(c.input_data)}))
        .commit()
    )


# --- branch condition capturing an outer variable ------------------------------------------
def _closure() -> Any:
    threshold = 10  # captured by the conditions below (a real closure, not a constant)
    return (
        create_workflow(id="branch-closure")
        .branch([
            (lambda c: c.input_data["value"] > threshold,
             tstep("above", lambda c: {"excess": c.input_data["value"] - threshold})),
            (lambda c: c.input_data["value"] <= threshold,
             tstep("below", lambda c: {"missing": threshold - c.input_data["value"]})),
        ])
        .commit()
    )


# --- WCP-21 loops -----------------------------------------------------------------------------
def _dountil() -> Any:
    return (
        create_workflow(id="wcp21-dountil")
        .dountil(tstep("increment", lambda c: {"value": c.input_data["value"] + 1}),
                 lambda c: c.input_data["value"] >= 5)
        .commit()
    )


def _dowhile() -> Any:
    return (
        create_workflow(id="wcp21-dowhile")
        .dowhile(tstep("count-up", lambda c: {"value": c.input_data["value"] + 1}),
                 lambda c: c.input_data["value"] < 3)
        .commit()
    )


def _iteration_count() -> Any:
    return (
        create_workflow(id="loop-iteration-count")
        .dountil(tstep("tick", lambda c: {"ticks": c.input_data["ticks"] + 1}),
                 lambda c: c.iteration_count >= 4)
        .commit()
    )


# --- WCP-13 k copies in parallel --------------------------------------------------------------
def _copy(i: int) -> Any:
    return tstep(f"copy-{i}", lambda c: {"v": c.input_data["value"] + i}, delay=0.1)


def _wcp13() -> Any:
    return (
        create_workflow(id="wcp13-parallel-copies")
        .parallel([_copy(i) for i in range(1, 5)])
        .then(tstep("sum-copies", lambda c: {"total": sum(v["v"] for v in c.input_data.values())}))
        .commit()
    )


# --- WCP-14 foreach -----------------------------------------------------------------------------
def _items() -> Any:
    return tstep("items", lambda c: [{"value": n} for n in c.input_data["items"]])


def _foreach(wid: str, concurrency: int, delay_of: Any) -> Any:
    async def square(ctx: Any) -> Any:
        with span("square"):
            await asyncio.sleep(delay_of(ctx.input_data["value"]))
            return {"value": ctx.input_data["value"] ** 2}

    return (
        create_workflow(id=wid)
        .then(_items())
        .foreach(create_step(id="square", execute=square), concurrency=concurrency)
        .commit()
    )


def _foreach_empty() -> Any:
    return (
        create_workflow(id="foreach-empty")
        .then(_items())
        .foreach(tstep("square", lambda c: {"value": c.input_data["value"] ** 2}), concurrency=2)
        .then(tstep("count", lambda c: {"count": len(c.input_data)}))
        .commit()
    )


# --- WCP-22 recursion through nested workflows, depth 3 ----------------------------------------
def _level(depth: int) -> Any:
    enter = tstep(f"enter-{depth}", lambda c: {"path": [*c.input_data["path"], depth]})
    wf = create_workflow(id=f"level-{depth}").then(enter)
    if depth > 1:
        wf = wf.then(_level(depth - 1))
    return wf.commit()


# --- a nested workflow inside a branch ------------------------------------------------------------
def _nested_branch() -> Any:
    big = (
        create_workflow(id="big-path")
        .then(tstep("double", lambda c: {"value": c.input_data["value"] * 2}))
        .then(tstep("add-one", lambda c: {"value": c.input_data["value"] + 1}))
        .commit()
    )
    return (
        create_workflow(id="nested-in-branch")
        .branch([
            (lambda c: c.input_data["value"] > 5, big),
            (lambda c: c.input_data["value"] <= 5, tstep("small-path", lambda c: {"value": 0})),
        ])
        .then(tstep("final", lambda c: {"final": [v["value"] for v in present(c.input_data).values()]}))
        .commit()
    )


# --- WCP-9 discriminator / WCP-30 partial join: raw-code workaround -----------------------------
_orphans: set[asyncio.Task[Any]] = set()


async def _branch(name: str, delay: float) -> str:
    with span(name):
        await asyncio.sleep(delay)
    return name


async def _race_first(ctx: Any) -> Any:
    tasks = {asyncio.ensure_future(_branch(n, d)) for n, d in (("fast", 0.05), ("medium", 0.3), ("slow", 0.6))}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    _orphans.update(pending)  # losers run on (WCP-9 ignores them); keep a reference
    for t in pending:
        t.add_done_callback(_orphans.discard)
    return {"winner": next(iter(done)).result()}


async def _race_two(ctx: Any) -> Any:
    tasks = [asyncio.ensure_future(_branch(n, d)) for n, d in (("part-a", 0.05), ("part-b", 0.1), ("part-c", 0.6))]
    first: list[str] = []
    for fut in asyncio.as_completed(tasks):
        first.append(await fut)
        if len(first) == 2:
            break
    for t in tasks:
        if not t.done():
            _orphans.add(t)
            t.add_done_callback(_orphans.discard)
    return {"first_two": first}


def _wcp9() -> Any:
    return (
        create_workflow(id="wcp9-discriminator")
        .then(create_step(id="race", execute=_race_first))
        .then(tstep("after-first", lambda c: {"first": c.input_data["winner"]}))
        .commit()
    )


def _wcp30() -> Any:
    return (
        create_workflow(id="wcp30-partial-join")
        .then(create_step(id="race-two", execute=_race_two))
        .then(tstep("join-two", lambda c: {"joined": sorted(c.input_data["first_two"])}))
        .commit()
    )


RAW_RACE_NOTE = (
    "Mastra syntax has no race/partial join: parallel() and branch() always wait for every started "
    "branch. Workaround (+/-): one raw-code step runs the branches as asyncio tasks and returns after "
    "the first (asyncio.wait FIRST_COMPLETED) / after two (as_completed); the branches are not steps "
    "(no records, retries or durability of their own) and the losers run on as orphan tasks. "
    "Natively it is asyncio.wait over step calls."
)

SCENARIOS: list[Scenario] = [
    Scenario(
        id="wcp1-sequence", title="Sequence of three steps", family="control-flow", wcp=("WCP-1",),
        workflow_factory=_wcp1, native_ref=N + "wcp1_sequence", input_data={"value": 1},
        expect=Expect(
            status="success", result={"value": 23},
            steps={
                "add-one": StepExpect("success", output={"value": 2}, payload={"value": 1}),
                "times-ten": StepExpect("success", output={"value": 20}, payload={"value": 2}),
                "add-three": StepExpect("success", output={"value": 23}, payload={"value": 20}),
            },
            trace=TraceExpect(
                runs={"add-one": 1, "times-ten": 1, "add-three": 1},
                max_in_flight={"*": 1},
                before=(("add-one", "times-ten"), ("times-ten", "add-three")),
            ),
        ),
    ),
    Scenario(
        id="wcp2-3-parallel-sync", title="Parallel split and synchronization", family="control-flow",
        wcp=("WCP-2", "WCP-3"), workflow_factory=_wcp2, native_ref=N + "wcp2_3_parallel_sync",
        input_data={"value": 5},
        expect=Expect(
            status="success", result={"sum": 16},
            steps={
                "left": StepExpect("success", output={"l": 6}, payload={"value": 5}),
                "right": StepExpect("success", output={"r": 10}, payload={"value": 5}),
                "join": StepExpect("success", output={"sum": 16}, payload={"left": {"l": 6}, "right": {"r": 10}}),
            },
            trace=TraceExpect(
                runs={"left": 1, "right": 1, "join": 1},
                max_in_flight={"*": 2},
                before=(("left", "join"), ("right", "join")),
            ),
        ),
        notes="max_in_flight 2 asserts that the two parallel steps overlapped.",
    ),
    Scenario(
        id="wcp4-5-exclusive-choice", title="Exclusive choice and simple merge", family="control-flow",
        wcp=("WCP-4", "WCP-5"), workflow_factory=_wcp4, native_ref=N + "wcp4_5_exclusive_choice",
        input_data={"value": 3},
        expect=Expect(
            status="success", result={"merged": ["small:3"], "branches": ["small"]},
            steps={"small": StepExpect("success", output={"label": "small:3"}, payload={"value": 3, "size": "small"})},
            absent_steps=("big",),
            trace=TraceExpect(
                runs={"classify": 1, "small": 1, "merge": 1},
                before=(("classify", "small"), ("small", "merge")),
            ),
        ),
    ),
    Scenario(
        id="wcp6-7-multi-choice", title="Multi-choice with two true conditions, then synchronizing merge",
        family="control-flow", wcp=("WCP-6", "WCP-7"), workflow_factory=_wcp6,
        native_ref=N + "wcp6_7_multi_choice", input_data={"value": 4},
        expect=Expect(
            status="success", result={"tags": ["even", "positive"]},
            steps={
                "positive": StepExpect("success", output={"tag": "positive"}),
                "even": StepExpect("success", output={"tag": "even"}),
            },
            absent_steps=("huge",),
            trace=TraceExpect(
                runs={"positive": 1, "even": 1, "sync-merge": 1},
                max_in_flight={"*": 2},
                before=(("positive", "sync-merge"), ("even", "sync-merge")),
            ),
        ),
        notes="Mastra's branch() runs every true branch concurrently, so it is Multi-Choice (WCP-6).",
    ),
    Scenario(
        id="branch-none-true", title="Branch with no true condition continues with {}",
        family="control-flow", workflow_factory=_none_true, native_ref=N + "branch_none_true",
        input_data={"value": 5},
        expect=Expect(
            status="success", result={"received": {}},
            absent_steps=("huge", "negative"),
            trace=TraceExpect(runs={"after": 1}),
        ),
    ),
    Scenario(
        id="branch-closure", title="Branch condition capturing an outer variable", family="control-flow",
        wcp=("WCP-4",), workflow_factory=_closure, native_ref=N + "branch_closure",
        input_data={"value": 15},
        expect=Expect(
            status="success", result={"above": {"excess": 5}},
            steps={"above": StepExpect("success", output={"excess": 5})},
            absent_steps=("below",),
            trace=TraceExpect(runs={"above": 1}),
        ),
        notes="The conditions close over a local `threshold`: codegen must lift the closure, "
        "codegen-strict refuses it.",
    ),
    Scenario(
        id="wcp21-dountil", title="Structured loop: dountil (post-test)", family="control-flow",
        wcp=("WCP-21",), workflow_factory=_dountil, native_ref=N + "wcp21_dountil", input_data={"value": 0},
        expect=Expect(
            status="success", result={"value": 5},
            steps={"increment": StepExpect("success", output={"value": 5})},
            trace=TraceExpect(runs={"increment": 5}, max_in_flight={"*": 1}),
        ),
    ),
    Scenario(
        id="wcp21-dowhile", title="Structured loop: dowhile", family="control-flow",
        wcp=("WCP-21",), workflow_factory=_dowhile, native_ref=N + "wcp21_dowhile", input_data={"value": 0},
        expect=Expect(
            status="success", result={"value": 3},
            steps={"count-up": StepExpect("success", output={"value": 3})},
            trace=TraceExpect(runs={"count-up": 3}),
        ),
        notes="The body runs before the first test (Mastra: both loop kinds run the body at least once).",
    ),
    Scenario(
        id="loop-iteration-count", title="Loop bounded by iteration_count", family="control-flow",
        wcp=("WCP-21",), workflow_factory=_iteration_count, native_ref=N + "loop_iteration_count",
        input_data={"ticks": 0},
        expect=Expect(
            status="success", result={"ticks": 4},
            steps={"tick": StepExpect("success", output={"ticks": 4})},
            trace=TraceExpect(runs={"tick": 4}),
        ),
        notes="iteration_count is 1-based: the condition sees 1, 2, 3, 4 and stops at 4.",
    ),
    Scenario(
        id="wcp13-parallel-copies", title="Parallel of 4 copies (design-time multiple instances)",
        family="control-flow", wcp=("WCP-13",), workflow_factory=_wcp13, native_ref=N + "wcp13_parallel_copies",
        input_data={"value": 3},
        expect=Expect(
            status="success", result={"total": 22},
            steps={f"copy-{i}": StepExpect("success", output={"v": 3 + i}) for i in range(1, 5)},
            trace=TraceExpect(
                runs={"copy-*": 4, "sum-copies": 1},
                max_in_flight={"copy-*": 4},
                before=(("copy-*", "sum-copies"),),
            ),
        ),
    ),
    Scenario(
        id="wcp14-foreach-c1", title="foreach with concurrency 1", family="control-flow", wcp=("WCP-14",),
        workflow_factory=lambda: _foreach("wcp14-foreach-c1", 1, lambda v: 0.05),
        native_ref=N + "wcp14_foreach_c1", input_data={"items": [1, 2, 3]},
        expect=Expect(
            status="success", result=[{"value": 1}, {"value": 4}, {"value": 9}],
            steps={"square": StepExpect("success", output=[{"value": 1}, {"value": 4}, {"value": 9}],
                                        payload=[{"value": 1}, {"value": 2}, {"value": 3}])},
            trace=TraceExpect(runs={"items": 1, "square": 3}, max_in_flight={"square": 1}),
        ),
    ),
    Scenario(
        id="wcp14-foreach-c3", title="foreach with concurrency 3 (order kept, 3 in flight)",
        family="control-flow", wcp=("WCP-14",),
        workflow_factory=lambda: _foreach("wcp14-foreach-c3", 3, lambda v: 0.05 + 0.02 * (7 - v)),
        native_ref=N + "wcp14_foreach_c3", input_data={"items": [1, 2, 3, 4, 5, 6]},
        expect=Expect(
            status="success", result=[{"value": n * n} for n in range(1, 7)],
            steps={"square": StepExpect("success", output=[{"value": n * n} for n in range(1, 7)])},
            trace=TraceExpect(runs={"items": 1, "square": 6}, max_in_flight={"square": 3}),
        ),
        notes="Later items sleep less, so completion order differs from input order; the output "
        "keeps input order.",
    ),
    Scenario(
        id="foreach-empty", title="foreach over an empty list", family="control-flow", wcp=("WCP-14",),
        workflow_factory=_foreach_empty, native_ref=N + "foreach_empty", input_data={"items": []},
        expect=Expect(
            status="success", result={"count": 0},
            steps={"square": StepExpect("success", output=[])},
            trace=TraceExpect(runs={"items": 1, "count": 1}),
        ),
    ),
    Scenario(
        id="wcp22-recursion", title="Recursion through nested workflows, depth 3", family="control-flow",
        wcp=("WCP-22",), workflow_factory=lambda: _level(3), native_ref=N + "wcp22_recursion",
        input_data={"path": []},
        expect=Expect(
            status="success", result={"path": [3, 2, 1]},
            steps={
                "enter-3": StepExpect("success", output={"path": [3]}),
                "level-2": StepExpect("success", output={"path": [3, 2, 1]}, payload={"path": [3]}),
            },
            trace=TraceExpect(
                runs={"enter-3": 1, "enter-2": 1, "enter-1": 1},
                before=(("enter-3", "enter-2"), ("enter-2", "enter-1")),
            ),
        ),
        notes="Mastra graphs are static, so the recursion is unrolled to depth 3 at build time "
        "(level-3 -> level-2 -> level-1); natively it is a recursive Python function.",
    ),
    Scenario(
        id="nested-in-branch", title="A nested workflow inside a branch", family="control-flow",
        wcp=("WCP-4",), workflow_factory=_nested_branch, native_ref=N + "nested_in_branch",
        input_data={"value": 6},
        expect=Expect(
            status="success", result={"final": [13]},
            steps={"big-path": StepExpect("success", output={"value": 13}, payload={"value": 6})},
            absent_steps=("small-path",),
            trace=TraceExpect(
                runs={"double": 1, "add-one": 1, "final": 1},
                before=(("double", "add-one"), ("add-one", "final")),
            ),
        ),
    ),
    Scenario(
        id="wcp9-discriminator", title="Structured discriminator: continue after the first of three",
        family="control-flow", wcp=("WCP-9",), workflow_factory=_wcp9, native_ref=N + "wcp9_discriminator",
        input_data={},
        expect=Expect(
            status="success", result={"first": "fast"},
            trace=TraceExpect(
                runs={"fast": 1, "medium": 1, "slow": 1, "after-first": 1},
                completed={"fast": 1, "after-first": 1, "medium": (0, 1), "slow": (0, 1)},
                before=(("fast", "after-first"), ("after-first.start", "medium.end"),
                        ("after-first.start", "slow.end")),
            ),
        ),
        notes=RAW_RACE_NOTE,
    ),
    Scenario(
        id="wcp30-partial-join", title="Structured partial join: continue after two of three",
        family="control-flow", wcp=("WCP-30",), workflow_factory=_wcp30, native_ref=N + "wcp30_partial_join",
        input_data={},
        expect=Expect(
            status="success", result={"joined": ["part-a", "part-b"]},
            trace=TraceExpect(
                runs={"part-a": 1, "part-b": 1, "part-c": 1, "join-two": 1},
                completed={"part-a": 1, "part-b": 1, "part-c": (0, 1), "join-two": 1},
                before=(("part-a", "join-two"), ("part-b", "join-two"), ("join-two.start", "part-c.end")),
            ),
        ),
        notes=RAW_RACE_NOTE,
    ),
]
