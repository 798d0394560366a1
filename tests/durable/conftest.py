"""Fixtures for durable tests: a fresh world per test (memory and sqlite), set as default."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

import durable
from durable._internal.driver import LOCAL_DRIVERS


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path) -> Iterator[durable.World]:
    w: durable.World
    if request.param == "memory":
        w = durable.MemoryWorld()
    else:
        w = durable.SqliteWorld(tmp_path / "runs.db")
    durable.set_world(w)
    yield w
    durable.set_world(None)
    w.close()


@pytest.fixture
def mem() -> Iterator[durable.MemoryWorld]:
    w = durable.MemoryWorld()
    durable.set_world(w)
    yield w
    durable.set_world(None)




async def _crash(run_id: str) -> None:
    """Simulate the death of the process driving `run_id` (in-process): stop its driver."""
    drv = LOCAL_DRIVERS[run_id]
    assert drv.task is not None
    drv.task.cancel()
    await asyncio.gather(drv.task, return_exceptions=True)


async def _wait_status(world: durable.World, run_id: str, status: str, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while world.get_run(run_id).status != status:
        assert loop.time() < end, f"run stayed {world.get_run(run_id).status}"
        await asyncio.sleep(0.01)


@pytest.fixture
def crash() -> Callable[[str], Awaitable[None]]:
    """``await crash(run_id)``: simulate the death of the process driving a run."""
    return _crash


@pytest.fixture
def wait_status() -> Callable[..., Awaitable[None]]:
    """``await wait_status(world, run_id, status)``: poll until the run has `status`."""
    return _wait_status
