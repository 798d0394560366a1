"""The determinism sandbox: refused calls and replay-stable time/randomness."""

from __future__ import annotations

import asyncio
import datetime
import os
import random
import socket
import subprocess
import threading
import time
import uuid
from datetime import datetime as dt_class
from typing import Any

import pytest

import durable
from durable import BaseHook, Workflows

wf = Workflows()


def _open() -> None:
    open(os.devnull)


def _socket() -> None:
    socket.socket()


def _subprocess() -> None:
    subprocess.run(["true"])


def _thread() -> None:
    threading.Thread(target=lambda: None).start()


def _sleep() -> None:
    time.sleep(0.01)


async def _asyncio_sleep() -> None:
    await asyncio.sleep(0.01)


REFUSED = {
    "open": (_open, "open\\(\\) is not allowed inside a workflow body \\(rule: no I/O"),
    "socket": (_socket, "socket is not allowed .*no network I/O"),
    "subprocess": (_subprocess, "subprocess is not allowed .*no subprocesses"),
    "thread": (_thread, "Thread.start\\(\\) is not allowed .*no threads"),
    "time.sleep": (_sleep, "time.sleep\\(\\) is not allowed .*durable.sleep"),
}


@wf.workflow
async def do_refused(kind: str) -> str:
    if kind == "asyncio.sleep":
        await _asyncio_sleep()
    else:
        REFUSED[kind][0]()
    return "not refused"


@pytest.mark.parametrize("kind", sorted(REFUSED))
async def test_refused_calls(mem: durable.MemoryWorld, kind: str) -> None:
    run = await durable.start(do_refused, kind)
    with pytest.raises(durable.WorkflowRunFailedError) as ei:
        await run.return_value(timeout=10)
    assert isinstance(ei.value.cause, durable.WorkflowSandboxError)
    msg = str(ei.value.cause)
    assert "put it in a step" in msg
    import re

    assert re.search(REFUSED[kind][1], msg), msg


async def test_asyncio_timer_refused(mem: durable.MemoryWorld) -> None:
    run = await durable.start(do_refused, "asyncio.sleep")
    with pytest.raises(durable.WorkflowRunFailedError, match="durable.sleep"):
        await run.return_value(timeout=10)


@wf.step
async def real_world() -> list:
    # steps see the real world
    with open(os.devnull) as fh:
        fh.read()
    return [time.time() > 1e9, isinstance(uuid.uuid4(), uuid.UUID)]


class Go(BaseHook):
    def __init__(self, n: int = 0) -> None:
        self.n = n


@wf.workflow
async def values(token: str) -> dict:
    first = {
        "time": time.time(), "mono": time.monotonic(), "now": datetime.datetime.now().isoformat(),
        "dt_now": dt_class.now().isoformat(), "utc": durable.now().isoformat(),
        "random": random.random(), "randint": random.randint(0, 10**9), "helper": durable.random(),
        "uuid": str(uuid.uuid4()), "uuid_helper": str(durable.uuid4()),
        "choice": random.choice("abcdefghij"),
    }
    step_out = await real_world()
    await Go.wait(token=token)
    return {"first": first, "step": step_out, "after": time.time()}


async def test_deterministic_values_identical_after_recovery(mem: durable.MemoryWorld, crash: Any) -> None:
    run = await durable.start(values, "tok-det")
    while mem.get_hook_by_token("tok-det") is None:
        await asyncio.sleep(0.01)
    body = durable._internal.driver.LOCAL_DRIVERS[run.run_id]
    created = mem.get_run(run.run_id).created_at
    assert body.clock > created  # moved to the step result's time
    await crash(run.run_id)
    await Go(1).resume("tok-det")
    worker = durable.Worker(mem)
    await worker.run(until_idle=True)
    out = await run.return_value(timeout=10)
    assert mem.stats["replays"] == 1 and mem.stats["body_executions"] == 2
    first = out["first"]
    # values seen before the crash equal those re-derived on replay: the replayed body reached
    # the same hook with the same token and completed; and the logical clock is the creation time
    assert first["time"] == created and first["mono"] == created
    assert first["now"] == dt_class.fromtimestamp(created).isoformat()
    assert first["utc"] == dt_class.fromtimestamp(created, datetime.UTC).isoformat()
    assert out["step"] == [True, True]
    received = [e for e in mem.list_events(run.run_id) if e.type == "hook_received"][0]
    assert out["after"] == received.created_at
    # the random values are a function of the run id only
    rng = random.Random(f"{run.run_id}:random")
    assert first["random"] == rng.random()
    assert first["randint"] == rng.randint(0, 10**9)
    assert first["helper"] == rng.random()


SEEN: list[dict] = []


@wf.workflow
async def values_seen(token: str) -> str:
    vals = {
        "time": time.time(), "now": dt_class.now().isoformat(), "random": random.random(),
        "randint": random.randint(0, 10**9), "uuid": str(uuid.uuid4()),
        "helper": durable.random(), "uuid_helper": str(durable.uuid4()),
    }
    await real_world()
    vals["after_step"] = time.time()
    SEEN.append(vals)
    await Go.wait(token=token)
    return "ok"


async def test_same_values_live_and_replayed(mem: durable.MemoryWorld, crash: Any) -> None:
    """The body runs live, then is replayed twice by workers: every execution sees the same
    time, random and uuid values."""
    SEEN.clear()
    run = durable.start_run(values_seen, args=("tok-live",), run_id="det-run")
    while mem.get_hook_by_token("tok-live") is None:
        await asyncio.sleep(0.01)
    await crash("det-run")
    await durable.Worker(mem).run(until_idle=True)  # replays, parks again on the hook
    await Go(2).resume("tok-live")
    await durable.Worker(mem).run(until_idle=True)  # replays, delivers, completes
    assert await run.return_value(timeout=10) == "ok"
    assert mem.stats["replays"] == 2 and len(SEEN) == 3
    assert SEEN[0] == SEEN[1] == SEEN[2]
    rng = random.Random("det-run:random")
    assert SEEN[0]["random"] == rng.random()
    step_done = [e for e in mem.list_events("det-run") if e.type == "step_completed"][0]
    assert SEEN[0]["after_step"] == step_done.created_at


def test_outside_workflows_real_functions() -> None:
    durable._internal.sandbox.install()
    assert abs(time.time() - dt_class.now().timestamp()) < 5
    assert random.random() != random.random()
    assert uuid.uuid4() != uuid.uuid4()
    with open(os.devnull) as fh:
        assert fh.read() == ""
