"""Linearity by counting: a chain of N steps costs O(N) writes, no event reads and one body
execution when nothing crashes; recovery reads the log once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable import BaseHook, Workflows

wf = Workflows()


@wf.step
async def inc(x: int) -> int:
    return x + 1


@wf.workflow
async def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = await inc(x)
    return x


@wf.workflow
async def fan(k: int) -> int:
    return sum(await asyncio.gather(*[inc(i) for i in range(k)]))


async def _cost(world: durable.World, n: int) -> dict[str, int]:
    before = dict(world.stats)
    run = await durable.start(chain, n)
    assert await run.return_value(timeout=60) == n
    return {k: world.stats[k] - before.get(k, 0) for k in
            ("writes", "events_appended", "events_read", "body_executions", "replays")}


async def test_chain_cost_is_linear(world: durable.World) -> None:
    small = await _cost(world, 10)
    big = await _cost(world, 1000)
    for cost, n in ((small, 10), (big, 1000)):
        # exactly one commit per step: run creation, run_started + the first step's creation,
        # then one commit per step (its completion + the next step's creation; the last one
        # also ends the run)
        assert cost["writes"] == n + 2, cost
        assert cost["events_appended"] == 3 * n + 3, cost  # created+started+completed per step
        assert cost["events_read"] == 0, cost
        assert cost["body_executions"] == 1, cost
        assert cost["replays"] == 0, cost
    # linear: cost(N) = a*N + b with the same a and b at both sizes (a quadratic cost would
    # make the marginal cost per step between 10 and 1000 about 100x the one at 10)
    for key, per_step in (("writes", 1), ("events_appended", 3)):
        marginal = (big[key] - small[key]) / (1000 - 10)
        assert marginal == per_step, (key, small, big)
        assert big[key] - per_step * 1000 == small[key] - per_step * 10


async def test_fan_out_batches_and_is_linear(world: durable.World) -> None:
    before = world.stats["writes"]
    run = await durable.start(fan, 100)
    assert await run.return_value(timeout=60) == sum(range(1, 101))
    writes = world.stats["writes"] - before
    # creation of all 100 steps is one commit; completions may batch
    assert writes <= 100 + 3
    assert world.stats["replays"] == 0 and world.stats["events_read"] == 0


class Go(BaseHook):
    def __init__(self, n: int = 0) -> None:
        self.n = n


@wf.workflow
async def chain_then_wait(n: int, token: str) -> int:
    x = 0
    for _ in range(n):
        x = await inc(x)
    await Go.wait(token=token)
    return x


@pytest.mark.parametrize("n", [10, 1000])
async def test_recovery_reads_log_once(world: durable.World, n: int, crash: Any) -> None:
    run = await durable.start(chain_then_wait, n, f"lin-{n}")
    while world.get_hook_by_token(f"lin-{n}") is None:
        await asyncio.sleep(0.01)
    await crash(run.run_id)
    log_len = len(world.list_events(run.run_id))
    before = dict(world.stats)
    await Go().resume(f"lin-{n}")
    await durable.Worker(world).run(until_idle=True)
    assert await run.return_value(timeout=60) == n
    read = world.stats["events_read"] - before["events_read"]
    writes = world.stats["writes"] - before["writes"]
    assert read == log_len  # the whole log once, not once per step
    assert writes <= 4  # claim + hook_received/dispose/run_completed in one commit
    assert world.stats["replays"] - before.get("replays", 0) == 1
    assert world.stats["body_executions"] - before["body_executions"] == 1
