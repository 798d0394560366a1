"""The CLI on the real engines and scenarios: list, run (exit codes), codegen, and a codegen run
SIGKILLed mid-chain that `wfbench worker` completes in a new process without re-running the
steps that had finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_list_shows_every_scenario_and_engine() -> None:
    from engines import ENGINE_NAMES
    from scenarios import all_scenarios

    r = invoke("list", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert [s["id"] for s in data["scenarios"]] == [s.id for s in all_scenarios()]
    names = [e["name"] for e in data["engines"]]
    # every engine of the engines package, and temporal (listed even before engines knows it)
    assert names[:len(ENGINE_NAMES)] == list(ENGINE_NAMES)
    assert sorted(names) == sorted({*ENGINE_NAMES, "temporal"})
    assert {"default", "codegen", "codegen-strict", "stepmode", "native"} <= set(names)


def test_unknown_real_scenario(tmp_path) -> None:
    r = invoke("run", "--engine", "default", "--db", str(tmp_path / "r.db"), "wcp1-sequense")
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "unknown scenario 'wcp1-sequense'" in line and "wcp1-sequence" in line


def test_run_exit_codes(tmp_path) -> None:
    db = str(tmp_path / "r.db")
    r = invoke("run", "--engine", "codegen", "--db", db, "wcp1-sequence", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "success"
    r = invoke("run", "--engine", "default", "--db", db, "err-step-fails")
    assert r.exit_code == 1  # the run failed
    assert ": failed" in r.stdout.splitlines()[0]


def test_suspend_then_resume_from_the_cli(tmp_path) -> None:
    db = str(tmp_path / "r.db")
    r = invoke("run", "--engine", "default", "--db", db, "--run-id", "h1", "hitl-suspend-resume")
    assert r.exit_code == 0
    assert "suspended at: [[\"approve\"]]" in r.stdout
    # the printed command reaches the same run: same engine, database, target and run id
    assert (f"resume with: wfbench resume --engine default --db {db} hitl-suspend-resume h1 "
            "--step approve --data JSON") in r.stdout
    r = invoke("resume", "--engine", "default", "--db", db, "hitl-suspend-resume", "h1",
               "--step", "approve", "--data", '{"approved": true}', "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "success"


def test_codegen_prints_source_and_strict_refuses(tmp_path) -> None:
    r = invoke("codegen", "branch-closure", "--no-color")
    assert r.exit_code == 0
    assert "async def workflow_branch_closure" in r.stdout
    r = invoke("codegen", "branch-closure", "--strict")
    assert r.exit_code == 1
    assert "codegen-strict refuses branch-closure" in one_line_error(r)


@pytest.mark.slow
def test_worker_completes_a_killed_codegen_run(tmp_path) -> None:
    from scenarios import get_scenario
    from scenarios.trace import load

    db, trace = tmp_path / "runs.db", tmp_path / "trace.jsonl"
    env = {**os.environ, "WFBENCH_TRACE_FILE": str(trace), "PYTHONPATH": str(ROOT)}
    env.pop("WFBENCH_DB", None)
    cli = [sys.executable, "-m", "harness.cli"]
    kill = get_scenario("dur-kill-mid-chain").durability.kill  # after s-10 ended
    proc = subprocess.Popen([*cli, "run", "-e", "codegen", "--db", str(db), "--run-id", "k1",
                             "dur-kill-mid-chain"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not kill.reached(load(trace)):
        assert proc.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.kill()
    assert proc.wait() == -9
    before = load(trace)
    finished = [s.name for s in before.spans if s.ok]
    assert "s-10" in finished

    r = subprocess.run([*cli, "worker", "--db", str(db), "--until-idle"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cli, "runs", "show", "--db", str(db), "k1"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["run"]["status"] == "completed"
    after = load(trace)
    # the steps committed before the kill (s-1..s-9: each is journaled before the next starts)
    # ran exactly once; s-10 may run again (killed between its end and its commit: at least
    # once); all 20 completed
    assert [after.runs(f"s-{i}") for i in range(1, 10)] == [1] * 9
    assert after.runs("s-10") in (1, 2)
    assert [after.completed(f"s-{i}") for i in range(1, 21)] == [1] * 20
    assert len({s.pid for s in after.spans}) == 2  # the killed process and the worker


def test_runs_show_unknown_run(tmp_path) -> None:
    r = invoke("runs", "show", "--db", str(tmp_path / "r.db"), "nope")
    assert r.exit_code == 2
    assert "no run 'nope'" in one_line_error(r)


def test_native_scenario_run_and_resume(tmp_path) -> None:
    db = str(tmp_path / "n.db")
    # the native definition takes request_context too: the CLI starts it with native_kwargs()
    r = invoke("run", "--engine", "native", "--db", db, "data-map-object", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "success"
    r = invoke("run", "--engine", "native", "--db", db, "--run-id", "n1", "hitl-suspend-resume")
    assert r.exit_code == 0 and ": suspended" in r.stdout
    r = invoke("resume", "--engine", "native", "--db", db, "hitl-suspend-resume", "n1",
               "--step", "approve", "--data", '{"approved": false}', "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["status"], out["result"]["approved"]) == ("success", False)
