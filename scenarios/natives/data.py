"""Native (`durable`) definitions of the data scenarios: data flows through Python variables."""

from __future__ import annotations

from typing import Any

from scenarios.natives.common import traced_value, wf


@wf.workflow
async def data_map_fn(input_data: dict[str, Any]) -> Any:
    loaded = await traced_value(name="load-user", value={"user": dict(input_data), "id": 7})
    full = f"{loaded['user']['first']} {loaded['user']['last']}"
    greeting = await traced_value(name="greet", value=f"Hello, {full} (#{loaded['id']})")
    return {"greeting": greeting}


@wf.workflow
async def data_map_object(input_data: dict[str, Any], request_context: dict[str, Any]) -> Any:
    score = await traced_value(name="score", value={"score": 42, "detail": {"grade": "A"}})
    collected = {
        "name": input_data["user"]["name"],
        "score": score["score"],
        "grade": score["detail"]["grade"],
        "kind": "report",
        "tenant": request_context["tenant"],
    }
    return await traced_value(name="report", value=collected)


@wf.workflow
async def data_step_result_init(input_data: dict[str, Any]) -> Any:
    a = await traced_value(name="step-a", value={"a": 1})
    b = await traced_value(name="step-b", value={"b": 2})
    total = input_data["base"] + a["a"] + b["b"] + a["a"]
    return await traced_value(name="combine", value={"sum": total, "init": dict(input_data)})


@wf.workflow
async def data_state_parallel(input_data: dict[str, Any]) -> Any:
    import asyncio

    state: dict[str, Any] = {"init": True}
    ma, mb = await asyncio.gather(traced_value(name="mark-a", value={"a": 1}),
                                  traced_value(name="mark-b", value={"b": 2}))
    state.update(ma)
    state.update(mb)
    return await traced_value(name="read-state", value={"state": state})
