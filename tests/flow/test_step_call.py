"""One step call made outside the interpreter (what an engine running flow steps by itself uses):
`Execution.for_step` is the same Execution as the general constructor gives for one step call,
and `begin_step_call` finishes a synchronous body without a coroutine and gives the same
outcome as `call_step` for every kind of body; `call_step_once` gives the body's output itself
for a plain success and otherwise the same outcome as `call_step`."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from flow import create_step, create_workflow
from flow.context import RequestContext
from flow.interpreter import Execution, Outcome, begin_step_call, call_step, call_step_once
from flow.results import StepResult

WF = (create_workflow(id="wf-step-call", retry_config={"attempts": 3, "delay": 2})
      .then(create_step(id="only", execute=lambda ctx: ctx.input_data)).commit())


def _general(state: dict[str, Any], records: dict[str, StepResult],
             rc: RequestContext) -> Execution:
    ex = Execution(WF, "r1", input={"in": 1}, state=state, step_results=records,
                   request_context=rc, validate_inputs=False)
    ex.retry_attempts = 0  # (what an engine sets: the caller retries)
    ex.retry_delay = 0.0
    return ex


def test_for_step_has_the_attributes_of_the_general_constructor() -> None:
    records = {"a": StepResult("success", output=1)}
    rc = RequestContext({"k": 1})
    light = Execution.for_step(WF, "r1", input={"in": 1}, state={"s": 1}, step_results=records,
                               request_context=rc)
    general = _general({"s": 1}, records, rc)
    lv, gv = vars(light), vars(general)
    assert sorted(lv) == sorted(gv)
    for name in lv:
        if name == "signal":
            assert lv[name].aborted is False and lv[name] is not gv[name]
        else:
            assert lv[name] == gv[name], name
    assert light.step_results is records and light.request_context is rc
    assert light.workflow_id == "wf-step-call"
    light.abort()
    assert light.aborted and not general.aborted
    assert Execution.for_step(WF, "r1", input=None, state={}, step_results={},
                              request_context=rc, run_counts={"x": 4}).next_run_count("x") == 5


def _sync(ctx: Any) -> Any:
    ctx.set_state({"seen": ctx.input_data})
    return {"out": ctx.input_data + 1, "retry": ctx.retry_count}


async def _async(ctx: Any) -> Any:
    await asyncio.sleep(0)
    return {"out": ctx.input_data + 2}


def _suspends(ctx: Any) -> Any:  # (returns suspend's awaitable marker: finished by awaiting)
    return ctx.suspend({"why": "ask"}, resume_label="lbl")


def _bails(ctx: Any) -> Any:
    return ctx.bail({"early": True})


def _fails(ctx: Any) -> Any:
    raise ValueError(f"bad {ctx.input_data}")


def _outcome_tuple(o: Outcome) -> tuple[Any, ...]:
    return (o.status, o.input, o.output, repr(o.error), o.suspend_payload, o.label)


@pytest.mark.parametrize("body, waits", [(_sync, False), (_async, True), (_suspends, True),
                                         (_bails, True), (_fails, False)])
async def test_begin_step_call_gives_call_steps_outcome(body: Any, waits: bool) -> None:
    step = create_step(id="st", execute=body)

    def ex() -> Execution:
        return Execution.for_step(WF, "r1", input=None, state={"a": 0}, step_results={},
                                  request_context=RequestContext(), run_counts={"st": 1})

    e1, e2 = ex(), ex()
    started = begin_step_call(e1, step, 5)
    assert inspect.iscoroutine(started) is waits
    got = await started if inspect.iscoroutine(started) else started
    assert isinstance(got, Outcome)
    want = await call_step(e2, step, 5)
    assert _outcome_tuple(got) == _outcome_tuple(want)
    assert e1.state == e2.state and e1.run_counts == e2.run_counts == {"st": 2}
    if body is _sync:
        assert got.output == {"out": 6, "retry": 2} and e1.state == {"a": 0, "seen": 5}


def _plain(ctx: Any) -> Any:
    return {"out": ctx.input_data + 1, "retry": ctx.retry_count, "it": ctx.iteration_count}


def _returns_an_outcome(ctx: Any) -> Any:
    return Outcome("failed", "not mine")


@pytest.mark.parametrize("body", [_plain, _sync, _async, _suspends, _bails, _fails,
                                  _returns_an_outcome])
async def test_call_step_once_gives_the_output_or_call_steps_outcome(body: Any) -> None:
    step = create_step(id="st", execute=body)

    def ex() -> Execution:
        return Execution.for_step(WF, "r1", input=None, state={"a": 0}, step_results={},
                                  request_context=RequestContext(), run_counts={"st": 1})

    e1, e2 = ex(), ex()
    got = await call_step_once(e1, step, 5, 2, iteration_count=3)
    want = await call_step(e2, step, 5, iteration_count=3)  # (retry_count 2: run_counts + 1)
    assert e1.state == e2.state
    if body in (_plain, _async):  # a plain success: the output itself, no Outcome
        assert got == ({"out": 6, "retry": 2, "it": 3} if body is _plain else {"out": 7})
        assert got == want.output and want.status == "success" and want.input == 5
        return
    assert isinstance(got, Outcome)
    if body is _returns_an_outcome:  # (an Outcome returned by the body is its output)
        assert (got.status, want.status) == ("success", "success")
        assert got.output.status == want.output.status == "failed"
        return
    assert _outcome_tuple(got) == _outcome_tuple(want)
