"""SIGKILL: a codegen run killed during step 3 is completed by a Worker in a new process without
running steps 1-2 again; the default engine, asked to recover such a run, says it cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import engine_workflows as W
import pytest

import durable
from engines import get_engine
from engines.codegen.engine import result_from_json
from flow import NotRecoverableError

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _env(side: Path, block: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env["WFB_SIDE_EFFECTS"] = str(side)
    env["WFB_BLOCK_AT_3"] = "1" if block else "0"
    return env


def _start_and_kill_at_step3(tmp_path: Path, mode: str, db: Path, run_id: str, side: Path) -> None:
    child = subprocess.Popen([sys.executable, str(HERE / "crash_runner.py"), mode, str(db), run_id],
                             env=_env(side, block=True), cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while "s3" not in (side.read_text().split() if side.exists() else []):
            if child.poll() is not None:
                raise AssertionError(f"child exited early: {child.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError("child never reached step 3")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL


def test_codegen_run_killed_after_step2_is_completed_by_a_worker(tmp_path: Path):
    db, side, run_id = tmp_path / "runs.db", tmp_path / "side_effects.txt", "wrun_sigkill_1"
    _start_and_kill_at_step3(tmp_path, "codegen", db, run_id, side)
    assert side.read_text().split() == ["s1", "s2", "s3"]
    assert durable.SqliteWorld(str(db)).get_run(run_id).status == "running"

    worker = subprocess.run([sys.executable, str(HERE / "crash_runner.py"), "worker", str(db)],
                            env=_env(side, block=False), cwd=tmp_path, capture_output=True,
                            timeout=120)
    assert worker.returncode == 0, worker.stderr.decode()
    # steps 1-2 were journaled and not executed again; step 3 was in flight (at-least-once)
    assert side.read_text().split() == ["s1", "s2", "s3", "s3", "s4", "s5"]
    rec = durable.SqliteWorld(str(db)).get_run(run_id)
    assert rec.status == "completed"
    assert rec.attributes["engine"] == "codegen"
    assert rec.attributes["target"] == "engine_workflows:five_steps"
    result = result_from_json(rec.output)
    assert result.status == "success"
    assert result.result == {"value": 5}
    assert {k: (r.status, r.payload, r.output) for k, r in result.steps.items()} == {
        f"s{i}": ("success", {"value": i - 1}, {"value": i}) for i in range(1, 6)}


def test_default_engine_says_it_cannot_recover(tmp_path: Path):
    db, side, run_id = tmp_path / "snapshots.db", tmp_path / "side_effects.txt", "run_sigkill_2"
    _start_and_kill_at_step3(tmp_path, "default", db, run_id, side)
    engine = get_engine("default", db=db)
    with pytest.raises(NotRecoverableError, match="cannot recover it"):
        import asyncio

        asyncio.run(engine.recover(W.five_steps, run_id))
    assert side.read_text().split() == ["s1", "s2", "s3"]


def test_codegen_recover_in_this_process(tmp_path: Path):
    import asyncio

    db, side, run_id = tmp_path / "runs.db", tmp_path / "side_effects.txt", "wrun_sigkill_3"
    _start_and_kill_at_step3(tmp_path, "codegen", db, run_id, side)
    os.environ["WFB_SIDE_EFFECTS"] = str(side)
    os.environ["WFB_BLOCK_AT_3"] = "0"
    try:
        engine = get_engine("codegen", world=durable.SqliteWorld(str(db)))
        result = asyncio.run(engine.recover(W.five_steps, run_id))
    finally:
        os.environ.pop("WFB_SIDE_EFFECTS")
        os.environ.pop("WFB_BLOCK_AT_3")
    assert result.status == "success"
    assert result.result == {"value": 5}
    assert side.read_text().split() == ["s1", "s2", "s3", "s3", "s4", "s5"]
    assert [k for k in result.steps] == ["s1", "s2", "s3", "s4", "s5"]


def test_codegen_resume_in_another_process(tmp_path: Path):
    import asyncio

    db, run_id = tmp_path / "runs.db", "wrun_suspend_1"
    out = subprocess.run([sys.executable, str(HERE / "crash_runner.py"), "suspend", str(db), run_id],
                         env=_env(tmp_path / "unused.txt", block=False), cwd=tmp_path,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split("\n")[0] == "suspended [['approve']]"
    engine = get_engine("codegen", world=durable.SqliteWorld(str(db)))
    result = asyncio.run(engine.resume(W.suspend_resume, run_id, step="approve",
                                       resume_data={"ok": True}))
    assert result.status == "success", result.error
    assert result.result == {"done": True, "value": 4}
    assert {k: (r.status, r.payload, r.output) for k, r in result.steps.items()} == {
        "add_one": ("success", {"value": 3}, {"value": 4}),
        "approve": ("success", {"value": 4}, {"value": 4, "approved": True}),
        "after": ("success", {"value": 4, "approved": True}, {"done": True, "value": 4})}
    assert result.steps["approve"].suspend_payload == {"ask": "approve 4?"}
