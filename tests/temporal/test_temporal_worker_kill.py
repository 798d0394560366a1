"""A standalone worker process SIGKILLed mid-run is replaced by a new worker process that completes
the run; completed activities are not executed again (side-effect file, and the run's history)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.temporal.engine import TemporalEngine
from tests.engines import engine_workflows as W

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.engines.engine_workflows:five_steps"


def start_worker(address: str, task_queue: str, side: Path, log: Path, block: bool) -> subprocess.Popen:
    """`python -m engines.temporal.worker` in a new process (output in `log`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), WFB_SIDE_EFFECTS=str(side))
    env.pop("WFB_BLOCK_AT_3", None)
    if block:
        env["WFB_BLOCK_AT_3"] = "1"
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "engines.temporal.worker", "--address", address,
             "--task-queue", task_queue],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_for_line(path: Path, line: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().split():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{line!r} never appeared in {path}")


async def test_killed_worker_is_replaced_and_completed_steps_do_not_rerun(
        temporal_server, task_queue, tmp_path):
    side = tmp_path / "side-effects.txt"
    engine = TemporalEngine(temporal_address=temporal_server.address, task_queue=task_queue,
                            in_process_worker=False, heartbeat_timeout=1.0)
    first = start_worker(temporal_server.address, task_queue, side, tmp_path / "worker-a.log", block=True)
    second = None
    try:
        run = asyncio.ensure_future(engine.run(W.five_steps, input_data={"value": 0},
                                               run_id="kill-me", target_ref=TARGET))
        await wait_for_line(side, "s3")  # worker A is inside step 3 (blocked), s1 and s2 are done
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        assert not run.done()
        second = start_worker(temporal_server.address, task_queue, side, tmp_path / "worker-b.log",
                              block=False)
        result = await asyncio.wait_for(run, timeout=90)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert result.status == "success", (result.error, (tmp_path / "worker-b.log").read_text()[-3000:])
    assert result.result == {"value": 5}
    assert [result.steps[s].status for s in ("s1", "s2", "s3", "s4", "s5")] == ["success"] * 5
    # s1, s2 completed under worker A and were not executed again; s3 was cut short by the kill
    # and retried once by worker B (activities are at-least-once); s4, s5 ran once.
    assert side.read_text().split() == ["s1", "s2", "s3", "s3", "s4", "s5"]

    client = await engine.client()
    history = await client.get_workflow_handle("kill-me").fetch_history()
    names = [e.WhichOneof("attributes") for e in history.events]
    assert names.count("activity_task_scheduled_event_attributes") == 5
    assert names.count("activity_task_completed_event_attributes") == 5
    assert names.count("activity_task_timed_out_event_attributes") == 0  # the retry is in place


async def test_a_standalone_worker_stopped_by_sigterm_exits_cleanly(temporal_server, tmp_path):
    # temporalio's Tokio threads can crash CPython's finalization after a worker served a run
    # ("Fatal Python error: PyGILState_Release", exit -6/-11, about 1 stop in 5 before
    # `worker.exit_now`); a stopped worker must exit 0 every time.
    for trial in range(3):
        queue = f"stop-{trial}-{os.getpid()}-{time.monotonic_ns()}"
        log = tmp_path / f"worker-{trial}.log"
        proc = start_worker(temporal_server.address, queue, tmp_path / "side.txt", log, block=False)
        try:
            engine = TemporalEngine(temporal_address=temporal_server.address, task_queue=queue,
                                    in_process_worker=False)
            result = await asyncio.wait_for(
                engine.run(W.sequential, input_data={"value": 3},
                           target_ref="tests.engines.engine_workflows:sequential"), 60)
            assert result.status == "success" and result.result == {"value": 64}
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 0, (trial, code, log.read_text()[-2000:])
        assert "Fatal Python error" not in log.read_text()
