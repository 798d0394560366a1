"""Native (`durable`) definitions of the scale scenarios."""

from __future__ import annotations

import asyncio
from typing import Any

from scenarios.natives.common import traced_value, wf


@wf.workflow
async def scale_chain_1000(input_data: dict[str, Any]) -> Any:
    v = input_data["value"]
    for i in range(1, 1001):
        v = await traced_value(name=f"inc-{i}", value=v + 1)
    return {"value": v}


@wf.workflow
async def scale_fanout_500(input_data: dict[str, Any]) -> Any:
    outs = await asyncio.gather(*(traced_value(name=f"fan-{i}", value=i) for i in range(1, 501)))
    await traced_value(name="gather", value=None)
    return {"total": sum(outs), "count": len(outs)}
