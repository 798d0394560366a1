"""A suspend payload is validated against the step's `suspend_schema` (reference 3.14, Δ1.x).

Mastra 1.x: `suspend(payload)` validates the payload when the step has a suspend schema and
`validateInputs` is on; a bad payload throws `Step suspend data validation failed: \\n- path: msg`
from inside the step body (so the step fails, retried like any error); a good one is stored with
defaults applied; an absent payload is not validated.
"""

from __future__ import annotations

from typing import Any

import pydantic

from flow import create_step, create_workflow
from flow.errors import ValidationError


class Ask(pydantic.BaseModel):
    reason: str
    attempts: int = 1


def _suspending(payload: Any, calls: list[int] | None = None, retries: int | None = None) -> Any:
    def body(ctx: Any) -> Any:
        if calls is not None:
            calls.append(ctx.retry_count)
        if ctx.resume_data is None:
            return ctx.suspend(payload)
        return {"ok": ctx.resume_data}

    return create_step(id="ask", execute=body, suspend_schema=Ask, retries=retries)


async def test_bad_suspend_payload_fails_the_step() -> None:
    wf = create_workflow(id="ss-bad").then(_suspending({"attempts": 2})).commit()
    r = await wf.create_run().start(input_data={})
    assert r.status == "failed"
    assert r.steps["ask"].status == "failed"
    assert isinstance(r.error, ValidationError)
    assert str(r.error) == "Step suspend data validation failed: \n- reason: Field required"
    assert r.suspended == []


async def test_good_suspend_payload_is_stored_with_defaults_and_resumes() -> None:
    wf = create_workflow(id="ss-good").then(_suspending({"reason": "approve"})).commit()
    run = wf.create_run()
    r = await run.start(input_data={})
    assert r.status == "suspended"
    assert r.steps["ask"].suspend_payload == {"reason": "approve", "attempts": 1}
    assert r.suspended == [["ask"]]
    r2 = await run.resume(step="ask", resume_data={"yes": True})
    assert r2.status == "success"
    assert r2.result == {"ok": {"yes": True}}


async def test_no_validation_when_validate_inputs_is_off() -> None:
    wf = (create_workflow(id="ss-off", validate_inputs=False)
          .then(_suspending({"attempts": "x"})).commit())
    r = await wf.create_run().start(input_data={})
    assert r.status == "suspended"
    assert r.steps["ask"].suspend_payload == {"attempts": "x"}


async def test_suspend_without_payload_is_not_validated() -> None:
    wf = create_workflow(id="ss-none").then(_suspending(None)).commit()
    r = await wf.create_run().start(input_data={})
    assert r.status == "suspended"
    assert r.steps["ask"].suspend_payload is None


async def test_bad_suspend_payload_is_retried_like_any_step_error() -> None:
    calls: list[int] = []
    wf = create_workflow(id="ss-retry").then(_suspending({}, calls, retries=2)).commit()
    r = await wf.create_run().start(input_data={})
    assert r.status == "failed"
    assert calls == [0, 1, 2]  # 1 + 2 retries
    assert str(r.error) == "Step suspend data validation failed: \n- reason: Field required"


async def test_suspend_schema_checked_in_foreach_and_parallel() -> None:
    wf_fe = create_workflow(id="ss-fe").foreach(_suspending({"reason": 1})).commit()
    r = await wf_fe.create_run().start(input_data=[1, 2])
    assert r.status == "failed"
    assert str(r.error) == ("Step suspend data validation failed: \n- reason: Input should be a "
                            "valid string")
    wf_par = (create_workflow(id="ss-par")
              .parallel([_suspending({"reason": "r"}),
                         create_step(id="other", execute=lambda ctx: {"x": 1})]).commit())
    r2 = await wf_par.create_run().start(input_data={})
    assert r2.status == "suspended"
    assert r2.steps["ask"].suspend_payload == {"reason": "r", "attempts": 1}
