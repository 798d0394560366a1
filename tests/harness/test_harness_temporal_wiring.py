"""The `temporal` column and CLI wiring (LEAD decision 00:25).

Without a server: `wfbench matrix` runs only the local engines; `-e temporal` / `-e all` add the
temporal column inside one server session; each temporal cell gets its own task queue and a 2 s
heartbeat, and a longer time limit; bad temporal options are one-line usage errors.
With a dev server (marked `temporal`, one server per test session as in tests/temporal): run,
suspend and resume from the CLI, `wfbench worker --engine temporal` serving a run started
elsewhere, a matrix session with the temporal column, and the session's own dev server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import harness_fakes as hf
import pytest
from click.testing import CliRunner

import harness.cli
import harness.session
import harness.targets
from harness.cli import main
from harness.runner import TEMPORAL_MIN_TIMEOUT_S, RunPlan, cell_env, run_matrix_cells

ROOT = Path(__file__).resolve().parents[2]
ENV_KEYS = hf.ENV_KEYS


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def no_temporal_env(monkeypatch):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


# ---------------------------------------------------------------------------------------------
# runner: per-cell environment and time limit


def test_each_temporal_cell_runs_on_its_own_task_queue(no_temporal_env) -> None:
    plan = RunPlan(engines=["default", "temporal"], scenarios=["a", "b", "c"], jobs=2,
                   engine_factory=hf.make_env_engine, scenario_lookup=hf.lookup_any_scenario,
                   check=hf.env_check)
    cells = run_matrix_cells(plan)
    seen = {c.key: dict(line.split("=", 1) for line in c.diff) for c in cells}
    queues = [seen[("temporal", s)]["WFBENCH_TEMPORAL_TASK_QUEUE"] for s in "abc"]
    assert all(q.startswith("cell-") for q in queues)
    assert len(set(queues)) == 3  # never shared by two cells
    assert {seen[("temporal", s)]["WFBENCH_TEMPORAL_HEARTBEAT"] for s in "abc"} == {"2"}
    for s in "abc":  # local engines get none of it
        assert seen[("default", s)] == {k: "None" for k in ENV_KEYS}
    assert all(os.environ.get(k) is None for k in ENV_KEYS)  # restored after the cells


def test_a_heartbeat_set_by_the_user_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("WFBENCH_TEMPORAL_HEARTBEAT", "7")
    env = cell_env("temporal")
    assert "WFBENCH_TEMPORAL_HEARTBEAT" not in env
    assert env["WFBENCH_TEMPORAL_TASK_QUEUE"] != cell_env("temporal")["WFBENCH_TEMPORAL_TASK_QUEUE"]
    assert cell_env("codegen") == {}


def test_temporal_cells_get_a_longer_time_limit() -> None:
    plan = RunPlan(engines=["default", "temporal"], scenarios=["a"], timeout_s=60)
    limits = {s.engine: s.timeout_s for s in plan.specs()}
    assert limits == {"default": 60, "temporal": TEMPORAL_MIN_TIMEOUT_S}
    assert TEMPORAL_MIN_TIMEOUT_S >= 120
    plan.timeout_s = 400
    assert {s.timeout_s for s in plan.specs()} == {400}


# ---------------------------------------------------------------------------------------------
# `wfbench matrix`: local engines by default, the temporal column on request (fakes)


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    hf.install([hf.FakeScenario("sum", program=(1, 2), expect={"result": 3}),
                hf.FakeScenario("branchy", uses=("branch",), expect={"result": 6})],
               [hf.FakeEngine("default"), hf.FakeEngine("codegen-strict",
                                                        refuses=frozenset({"branch"})),
                hf.FakeEngine("temporal")])
    monkeypatch.setattr(harness.targets, "scenario_ids", lambda: list(hf.SCENARIOS))
    monkeypatch.setattr(harness.targets, "get_scenario", lambda sid: hf.SCENARIOS[sid])

    def run_plan(plan, progress=True):
        plan.engine_factory = hf.make_engine
        plan.scenario_lookup = hf.lookup_scenario
        plan.check = hf.fake_check
        plan.jobs = 1
        return harness.session.run_matrix_cells(plan)

    def build_matrix(engines, ids, cells):
        from harness.matrix import EngineInfo, Matrix, ScenarioInfo

        return Matrix.build([EngineInfo.of(e) for e in engines],
                            [ScenarioInfo.of(hf.SCENARIOS[i]) for i in ids], cells)

    sessions: list[list[str]] = []

    @contextlib.contextmanager
    def server(engines):
        sessions.append(list(engines))
        yield "fake:7233" if "temporal" in engines else None

    monkeypatch.setattr(harness.session, "run_plan", run_plan)
    monkeypatch.setattr(harness.session, "build_matrix", build_matrix)
    monkeypatch.setattr(harness.session, "temporal_server", server)
    monkeypatch.setattr(harness.cli, "_engine_names",
                        lambda: ("default", "codegen-strict", "temporal"))
    return sessions


def _engines_in(path: Path) -> set[str]:
    return {c["engine"] for c in json.loads(path.read_text())["cells"]}


def test_matrix_runs_the_local_engines_unless_asked_for_temporal(fakes, tmp_path) -> None:
    r = invoke("matrix", "--no-progress", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert {c["engine"] for c in json.loads(r.stdout)["cells"]} == {"default", "codegen-strict"}
    assert fakes == [["default", "codegen-strict"]]
    base = tmp_path / "reports" / "matrix.json"  # a full local run refreshes reports/
    assert _engines_in(base) == {"default", "codegen-strict"}

    r = invoke("matrix", "--no-progress", "-e", "temporal", "--output", "t")
    assert r.exit_code == 0, r.stderr
    assert _engines_in(tmp_path / "t" / "matrix.json") == {"temporal"}
    assert fakes[-1] == ["temporal"]

    # -e all = every engine; a baseline without the temporal column still passes --check
    r = invoke("matrix", "--no-progress", "-e", "all", "--check", str(base))
    assert r.exit_code == 0, r.stderr
    assert "no cell is worse" in r.stderr
    assert fakes[-1] == ["default", "codegen-strict", "temporal"]
    assert _engines_in(base) == {"default", "codegen-strict", "temporal"}


# ---------------------------------------------------------------------------------------------
# one-line usage errors (exit 2), no server needed


@pytest.mark.parametrize("args,needle", [
    (["run", "-e", "default", "--temporal-address", "127.0.0.1:7233", "wcp1-sequence"],
     "--temporal-address applies only to --engine temporal"),
    (["resume", "-e", "codegen", "--task-queue", "q", "wcp1-sequence", "r1"],
     "--task-queue applies only to --engine temporal"),
    (["run", "-e", "temporal", "--temporal-address", "localhost", "wcp1-sequence"],
     "--temporal-address 'localhost' is not HOST:PORT"),
    (["worker", "--engine", "temporal"], "needs --temporal-address HOST:PORT"),
    (["worker", "--engine", "temporal", "--temporal-address", "127.0.0.1:1", "--until-idle"],
     "--until-idle does not apply to --engine temporal"),
    (["worker", "--task-queue", "q"], "--task-queue applies only to --engine temporal"),
    (["worker", "--engine", "default"], "engine 'default' keeps no runs a worker could take"),
    (["worker", "--engine", "tempral"], "unknown engine 'tempral' (did you mean temporal?)"),
    (["codegen", "--engine", "native", "wcp1-sequence"], "--engine 'native' compiles nothing"),
    (["codegen", "--engine", "temporal", "--strict", "wcp1-sequence"],
     "--strict applies to the codegen compiler"),
])
def test_temporal_option_errors(args, needle, no_temporal_env) -> None:
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    line = one_line_error(r)
    assert line.startswith("error: ") and needle in line


def test_codegen_prints_the_temporal_module() -> None:
    r = invoke("codegen", "--engine", "temporal", "--no-color", "wcp21-dountil")
    assert r.exit_code == 0, r.output
    assert "from temporalio import workflow" in r.stdout
    assert "WORKFLOW_TYPE = 'wfbench:wcp21-dountil@" in r.stdout
    # the lifted loop condition is an activity of its own
    assert "wcp21-dountil/entry1/loop/condition" in r.stdout
    plain = invoke("codegen", "--no-color", "wcp21-dountil")
    assert "temporalio" not in plain.stdout
    strict = invoke("codegen", "--engine", "codegen-strict", "wcp21-dountil")
    assert strict.exit_code == 1 and "codegen-strict refuses" in one_line_error(strict)


# ---------------------------------------------------------------------------------------------
# with a Temporal dev server


@pytest.mark.temporal
def test_run_suspend_and_resume_on_temporal_from_the_cli(temporal_address, tmp_path) -> None:
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    opts = ["--temporal-address", temporal_address, "--task-queue", queue]
    r = invoke("run", "-e", "temporal", *opts, "wcp1-sequence", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "success"

    rid = f"t-{uuid.uuid4().hex[:8]}"
    r = invoke("run", "-e", "temporal", *opts, "--run-id", rid, "hitl-suspend-resume")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == f"run {rid}: suspended"
    assert (f"resume with: wfbench resume --engine temporal --temporal-address "
            f"{temporal_address} --task-queue {queue} hitl-suspend-resume {rid} "
            "--step approve") in r.stdout
    r = invoke("resume", "-e", "temporal", *opts, "hitl-suspend-resume", rid,
               "--step", "approve", "--data", '{"approved": true}', "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "success" and out["result"]["approved"] is True


@pytest.mark.temporal
@pytest.mark.slow
def test_standalone_temporal_worker_serves_a_run_started_elsewhere(temporal_address,
                                                                   tmp_path) -> None:
    import asyncio

    from engines.temporal.engine import TemporalEngine
    from scenarios import get_scenario

    queue = f"worker-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "worker", "--engine",
                             "temporal", "--temporal-address", temporal_address,
                             "--task-queue", queue], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scenario = get_scenario("wcp1-sequence")
        # no worker in this process: only the `wfbench worker` process can run the steps
        engine = TemporalEngine(temporal_address=temporal_address, task_queue=queue,
                                in_process_worker=False)

        async def go():
            return await asyncio.wait_for(
                engine.run(scenario, input_data=scenario.fresh_input(),
                           run_id=f"w-{uuid.uuid4().hex[:8]}", target_ref=scenario.id), 60)

        result = asyncio.run(go())
        assert result.status == "success", result.error
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Fatal Python error" not in err
    assert f"temporal worker on {temporal_address}, task queue '{queue}'" in err
    assert "temporal worker stopped" in err


@pytest.mark.temporal
def test_matrix_with_the_temporal_column(temporal_address, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WFBENCH_TEMPORAL_ADDRESS", temporal_address)  # the session's server
    r = invoke("matrix", "-e", "temporal", "-e", "default", "-s", "wcp1-sequence",
               "-s", "hitl-suspend-resume", "--no-progress", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)["cells"]
    cells = {(c["engine"], c["scenario"]): c["verdict"] for c in data}
    assert all(c["verdict"] == "pass" for c in data), [c["exception"] for c in data]
    assert cells == {(e, s): "pass" for e in ("temporal", "default")
                     for s in ("wcp1-sequence", "hitl-suspend-resume")}


@pytest.mark.temporal
def test_a_session_starts_and_stops_its_own_dev_server(monkeypatch) -> None:
    from harness.session import temporal_server

    monkeypatch.delenv("WFBENCH_TEMPORAL_ADDRESS", raising=False)
    with temporal_server(["default"]) as none:
        assert none is None and "WFBENCH_TEMPORAL_ADDRESS" not in os.environ
    with temporal_server(["default", "temporal"]) as address:
        assert address and os.environ["WFBENCH_TEMPORAL_ADDRESS"] == address
        host, _, port = address.rpartition(":")
        socket.create_connection((host, int(port)), timeout=2).close()
    assert "WFBENCH_TEMPORAL_ADDRESS" not in os.environ
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()
    monkeypatch.setenv("WFBENCH_TEMPORAL_ADDRESS", "10.0.0.1:7233")  # a server the user gave
    with temporal_server(["temporal"]) as given:
        assert given == "10.0.0.1:7233"
    assert os.environ["WFBENCH_TEMPORAL_ADDRESS"] == "10.0.0.1:7233"


@pytest.mark.temporal
def test_resume_errors_on_temporal(temporal_address) -> None:
    queue = f"err-{uuid.uuid4().hex[:8]}"
    opts = ["--temporal-address", temporal_address, "--task-queue", queue]
    r = invoke("resume", "-e", "temporal", *opts, "hitl-suspend-resume", "nosuchrun",
               "--step", "approve", "--data", "{}")
    assert r.exit_code == 2
    assert one_line_error(r) == (f"error: no run 'nosuchrun' on {temporal_address} (namespace "
                                 "'default'); pass the --temporal-address the run was started on")
    rid = f"done-{uuid.uuid4().hex[:8]}"
    assert invoke("run", "-e", "temporal", *opts, "--run-id", rid, "wcp1-sequence").exit_code == 0
    r = invoke("resume", "-e", "temporal", *opts, "wcp1-sequence", rid)
    assert r.exit_code == 2
    assert one_line_error(r) == (f"error: run '{rid}' has already completed; only a suspended "
                                 "run can be resumed")


@pytest.mark.temporal
@pytest.mark.slow
def test_a_temporal_command_exits_with_its_own_code(temporal_address, tmp_path) -> None:
    """temporalio's threads can crash interpreter teardown (exit -6/-11): the CLI skips it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "harness.cli"]
    for scenario, code in (("wcp1-sequence", 0), ("err-step-fails", 1)):
        r = subprocess.run([*cli, "run", "-e", "temporal", "--temporal-address", temporal_address,
                            "--task-queue", f"exit-{uuid.uuid4().hex[:8]}", scenario],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == code, r.stderr
        assert "Fatal Python error" not in r.stderr
        assert r.stdout.splitlines()[0].endswith("success" if code == 0 else "failed")


def test_worker_engine_names_the_durable_world_worker(tmp_path) -> None:
    for engine in ("codegen", "native"):
        r = invoke("worker", "--engine", engine, "--db", str(tmp_path / "w.db"), "--until-idle")
        assert r.exit_code == 0, r.output
        assert "worker idle; 0 failed run(s)" in r.stdout


def test_a_cell_runs_inside_the_engines_session(tmp_path) -> None:
    from harness.runner import CellSpec, run_cell

    cell = run_cell(CellSpec(engine="temporal", scenario="s",
                             engine_factory=hf.make_session_engine,
                             scenario_lookup=hf.lookup_any_scenario, check=hf.result_check),
                    tmp_path)
    assert cell.diff == ["inside=True", "entered=1"]
