"""The twelve workflows of issue 4 "Must show", built with flow's builder (importable by name, so
a subprocess / worker can rebuild them as `engine_workflows:<attr>`)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from flow import (
    create_step,
    create_workflow,
    map_init,
    map_request_context,
    map_step,
    map_value,
)


def _v(ctx):
    return ctx.input_data["value"]


add_one = create_step("add_one", lambda ctx: {"value": _v(ctx) + 1})
double = create_step("double", lambda ctx: {"value": _v(ctx) * 2})
square = create_step("square", lambda ctx: {"value": _v(ctx) ** 2})

# 1. sequential: (3 + 1) * 2 = 8, squared = 64
sequential = create_workflow(id="sequential").then(add_one).then(double).then(square).commit()

# 2. parallel: both children on the same input, then combined
combine = create_step("combine", lambda ctx: {
    "value": ctx.input_data["add_one"]["value"] + ctx.input_data["double"]["value"]})
parallel = create_workflow(id="parallel").parallel([add_one, double]).then(combine).commit()

# 3. branch with closures: exactly one of two exclusive branches runs
big = create_step("big", lambda ctx: {"size": "big", "value": _v(ctx)})
small = create_step("small", lambda ctx: {"size": "small", "value": _v(ctx)})
THRESHOLD = 10
label = create_step("label", lambda ctx: {
    "label": next(out["size"] for out in ctx.input_data.values() if out is not None)})
branch = (create_workflow(id="branch")
          .branch([(lambda ctx: _v(ctx) > THRESHOLD, big),
                   (lambda ctx: _v(ctx) <= THRESHOLD, small)])
          .then(label)
          .commit())

# 4. dountil: add one until >= 5
dountil = create_workflow(id="dountil").dountil(add_one, lambda ctx: _v(ctx) >= 5).commit()

# 5. dowhile: double while < 20
dowhile = create_workflow(id="dowhile").dowhile(double, lambda ctx: _v(ctx) < 20).commit()

# 6. foreach with concurrency 3 (counts the largest number of items running at once)
ACTIVE = {"now": 0, "max": 0}


async def _slow_square(ctx):
    ACTIVE["now"] += 1
    ACTIVE["max"] = max(ACTIVE["max"], ACTIVE["now"])
    await asyncio.sleep(0.01)
    ACTIVE["now"] -= 1
    return ctx.input_data * ctx.input_data


item_square = create_step("item_square", _slow_square)
foreach = create_workflow(id="foreach").foreach(item_square, concurrency=3).commit()

# 7. static sleep (input passes through)
static_sleep = create_workflow(id="static_sleep").then(add_one).sleep(0.05).then(double).commit()

# 8. dynamic sleep: the duration comes from the data
dynamic_sleep = (create_workflow(id="dynamic_sleep").then(add_one)
                 .sleep(lambda ctx: _v(ctx) / 100).then(double).commit())

# 9. function map
function_map = (create_workflow(id="function_map").then(add_one)
                .map(lambda ctx: {"value": _v(ctx) * 10, "note": "mapped"})
                .then(double).commit())

# 10. mapping object (step output, constant, workflow input, request context)
mapping_object = (create_workflow(id="mapping_object").then(add_one)
                  .map({"from_step": map_step(add_one, "value"), "const": map_value({"k": [1, 2]}),
                        "from_input": map_init("value"), "tenant": map_request_context("tenant")})
                  .commit())

# 11. nested workflow
inner = create_workflow(id="inner").then(add_one).then(double).commit()
nested = create_workflow(id="nested").then(add_one).then(inner).then(square).commit()


# 12. suspend / resume
async def _approve(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"ask": f"approve {_v(ctx)}?"})
        return None
    return {"value": _v(ctx), "approved": ctx.resume_data["ok"]}


approve = create_step("approve", _approve)
suspend_resume = create_workflow(id="suspend_resume").then(add_one).then(approve).then(
    create_step("after", lambda ctx: {"done": ctx.input_data["approved"], "value": _v(ctx)})).commit()


# --- the SIGKILL workflow: five steps, a side-effect file, step 3 blocks until killed --------
def _mark(name):
    def body(ctx):
        path = Path(os.environ["WFB_SIDE_EFFECTS"])
        with path.open("a") as f:
            f.write(name + "\n")
        return {"value": _v(ctx) + 1}
    return body


async def _step3(ctx):
    path = Path(os.environ["WFB_SIDE_EFFECTS"])
    with path.open("a") as f:
        f.write("s3\n")
    if os.environ.get("WFB_BLOCK_AT_3") == "1":
        await asyncio.sleep(3600)  # the test kills the process here
    return {"value": _v(ctx) + 1}


five_steps = (create_workflow(id="five_steps")
              .then(create_step("s1", _mark("s1")))
              .then(create_step("s2", _mark("s2")))
              .then(create_step("s3", _step3))
              .then(create_step("s4", _mark("s4")))
              .then(create_step("s5", _mark("s5")))
              .commit())


# --- a native (hand-written durable) counterpart of `sequential`, and a scenario-like target ---
import durable  # noqa: E402

native_wf = durable.Workflows(namespace="engine_workflows")


@native_wf.step
async def n_add_one(data: dict) -> dict:
    return {"value": data["value"] + 1}


@native_wf.step
async def n_double(data: dict) -> dict:
    return {"value": data["value"] * 2}


@native_wf.workflow
async def native_sequential(data: dict) -> dict:
    data = await n_add_one(data)
    return await n_double(data)


class Scenario:
    """A target carrying both definitions, as a scenario does."""

    def __init__(self, workflow, native):
        self.workflow = workflow
        self.native = native


both = Scenario(sequential, native_sequential)


# --- the golden-file workflow: a branch, a loop, a foreach and a nested workflow -------------
validate_order = create_step("validate_order", lambda ctx: {**ctx.input_data, "valid": True})
express = create_step("express", lambda ctx: {"lines": ctx.input_data["lines"], "speed": "express"})
standard = create_step("standard", lambda ctx: {"lines": ctx.input_data["lines"], "speed": "standard"})
price_line = create_step("price_line", lambda ctx: {"sku": ctx.input_data, "price": len(ctx.input_data)})
pack = create_step("pack", lambda ctx: {"packed": ctx.input_data["packed"] + 1,
                                        "boxes": ctx.input_data["boxes"]})
packing = (create_workflow(id="packing")
           .map({"packed": map_value(0), "boxes": map_init("boxes")})
           .dountil(pack, lambda ctx: ctx.input_data["packed"] >= ctx.input_data["boxes"])
           .commit())
orders = (create_workflow(id="orders")
          .then(validate_order)
          .branch([(lambda ctx: ctx.input_data.get("express", False), express),
                   (lambda ctx: not ctx.input_data.get("express", False), standard)])
          .map(lambda ctx: next(v for v in ctx.input_data.values() if v)["lines"])
          .foreach(price_line, concurrency=3)
          .map({"boxes": map_value(2)})
          .then(packing)
          .commit())


@dataclasses.dataclass
class Approval(durable.BaseHook):
    ok: bool = False


@native_wf.workflow
async def native_approval(data: dict) -> dict:
    data = await n_add_one(data)
    answer = await Approval.wait(token=f"approve:{data['value']}")
    return {"value": data["value"], "approved": answer.ok}
