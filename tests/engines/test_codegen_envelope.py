"""The codegen step envelope, counted (never timed): what each flow step journals, who is woken
when a step ends, one `StepCall` per step id, mapping values read when the map step runs, and an
entry that did not succeed ending the generated function (`next_input` -> `Stop`)."""

from __future__ import annotations

import pytest

import durable
from engines import get_engine
from engines.codegen import runtime
from engines.codegen.runtime import FlowRun, StepCall
from flow import create_step, create_workflow


@pytest.fixture
def world():
    return durable.MemoryWorld()


def inc(ctx):
    return {"v": ctx.input_data["v"] + 1}


def _events(world, run_id, type_):
    return [e.data for e in world.list_events(run_id) if e.type == type_]


async def test_a_step_journals_only_its_input_and_a_compact_result(world):
    a = create_step("a", inc)
    wf = create_workflow(id="compact").then(a).then(create_step("b", inc)).then(a).commit()
    result = await get_engine("codegen", world=world).run(wf, input_data={"v": 0})
    assert result.result == {"v": 3}
    created = [d["input"] for d in _events(world, result.run_id, "step_created")]
    # the second call of "a" sees one earlier execution of it (retry_base 1)
    assert created == [{"args": [], "kwargs": {"input_data": {"v": 0}}},
                       {"args": [], "kwargs": {"input_data": {"v": 1}}},
                       {"args": [], "kwargs": {"input_data": {"v": 2}, "retry_base": 1}}]
    results = [d["result"] for d in _events(world, result.run_id, "step_completed")]
    assert results == [{"output": {"v": 1}}, {"output": {"v": 2}}, {"output": {"v": 3}}]
    # the records' times are the body's logical clock: the recorded time of the last result
    # delivered to the body (so replay gives the same)
    done = [e.created_at for e in world.list_events(result.run_id) if e.type == "step_completed"]
    b = result.steps["b"]
    assert (b.started_at, b.ended_at) == (done[0], done[1])
    a = result.steps["a"]  # (its record: the second call)
    assert (a.payload, a.started_at, a.ended_at) == ({"v": 2}, done[1], done[2])


async def test_state_iteration_retry_base_and_scope_are_journaled_when_set(world):
    inner = create_workflow(id="inner").then(create_step("deep", inc)).commit()
    wf = (create_workflow(id="varying")
          .dountil(create_step("loop", inc), lambda c: c.iteration_count >= 2)
          .then(inner).commit())
    result = await get_engine("codegen", world=world).run(wf, input_data={"v": 0},
                                                          initial_state={"k": 1})
    assert result.status == "success", result.error
    assert result.result == {"v": 3}
    created = [(d["step_name"].rsplit("/", 1)[-1], d["input"]["kwargs"])
               for d in _events(world, result.run_id, "step_created")
               if "/entry" not in d["step_name"]]  # (not the loop condition's closure step)
    # the second call of "loop" sees one earlier execution (retry_base 1); the nested step
    # names its workflow (scope); the state goes along because it is not empty
    assert created == [
        ("loop", {"input_data": {"v": 0}, "state": {"k": 1}, "iteration": 1}),
        ("loop", {"input_data": {"v": 1}, "state": {"k": 1}, "iteration": 2, "retry_base": 1}),
        ("deep", {"input_data": {"v": 2}, "state": {"k": 1}, "scope": ["inner"]}),
    ]
    # the loop condition (a lifted closure) journals the same way: its id is in the step name
    conditions = [(d["step_name"].split(":", 1)[1], d["input"]["kwargs"])
                  for d in _events(world, result.run_id, "step_created")
                  if "/entry" in d["step_name"]]
    assert conditions == [
        ("varying/varying/entry1/loop/condition",
         {"input_data": {"v": 1}, "state": {"k": 1}, "iteration": 1}),
        ("varying/varying/entry1/loop/condition",
         {"input_data": {"v": 2}, "state": {"k": 1}, "iteration": 2}),
    ]


async def test_a_chain_wakes_nobody_per_step_and_a_parallel_entry_wakes_its_gather(
        world, monkeypatch):
    woken: list[str] = []
    real = FlowRun._notify

    def spy(self):
        woken.append(self.workflow_id)
        real(self)

    monkeypatch.setattr(FlowRun, "_notify", spy)
    chain = (create_workflow(id="quiet").then(create_step("a", inc)).then(create_step("b", inc))
             .then(create_step("c", inc)).commit())
    result = await get_engine("codegen", world=world).run(chain, input_data={"v": 0})
    assert result.result == {"v": 3}
    assert woken == []  # no gather and no resume hook: nobody to wake
    par = (create_workflow(id="fan").parallel([create_step(f"p{i}", inc) for i in range(3)])
           .commit())
    result = await get_engine("codegen", world=world).run(par, input_data={"v": 0})
    assert result.result == {"p0": {"v": 1}, "p1": {"v": 1}, "p2": {"v": 1}}
    # per child: its step's end (the gather listens) and its task's end
    assert woken == ["fan"] * 6


async def test_one_step_call_per_step_id(world, monkeypatch):
    made: list[str] = []
    real = StepCall.__init__

    def spy(self, run, binding):
        made.append(binding.step_id)
        real(self, run, binding)

    monkeypatch.setattr(StepCall, "__init__", spy)
    wf = (create_workflow(id="loop_calls").then(create_step("a", inc))
          .dountil(create_step("b", inc), lambda c: c.iteration_count >= 4).commit())
    result = await get_engine("codegen", world=world).run(wf, input_data={"v": 0})
    assert result.result == {"v": 5}
    assert made == ["a", "b"]  # "b" ran 4 times through one StepCall


@pytest.mark.parametrize("engine_name", ["default", "codegen"])
async def test_mapping_values_are_read_when_the_map_step_runs(engine_name, world):
    seen: list[object] = []

    def dyn(ctx):
        seen.append(ctx.input_data)
        return ctx.input_data["v"] * 10

    wf = (create_workflow(id=f"maps_{engine_name}").then(create_step("a", inc))
          .map({"from_a": {"step": "a", "path": "v"}, "whole": {"step": "a", "path": "."},
                "init": {"init_data": True, "path": "v"}, "const": {"value": [1, {"x": 2}]},
                "user": {"request_context_path": "user"}, "dyn": {"fn": dyn}}, id="m")
          .commit())
    engine = get_engine(engine_name, world=world) if engine_name == "codegen" else get_engine(engine_name)
    result = await engine.run(wf, input_data={"v": 4}, request_context={"user": "ada"})
    assert result.status == "success", result.error
    assert result.result == {"from_a": 5, "whole": {"v": 5}, "init": 4, "const": [1, {"x": 2}],
                             "user": "ada", "dyn": 50}
    assert seen == [{"v": 5}]
    assert result.steps["m"].payload == {"v": 5}


@pytest.mark.parametrize("engine_name", ["default", "codegen"])
async def test_a_bad_mapping_path_fails_the_map_step_itself(engine_name, world):
    wf = (create_workflow(id=f"badmap_{engine_name}").then(create_step("a", inc))
          .map({"x": {"step": "a", "path": "missing"}}, id="m")
          .then(create_step("never", inc)).commit())
    engine = get_engine(engine_name, world=world) if engine_name == "codegen" else get_engine(engine_name)
    result = await engine.run(wf, input_data={"v": 0})
    assert result.status == "failed"
    assert "Invalid path missing in step a" in str(result.error)
    assert {k: r.status for k, r in result.steps.items()} == {"a": "success", "m": "failed"}


def test_next_input_passes_success_on_and_stops_otherwise():
    ok = runtime.R("success", {"out": 1}, {"next": 2})
    assert FlowRun.next_input(ok) == {"next": 2}
    for status in ("bailed", "canceled", "suspended"):
        r = runtime.R(status, {"out": 1})
        with pytest.raises(runtime.Stop) as stop:
            FlowRun.next_input(r)
        assert stop.value.r is r


@pytest.mark.parametrize("engine_name", ["default", "codegen"])
async def test_a_stop_in_a_nested_workflow_ends_only_the_nested_run(engine_name, world):
    def early(ctx):
        return ctx.bail({"bailed": ctx.input_data["v"]})

    inner = (create_workflow(id=f"inner_bail_{engine_name}").then(create_step("early", early))
             .then(create_step("skipped", inc)).commit())
    wf = (create_workflow(id=f"outer_bail_{engine_name}").then(inner)
          .then(create_step("after", lambda c: {"after": c.input_data})).commit())
    engine = get_engine(engine_name, world=world) if engine_name == "codegen" else get_engine(engine_name)
    result = await engine.run(wf, input_data={"v": 7})
    assert result.status == "success", result.error
    # the nested run ended with the bail result; the outer run went on with it
    assert result.steps[f"inner_bail_{engine_name}"].output == {"bailed": 7}
    assert result.result == {"after": {"bailed": 7}}
    assert set(result.steps) == {f"inner_bail_{engine_name}", "after"}


async def test_a_run_that_ends_here_is_answered_without_reading_its_output(tmp_path):
    """The run's output (every step record) is written once and not read back by the engine
    call that drove the run; another engine call (as from another process) reads it."""
    world = durable.SqliteWorld(tmp_path / "runs.db")
    reads = []
    get_run = world.get_run

    def counted(run_id):
        rec = get_run(run_id)
        reads.append(rec.status)
        return rec

    world.get_run = counted
    try:
        steps = [create_step(f"s{i}", inc) for i in range(5)]
        wf = create_workflow(id="no-output-read")
        for s in steps:
            wf = wf.then(s)
        wf = wf.commit()
        eng = get_engine("codegen", world=world)
        result = await eng.run(wf, input_data={"v": 0})
        assert (result.status, result.result) == ("success", {"v": 5})
        assert reads == []  # status polls use peek_run (no output); the result is the FlowRun's
        # the stored output is the same result (what another process would read)
        from engines.codegen.engine import result_from_json

        stored = result_from_json(get_run(result.run_id).output)
        assert stored.to_dict() == result.to_dict()
        assert list(stored.steps) == [f"s{i}" for i in range(5)]
    finally:
        world.close()


def _count_calls(monkeypatch) -> dict[str, int]:
    """Count `flow_step_body`'s two ways of calling a step: the short one (`call_step_once`)
    and the general one (`begin_step_call`)."""
    counts = {"once": 0, "general": 0}
    real_once, real_general = runtime.call_step_once, runtime.begin_step_call

    def once(*a, **kw):
        counts["once"] += 1
        return real_once(*a, **kw)

    def general(*a, **kw):
        counts["general"] += 1
        return real_general(*a, **kw)

    monkeypatch.setattr(runtime, "call_step_once", once)
    monkeypatch.setattr(runtime, "begin_step_call", general)
    return counts


async def test_a_plain_top_level_step_takes_the_short_call(world, monkeypatch):
    counts = _count_calls(monkeypatch)
    chain = (create_workflow(id="short").then(create_step("a", inc)).then(create_step("b", inc))
             .then(create_step("c", inc)).commit())
    result = await get_engine("codegen", world=world).run(chain, input_data={"v": 0})
    assert result.result == {"v": 3}
    assert counts == {"once": 3, "general": 0}
    # a run with state (its steps receive it) takes the general call
    result = await get_engine("codegen", world=world).run(chain, input_data={"v": 0},
                                                          initial_state={"k": 1})
    assert result.result == {"v": 3}
    assert counts == {"once": 3, "general": 3}


def _sets_state(ctx):
    ctx.set_state({"s": 1})
    return {"v": 1}


def _sets_rc(ctx):
    ctx.request_context.set("k", "x")
    return {"v": 1}


def _aborts(ctx):
    ctx.abort()
    return {"v": 1}


def _bails_out(ctx):
    return ctx.bail({"early": 1})


def _suspends_here(ctx):
    return ctx.suspend({"ask": 1})


def _mutates_state_in_place(ctx):
    ctx.state["m"] = 2  # (not set_state: the step's copy changes, which the diff sees)
    return {"v": 1}


@pytest.mark.parametrize("body, journaled, status", [
    (_sets_state, {"output": {"v": 1}, "state_changes": {"s": 1}}, "success"),
    (_mutates_state_in_place, {"output": {"v": 1}, "state_changes": {"m": 2}}, "success"),
    (_sets_rc, {"output": {"v": 1}, "rc_set": {"k": "x"}}, "success"),
    (_aborts, {"output": {"v": 1}, "aborted": True}, "canceled"),
    (_bails_out, {"output": {"early": 1}, "status": "bailed"}, "success"),
    (_suspends_here, {"output": None, "status": "suspended", "suspend_payload": {"ask": 1}},
     "suspended"),
])
async def test_the_short_call_journals_what_the_step_changed(world, monkeypatch, body, journaled,
                                                             status):
    counts = _count_calls(monkeypatch)
    wf = create_workflow(id=f"short-{body.__name__}").then(create_step("only", body)).commit()
    result = await get_engine("codegen", world=world).run(wf, input_data={"v": 0})
    assert counts == {"once": 1, "general": 0}
    assert result.status == status
    assert [d["result"] for d in _events(world, result.run_id, "step_completed")] == [journaled]
    if body is _sets_state:
        assert result.state == {"s": 1}
    if body is _mutates_state_in_place:  # (as on the interpreter)
        assert result.state == {"m": 2}
        default = await get_engine("default").run(wf, input_data={"v": 0})
        assert default.state == {"m": 2}
    if body is _bails_out:
        assert result.result == {"early": 1}


async def test_the_short_call_fails_a_raising_step_with_its_own_error(world, monkeypatch):
    counts = _count_calls(monkeypatch)

    def boom(ctx):
        raise KeyError("nope")

    wf = create_workflow(id="short-fail").then(create_step("only", boom)).commit()
    result = await get_engine("codegen", world=world).run(wf, input_data={"v": 0})
    assert counts == {"once": 1, "general": 0}
    assert result.status == "failed"
    assert type(result.error) is KeyError and result.steps["only"].status == "failed"


def test_plain_json_values_are_handed_on_as_they_are():
    nested = {"a": [1, {"b": None, "c": [True, 1.5, "x"]}], "d": {"e": {"f": 2}}}
    assert runtime._jsonable(nested) is nested  # no copy: durable encodes it at once
    fan = {f"s{i}": {"value": i} for i in range(3)}
    assert runtime._jsonable(fan) is fan
    rows = [{"k": [1, 2]}, [3]]
    assert runtime._jsonable(rows) is rows
    # anything that is not plain JSON is converted (a copy), at any depth
    with_tuple = {"a": [{"t": (1, 2)}]}
    got = runtime._jsonable(with_tuple)
    assert got == {"a": [{"t": [1, 2]}]} and got is not with_tuple
    assert runtime._jsonable({"a": {1: "x"}}) == {"a": {"1": "x"}}
    assert runtime._jsonable([[("p", 1)]]) == [[["p", 1]]]
    deep: object = 0
    for _ in range(40):  # deeper than the fast path looks: converted, same value
        deep = [deep]
    got = runtime._jsonable(deep)
    assert got == deep and got is not deep


async def test_a_parallel_entry_waits_once_for_its_children(world, monkeypatch):
    import asyncio
    import sys

    waits: list[int] = []

    class CountingEvent(asyncio.Event):
        async def wait(self):
            caller = sys._getframe(1).f_code
            if caller is FlowRun.gather.__code__:
                waits.append(1)
            return await super().wait()

    monkeypatch.setattr(asyncio, "Event", CountingEvent)
    par = (create_workflow(id="fan-once")
           .parallel([create_step(f"p{i}", inc) for i in range(5)]).commit())
    result = await get_engine("codegen", world=world).run(par, input_data={"v": 0})
    assert result.result == {f"p{i}": {"v": 1} for i in range(5)}
    # the gather loop is woken when the last child is done, not at each child's step end
    assert len(waits) == 1


async def test_a_foreach_item_end_does_not_scan_every_items_status(world, monkeypatch):
    scans: list[str] = []

    class Statuses(list):
        def __contains__(self, x):
            scans.append("in")
            return super().__contains__(x)

        def __iter__(self):
            scans.append("iter")
            return super().__iter__()

    real = FlowRun.foreach_items

    def spy(self, step_id, prev):
        out = real(self, step_id, prev)
        progress = self.foreach_progress[step_id]
        progress["foreach_status"] = Statuses(progress["foreach_status"])
        return out

    monkeypatch.setattr(FlowRun, "foreach_items", spy)
    wf = create_workflow(id="each-scan").foreach(create_step("it", inc), concurrency=4).commit()
    items = [{"v": i} for i in range(40)]
    result = await get_engine("codegen", world=world).run(wf, input_data=items)
    assert result.result == [{"v": i + 1} for i in range(40)]
    assert scans == []  # no item is suspended: nobody looks at the list (was: once per item)
