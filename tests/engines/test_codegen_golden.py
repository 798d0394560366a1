"""Golden file: the generated source of a workflow with a branch, a loop, a foreach and a nested
workflow (tests/engines/golden/codegen_orders.py, reviewed by a person). Regenerate it with
WFBENCH_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import engine_workflows as W

import durable
from engines import get_engine

GOLDEN = Path(__file__).parent / "golden" / "codegen_orders.py"


def test_generated_source_matches_golden_file():
    source = get_engine("codegen").source(W.orders)
    if os.environ.get("WFBENCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(source)
    assert source == GOLDEN.read_text()


async def test_golden_workflow_runs_equal_on_default_and_codegen():
    inp = {"lines": ["a", "bb", "ccc"], "express": True}
    world = durable.MemoryWorld()
    expected_steps = {
        "validate_order": ("success", inp, {**inp, "valid": True}),
        "express": ("success", {**inp, "valid": True}, {"lines": ["a", "bb", "ccc"], "speed": "express"}),
        "mapping_1": ("success", {"express": {"lines": ["a", "bb", "ccc"], "speed": "express"}},
                      ["a", "bb", "ccc"]),
        "price_line": ("success", ["a", "bb", "ccc"],
                       [{"sku": "a", "price": 1}, {"sku": "bb", "price": 2}, {"sku": "ccc", "price": 3}]),
        "mapping_2": ("success", [{"sku": "a", "price": 1}, {"sku": "bb", "price": 2},
                                  {"sku": "ccc", "price": 3}], {"boxes": 2}),
        "packing": ("success", {"boxes": 2}, {"packed": 2, "boxes": 2}),
    }
    for name in ("default", "codegen"):
        eng = get_engine(name, world=world) if name == "codegen" else get_engine(name)
        result = await eng.run(W.orders, input_data=inp)
        assert result.status == "success", (name, result.error)
        assert result.result == {"packed": 2, "boxes": 2}
        got = {k: (r.status, r.payload, r.output) for k, r in result.steps.items()}
        assert got == expected_steps, name
