"""The durability/determinism scenarios driven by their DurabilitySpec with the native
definitions on a SqliteWorld: start in a subprocess, SIGKILL it at the kill point read from the
shared trace file, optionally resume from a second process, recover with a Worker in a third,
then check the scenario's expectations against the run and the whole trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scenarios import all_scenarios
from scenarios.check import check
from scenarios.drive import NativeResult
from scenarios.trace import ENV_VAR, load

CHILD = str(Path(__file__).with_name("crash_child.py"))
ROOT = str(Path(__file__).resolve().parents[2])
ROWS = [s for s in all_scenarios() if s.durability is not None and s.native_ref is not None]


def _env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "WFBENCH_DB": str(tmp_path / "runs.db"), ENV_VAR: str(tmp_path / "trace.jsonl"),
           "PYTHONPATH": ROOT}
    env.pop("WFBENCH_SCENARIO_VARIANT", None)
    env.update(extra or {})
    return env


def drive_durability(s, tmp_path: Path) -> tuple[NativeResult, object]:
    spec = s.durability
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out.json"
    trace_file = tmp_path / "trace.jsonl"
    a = subprocess.Popen([sys.executable, CHILD, "start", s.id, run_id, str(out)], env=_env(tmp_path))
    try:
        deadline = time.monotonic() + 30
        while not spec.kill.reached(load(trace_file)):
            assert a.poll() is None, f"{s.id}: the run's process ended before the kill point"
            assert time.monotonic() < deadline, f"{s.id}: kill point {spec.kill} never reached"
            time.sleep(0.005)
        time.sleep(spec.kill.delay)
        os.kill(a.pid, signal.SIGKILL)
    finally:
        a.wait()
    assert a.returncode == -signal.SIGKILL
    if spec.resume is not None:
        subprocess.run([sys.executable, CHILD, "resume", s.id, run_id, str(out), json.dumps(spec.resume[1])],
                       env=_env(tmp_path), check=True, timeout=60)
    subprocess.run([sys.executable, CHILD, "recover", s.id, run_id, str(out)],
                   env=_env(tmp_path, dict(spec.recover_env)), check=True, timeout=120)
    d = json.loads(out.read_text())
    return NativeResult(d["status"], d["result"], d["error"], run_id), load(trace_file)


@pytest.mark.slow
@pytest.mark.parametrize("s", ROWS, ids=lambda s: s.id)
def test_native_definition_survives_sigkill(s, tmp_path):
    result, trace = drive_durability(s, tmp_path)
    diffs = check(s, result, trace, native=True)
    assert diffs == [], "\n".join(diffs)
    pids = {sp.pid for sp in trace.spans}
    if s.expect.status == "success":  # a detected divergence runs no step after the crash
        assert len(pids) >= 2, f"{s.id}: expected steps in the killed and the recovering process, got {pids}"


@pytest.mark.slow
def test_unchanged_workflow_is_not_reported_as_divergent(tmp_path):
    """Negative control: without the variant switch the same crash recovers to success, so the
    changed-workflow row's expectation (failed, NondeterminismError) fails with a diff."""
    import dataclasses

    s = next(r for r in ROWS if r.id == "det-changed-workflow")
    same = dataclasses.replace(s, durability=dataclasses.replace(s.durability, recover_env={}))
    result, trace = drive_durability(same, tmp_path)
    diffs = check(same, result, trace, native=True)
    assert any(d.startswith("status: expected 'failed', got 'success'") for d in diffs), diffs


# --- the same rows on the codegen engine (the Mastra-syntax definition compiled to durable) ----

ENGINE_CHILD = str(Path(__file__).with_name("engine_child.py"))
CODEGEN_ROWS = [s for s in all_scenarios() if s.durability is not None and s.workflow_factory is not None]


def drive_codegen_durability(s, tmp_path: Path, recover_env: dict[str, str] | None = None):
    """Start in process A, SIGKILL at the kill point (a start phase that ends suspended exits by
    itself, as a killed one would), resume from B if the row says so, recover in C with
    `engine.recover`; returns (result dict, trace)."""
    spec = s.durability
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out.json"
    trace_file = tmp_path / "trace.jsonl"
    a = subprocess.Popen([sys.executable, ENGINE_CHILD, "start", "codegen", s.id, run_id, str(out)],
                         env=_env(tmp_path))
    try:
        deadline = time.monotonic() + 30
        while not spec.kill.reached(load(trace_file)):
            assert a.poll() is None, f"{s.id}: the run's process ended before the kill point"
            assert time.monotonic() < deadline, f"{s.id}: kill point {spec.kill} never reached"
            time.sleep(0.005)
        time.sleep(spec.kill.delay)
        if a.poll() is None:
            os.kill(a.pid, signal.SIGKILL)
    finally:
        a.wait()
    assert a.returncode in (0, -signal.SIGKILL), a.returncode
    if spec.resume is not None:
        subprocess.run([sys.executable, ENGINE_CHILD, "resume", "codegen", s.id, run_id, str(out),
                        json.dumps(spec.resume[1])], env=_env(tmp_path), check=True, timeout=60)
    env = dict(spec.recover_env) if recover_env is None else recover_env
    subprocess.run([sys.executable, ENGINE_CHILD, "recover", "codegen", s.id, run_id, str(out)],
                   env=_env(tmp_path, env), check=True, timeout=120)
    return json.loads(out.read_text()), load(trace_file)


@pytest.mark.slow
@pytest.mark.parametrize("s", CODEGEN_ROWS, ids=lambda s: s.id)
def test_codegen_definition_survives_sigkill(s, tmp_path):
    result, trace = drive_codegen_durability(s, tmp_path)
    diffs = check(s, result, trace)
    assert diffs == [], "\n".join(diffs)


@pytest.mark.slow
def test_codegen_changed_workflow_fails_with_nondeterminism_and_does_not_hang(tmp_path):
    """det-changed-workflow on codegen: the recovering process compiles the changed graph
    (step-x where the log has step-b) and `recover` fails the run with NondeterminismError
    (within the child's 60 s wait_for; in practice at once) without running any step again."""
    s = next(r for r in CODEGEN_ROWS if r.id == "det-changed-workflow")
    result, trace = drive_codegen_durability(s, tmp_path)
    assert result["status"] == "failed"
    assert result["error"]["name"] == "NondeterminismError"
    assert "step-b" in result["error"]["message"] and "step-x" in result["error"]["message"]
    assert trace.runs("step-x") == 0 and trace.runs("step-c") == 0
    # negative control: the same crash recovered without the change succeeds
    control = tmp_path / "control"
    control.mkdir()
    ok, _ = drive_codegen_durability(s, control, recover_env={})
    assert ok["status"] == "success", ok.get("error")
