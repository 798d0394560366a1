"""The CLI: --help with an example on every command, exit codes, one-line errors naming the bad
value, and `matrix` / `matrix --check` driven through fake engines and scenarios."""

from __future__ import annotations

import json

import harness_fakes as hf
import pytest
from click.testing import CliRunner

import harness.cli
import harness.session
import harness.targets
from harness.cli import main


def _all_commands(group=main, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield [*prefix, name]
        if hasattr(cmd, "commands"):
            yield from _all_commands(cmd, (*prefix, name))


COMMANDS = list(_all_commands())


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Commands that write reports/ write them under the test's own directory."""
    monkeypatch.chdir(tmp_path)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_command_list() -> None:
    mine = {"list", "run", "resume", "codegen", "worker", "runs", "runs list", "runs show",
            "matrix"}
    assert mine <= {" ".join(c) for c in COMMANDS}


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(cmd) -> None:
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0, r.output
    assert "Example" in r.output
    assert "wfbench " + " ".join(cmd) in r.output
    assert r.output.startswith("Usage: wfbench " + " ".join(cmd))


@pytest.fixture
def fakes(monkeypatch):
    hf.install(
        [hf.FakeScenario("sum", title="Sum", wcp=("WCP-1",), program=(1, 2),
                         expect={"status": "success", "result": 3}),
         hf.FakeScenario("branchy", wcp=("WCP-4",), uses=("branch",), program=(5,),
                         expect={"status": "success", "result": 6})],
        [hf.FakeEngine("default"), hf.FakeEngine("codegen-strict", refuses=frozenset({"branch"}))],
    )
    monkeypatch.setattr(harness.targets, "scenario_ids", lambda: list(hf.SCENARIOS))
    monkeypatch.setattr(harness.targets, "get_scenario", _checked_lookup)

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

    monkeypatch.setattr(harness.session, "run_plan", run_plan)
    monkeypatch.setattr(harness.session, "build_matrix", build_matrix)
    monkeypatch.setattr(harness.cli, "_engine_names", lambda: ("default", "codegen-strict"))
    monkeypatch.setattr(harness.cli, "_check_target", lambda *a: None)  # fakes are no workflows
    yield


def _checked_lookup(sid):
    if sid not in hf.SCENARIOS:
        raise harness.targets.BadTarget(f"unknown scenario {sid!r}; run `wfbench list` to see them")
    return hf.SCENARIOS[sid]


def one_line_error(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def test_unknown_engine_is_a_usage_error(fakes) -> None:
    r = invoke("run", "--engine", "warp", "sum")
    assert r.exit_code == 2
    assert "unknown engine 'warp'" in one_line_error(r)


def test_unknown_scenario_is_a_usage_error(fakes) -> None:
    r = invoke("run", "--engine", "default", "summ")
    assert r.exit_code == 2
    assert "unknown scenario 'summ'" in one_line_error(r)
    r = invoke("matrix", "--scenario", "nope", "--no-progress")
    assert r.exit_code == 2
    assert "'nope'" in one_line_error(r)
    r = invoke("matrix", "--engine", "nope", "--no-progress")
    assert r.exit_code == 2
    assert "unknown engine 'nope'" in one_line_error(r)


def test_malformed_json_input_is_a_usage_error(fakes, tmp_path) -> None:
    r = invoke("run", "--engine", "default", "sum", "--input", "{value: 1")
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "--input is not valid JSON" in line and "{value: 1" in line
    r = invoke("run", "--engine", "default", "sum", "--input", "@" + str(tmp_path / "no.json"))
    assert r.exit_code == 2
    assert "no such file" in one_line_error(r)
    bad = tmp_path / "bad.json"
    bad.write_text("[1,")
    r = invoke("resume", "--engine", "default", "sum", "run-1", "--data", f"@{bad}")
    assert r.exit_code == 2
    assert f"--data @{bad} is not valid JSON" in one_line_error(r)


def test_bad_file_targets(tmp_path) -> None:
    r = invoke("run", "--engine", "default", str(tmp_path / "none.py") + ":wf")
    assert r.exit_code == 2, (r.stderr, r.exception)
    assert "no such file" in one_line_error(r)
    f = tmp_path / "flows.py"
    f.write_text("order_flow = 1\n")
    r = invoke("run", "--engine", "default", f"{f}:order_flw")
    assert r.exit_code == 2
    assert "no attribute 'order_flw' (did you mean order_flow?)" in one_line_error(r)


def test_run_input_and_exit_codes(fakes, monkeypatch) -> None:
    monkeypatch.setattr(harness.cli, "_make_engine", hf.make_engine)
    r = invoke("run", "--engine", "default", "sum", "--input", "10", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"] == 13
    hf.SCENARIOS["sum"].behaviour = "raise"
    r = invoke("run", "--engine", "default", "sum")
    assert r.exit_code == 1
    assert one_line_error(r) == ("error: RuntimeError: boom in sum "
                                 "(run with --debug for the traceback)")
    r = invoke("--debug", "run", "--engine", "default", "sum")
    assert r.exit_code == 1
    assert isinstance(r.exception, RuntimeError)


def test_matrix_writes_reports_and_check_names_worse_cells(fakes, tmp_path) -> None:
    out = tmp_path / "given"
    r = invoke("matrix", "--output", str(out), "--no-progress", "--format", "markdown")
    assert r.exit_code == 0, r.output + r.stderr
    assert "| `sum`" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["matrix.html", "matrix.json", "matrix.md"]
    baseline = json.loads((out / "matrix.json").read_text())
    verdicts = {(c["scenario"], c["engine"]): c["verdict"] for c in baseline["cells"]}
    assert verdicts == {("sum", "default"): "pass", ("sum", "codegen-strict"): "pass",
                        ("branchy", "default"): "fail", ("branchy", "codegen-strict"): "unsupported"}

    r = invoke("matrix", "--check", str(out / "matrix.json"), "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert "no cell is worse" in r.stderr
    # a full run without --output writes reports/ in the working directory
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "matrix.html", "matrix.json", "matrix.md"]

    hf.SCENARIOS["sum"].expect["result"] = 4  # the expectation changes: sum now fails everywhere
    r = invoke("matrix", "--check", str(out / "matrix.json"), "--no-progress",
               "--engine", "default")
    assert r.exit_code == 1
    assert "1 cell(s) worse than" in r.stderr
    assert "sum on default: pass -> fail (fail: result: expected 4, got 3)" in r.stderr
    # --exact: the narrowed run lacks the codegen-strict cells, and sum changed: stale
    hf.SCENARIOS["sum"].expect["result"] = 3
    r = invoke("matrix", "--check", str(out / "matrix.json"), "--exact", "--no-progress",
               "--engine", "default")
    assert r.exit_code == 1, r.stderr
    assert "no longer measured (was unsupported)" in r.stderr
    r = invoke("matrix", "--check", str(out / "matrix.json"), "--exact", "--no-progress",
               "--output", str(tmp_path / "again"))
    assert r.exit_code == 0, r.stderr
    r = invoke("matrix", "--exact", "--no-progress")
    assert r.exit_code == 2 and "--exact needs --check" in one_line_error(r)
    # a narrowed run without --output writes no files
    assert (out / "matrix.json").read_text() == json.dumps(baseline, indent=2) + "\n"


def test_matrix_check_bad_baseline(fakes, tmp_path) -> None:
    r = invoke("matrix", "--check", str(tmp_path / "missing.json"), "--no-progress")
    assert r.exit_code == 2
    assert "no such baseline file" in one_line_error(r)
    p = tmp_path / "x.json"
    p.write_text('{"schema": "nope"}')
    r = invoke("matrix", "--check", str(p), "--no-progress")
    assert r.exit_code == 2
    assert "is not a wfbench matrix" in one_line_error(r)


def test_matrix_junit_to_stdout(fakes, tmp_path) -> None:
    r = invoke("matrix", "--format", "junit", "--output", str(tmp_path), "--no-progress")
    assert r.exit_code == 0
    assert r.stdout.startswith("<?xml")
    assert (tmp_path / "matrix.xml").read_text() == r.stdout
