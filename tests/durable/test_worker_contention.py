"""A worker that loses a claim race to another worker is not idle: the run is still there."""

from __future__ import annotations

import asyncio

import durable
from durable import MemoryWorld, Worker, Workflows

wf = Workflows(namespace="contention")


@wf.step
async def double(x: int) -> int:
    return x * 2


@wf.workflow
async def job(x: int) -> int:
    return await double(x)


class LosesFirstClaims(MemoryWorld):
    """A world where the first `n` claims fail, as when another worker claimed the run between
    this worker's `due_runs` read and its `claim`."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.lost = n
        self.claims = 0

    def claim(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.claims += 1
        if self.lost > 0:
            self.lost -= 1
            return None
        return super().claim(*args, **kwargs)


def test_until_idle_worker_keeps_polling_after_a_lost_claim() -> None:
    world = LosesFirstClaims(n=2)
    run = durable.start_run(job, args=(21,), run_id="c-1", world=world)  # no loop: stays pending
    assert world.get_run(run.run_id).status == "pending"
    asyncio.run(Worker(world, poll_interval=0.001).run(until_idle=True))
    rec = world.get_run("c-1")
    assert rec.status == "completed" and rec.output == 42
    assert world.claims == 3  # two lost races, then the claim that drove the run
