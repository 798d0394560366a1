"""Parallel/branch children start inline: a child that never waits needs no asyncio Task.

Counts Tasks (with a counting task factory) and orders; never times. Semantics kept from the
Task-per-child version: children start in declaration order, a waiting child runs concurrently
with its siblings in a Task of its own (its `current_task()` is not the caller's), each child
runs in its own copy of the context, every child runs to its end, state is merged, a raising
condition counts as false, cancel reaches a waiting child.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import pytest

from flow import create_step, create_workflow
from flow.interpreter import Later, gather_started
from flow.results import StepResult


@contextmanager
def counting_tasks() -> Iterator[list[Any]]:
    """Every Task created on the running loop while inside, in creation order."""
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    old = loop.get_task_factory()

    def factory(lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=lp, **kw)
        created.append(task)
        return task

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield created
    finally:
        loop.set_task_factory(old)


def _sync_step(sid: str, trace: list[str] | None = None) -> Any:
    def body(ctx: Any) -> dict[str, Any]:
        if trace is not None:
            trace.append(sid)
        return {"id": sid, "v": ctx.input_data["v"] + 1}

    return create_step(id=sid, execute=body)


async def test_synchronous_fanout_creates_no_task() -> None:
    steps = [_sync_step(f"s{i}") for i in range(50)]
    wf = create_workflow(id="fan").parallel(steps).commit()
    with counting_tasks() as created:
        r = await wf.create_run().start(input_data={"v": 1})
    assert r.status == "success"
    assert r.result == {f"s{i}": {"id": f"s{i}", "v": 2} for i in range(50)}
    assert created == []  # was 50 (one per child) before


async def test_only_waiting_children_get_a_task_and_start_order_is_kept() -> None:
    trace: list[str] = []
    in_flight = 0
    max_in_flight = 0
    tasks_seen: list[Any] = []

    def waiting(sid: str) -> Any:
        async def body(ctx: Any) -> dict[str, Any]:
            nonlocal in_flight, max_in_flight
            trace.append(f"{sid}:start")
            tasks_seen.append(asyncio.current_task())
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            in_flight -= 1
            trace.append(f"{sid}:end")
            return {"id": sid}

        return create_step(id=sid, execute=body)

    steps = [_sync_step("a", trace), waiting("b"), _sync_step("c", trace), waiting("d")]
    wf = create_workflow(id="mixed").parallel(steps).commit()
    caller = asyncio.current_task()
    with counting_tasks() as created:
        r = await wf.create_run().start(input_data={"v": 0})
    assert r.status == "success"
    assert r.result == {"a": {"id": "a", "v": 1}, "b": {"id": "b"}, "c": {"id": "c", "v": 1},
                        "d": {"id": "d"}}
    assert list(r.result) == ["a", "b", "c", "d"]  # declaration order
    assert len(created) == 2  # b and d only
    # sync children run inline at once; the async bodies start in declaration order and overlap
    assert trace == ["a", "c", "b:start", "d:start", "b:end", "d:end"]
    assert max_in_flight == 2
    assert caller not in tasks_seen and len(set(map(id, tasks_seen))) == 2
    assert set(tasks_seen) == set(created)


async def test_each_child_runs_in_its_own_context_copy() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: dict[str, str] = {}

    def setter(sid: str) -> Any:
        def body(ctx: Any) -> dict[str, Any]:
            seen[sid] = var.get()
            var.set(sid)
            return {}

        return create_step(id=sid, execute=body)

    wf = create_workflow(id="ctxvars").parallel([setter("x"), setter("y")]).commit()
    r = await wf.create_run().start(input_data={})
    assert r.status == "success"
    assert seen == {"x": "unset", "y": "unset"}  # y does not see what x set
    assert var.get() == "unset"  # nor does the caller


async def test_parallel_children_state_merged_and_failure_reported() -> None:
    def a(ctx: Any) -> dict[str, Any]:
        ctx.set_state({"a": 1})
        return {}

    def boom(ctx: Any) -> dict[str, Any]:
        raise RuntimeError("child b broke")

    async def c(ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        ctx.set_state({"c": 3})
        return {"c": True}

    wf = (create_workflow(id="st").parallel([create_step(id="a", execute=a),
                                             create_step(id="b", execute=boom),
                                             create_step(id="c", execute=c)]).commit())
    r = await wf.create_run().start(input_data={}, initial_state={"z": 0})
    assert r.status == "failed"
    assert str(r.error) == "child b broke"
    assert r.steps["a"].status == "success"
    assert r.steps["b"].status == "failed"
    assert r.steps["c"].status == "success"  # every child runs to its end
    assert r.state == {"z": 0, "a": 1, "c": 3}


async def test_retry_in_a_parallel_child_moves_it_to_a_task() -> None:
    calls = {"n": 0}

    def flaky(ctx: Any) -> dict[str, Any]:
        calls["n"] += 1
        if ctx.retry_count == 0:
            raise ValueError("first try fails")
        return {"retry_count": ctx.retry_count}

    wf = (create_workflow(id="retry")
          .parallel([create_step(id="f", execute=flaky, retries=1), _sync_step("s")]).commit())
    with counting_tasks() as created:
        r = await wf.create_run().start(input_data={"v": 0})
    assert r.status == "success"
    assert r.result == {"f": {"retry_count": 1}, "s": {"id": "s", "v": 1}}
    assert calls["n"] == 2
    assert len(created) == 1


async def test_branch_conditions_sync_inline_async_in_task_raising_is_false() -> None:
    def raises(ctx: Any) -> bool:
        raise RuntimeError("bad condition")

    async def async_true(ctx: Any) -> bool:
        await asyncio.sleep(0)
        return True

    async def async_raises(ctx: Any) -> bool:
        await asyncio.sleep(0)
        raise RuntimeError("bad async condition")

    wf = (create_workflow(id="br")
          .branch([(raises, _sync_step("a")), (lambda ctx: True, _sync_step("b")),
                   (async_true, _sync_step("c")), (async_raises, _sync_step("d")),
                   (lambda ctx: False, _sync_step("e"))])
          .commit())
    with counting_tasks() as created:
        r = await wf.create_run().start(input_data={"v": 0})
    assert r.status == "success"
    assert r.result == {"b": {"id": "b", "v": 1}, "c": {"id": "c", "v": 1}}
    assert len(created) == 2  # the two async conditions; the chosen children are synchronous
    assert set(r.steps) == {"b", "c"}


async def test_cancel_reaches_a_waiting_child() -> None:
    started = asyncio.Event()
    got: list[str] = []

    async def slow(ctx: Any) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            got.append("cancelled")
            raise
        return {}

    wf = create_workflow(id="cx").parallel([_sync_step("a"), create_step(id="slow",
                                                                         execute=slow)]).commit()
    task = asyncio.ensure_future(wf.create_run().start(input_data={"v": 0}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == ["cancelled"]


async def test_run_cancel_during_waiting_children_gives_canceled() -> None:
    release = asyncio.Event()

    async def waits(ctx: Any) -> dict[str, Any]:
        await release.wait()
        return {}

    wf = (create_workflow(id="rc").parallel([create_step(id="w", execute=waits), _sync_step("s")])
          .then(_sync_step("after")).commit())
    run = wf.create_run()
    task = asyncio.ensure_future(run.start(input_data={"v": 0}))
    await asyncio.sleep(0)
    await run.cancel()
    release.set()
    r = await task
    assert r.status == "canceled"
    assert "after" not in r.steps


async def test_gather_started_runs_every_branch_then_raises_the_first_error() -> None:
    order: list[str] = []

    async def later(name: str) -> str:
        await asyncio.sleep(0)
        order.append(name)
        return name

    def start(kind: str, name: str) -> Any:
        order.append(f"start {name}")
        if kind == "raise":
            raise KeyError(name)
        if kind == "later":
            return Later(later(name))
        return name

    with pytest.raises(KeyError) as info:
        await gather_started(start, [("later", "w"), ("raise", "e1"), ("now", "n"),
                                     ("raise", "e2")])
    assert info.value.args == ("e1",)
    assert order == ["start w", "start e1", "start n", "start e2", "w"]
    assert await gather_started(start, [("later", "p"), ("now", "q")]) == ["p", "q"]


def test_step_result_field_order_the_interpreter_builds_positionally() -> None:
    # flow.interpreter builds a success record positionally in this order
    assert [f.name for f in fields(StepResult)] == [
        "status", "output", "payload", "error", "started_at", "ended_at", "suspend_payload",
        "resume_payload", "suspended_at", "resumed_at", "metadata"]
