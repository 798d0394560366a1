"""`wfbench crash-test` (harness.crashtest): the checkers on hand-written logs and traces, the
seeded plan, and a 40-trial SIGKILL campaign on codegen and native (slow)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from harness import crashtest as ct


@dataclass
class Ev:
    seq: int
    type: str
    correlation_id: str | None = None


@dataclass
class Rec:
    kind: str
    name: str
    span: str
    pid: int
    ok: bool | None = None
    data: Any = None


def good_log() -> list[Ev]:
    return [Ev(1, "run_created"), Ev(2, "run_started"), Ev(3, "step_created", "step_1"),
            Ev(4, "step_started", "step_1"), Ev(5, "step_completed", "step_1"),
            Ev(6, "wait_created", "wait_2"), Ev(9, "wait_completed", "wait_2"),
            Ev(10, "hook_created", "hook_3"), Ev(11, "hook_received", "hook_3"),
            Ev(12, "hook_disposed", "hook_3"), Ev(13, "run_completed")]


def test_a_well_formed_log_has_no_problems() -> None:
    assert ct.log_problems(good_log()) == []


def _without(log: list[Ev], seq: int) -> list[Ev]:
    return [e for e in log if e.seq != seq]


@pytest.mark.parametrize("mutate, expected", [
    (lambda log: log[1:], "first event is 'run_started'"),
    (lambda log: [*log[:3], Ev(3, "step_started", "step_1"), *log[4:]], "seq not strictly increasing"),
    (lambda log: [*log[:-1]], "0 terminal events"),
    (lambda log: [*log, Ev(14, "run_failed")], "2 terminal events"),
    (lambda log: [*log[:-2], log[-1], Ev(14, "hook_disposed", "hook_3")],
     "events after the terminal 'run_completed'"),
    (lambda log: _without(log, 4), "step_completed of step_1 (seq 5) without a step_started"),
    (lambda log: [*log[:6], Ev(7, "step_completed", "step_1"), *log[6:]],
     "step_completed more than once for ['step_1']"),
    (lambda log: _without(log, 6), "wait_completed of wait_2 (seq 9) without a wait_created"),
    (lambda log: _without(log, 10), "hook_received of hook_3 (seq 11) without a hook_created"),
    (lambda log: [], "the log is empty"),
])
def test_each_malformation_of_the_log_is_named(mutate: Any, expected: str) -> None:
    problems = ct.log_problems(mutate(good_log()))
    assert any(expected in p for p in problems), problems


def _start(name: str, cid: str, attempt: int, pid: int, span: str) -> Rec:
    return Rec("start", name, span, pid, None, {"crash_cid": cid, "crash_attempt": attempt})


def _end(name: str, span: str, pid: int, ok: bool = True) -> Rec:
    return Rec("end", name, span, pid, ok)


def _check(records: list[Rec], at_kill: int, done: set[str], events: list[Ev],
           last_seq: int) -> tuple[list[str], ct.TrialResult]:
    res = ct.TrialResult(0, "codegen", "x", "span", 1)
    return ct._trace_problems(records, at_kill, done, events, last_seq, res), res


def test_an_in_flight_step_may_run_once_more_after_the_kill() -> None:
    recs = [_start("a", "step_1", 1, 10, "s1"), _end("a", "s1", 10),
            _start("b", "step_2", 1, 10, "s2"),                      # killed here
            _start("b", "step_2", 2, 20, "s3"), _end("b", "s3", 20)]
    events = [Ev(5, "step_completed", "step_1"), Ev(7, "step_started", "step_2"),
              Ev(8, "step_started", "step_2"), Ev(9, "step_completed", "step_2")]
    problems, res = _check(recs, 3, {"step_1"}, events, 7)
    assert problems == []
    assert (res.in_flight_at_kill, res.rerun) == (1, 1)


def test_a_step_completed_before_the_kill_must_not_run_again() -> None:
    recs = [_start("a", "step_1", 1, 10, "s1"), _end("a", "s1", 10),
            _start("a", "step_1", 2, 20, "s2"), _end("a", "s2", 20)]
    problems, _ = _check(recs, 2, {"step_1"}, [], 5)
    assert any("completed before the kill ran again" in p and "step_1 (a)" in p for p in problems)


def test_a_step_run_twice_without_failure_or_crash_is_reported() -> None:
    recs = [_start("a", "step_1", 1, 20, "s1"), _end("a", "s1", 20),
            _start("a", "step_1", 2, 20, "s2"), _end("a", "s2", 20)]
    problems, _ = _check(recs, 0, set(), [Ev(3, "step_completed", "step_1")], 0)
    assert any("executed 2 times after the kill with 0 failed attempt(s)" in p for p in problems)


def test_retries_after_failures_are_not_reruns() -> None:
    recs = [_start("a", "step_1", 1, 20, "s1"), _end("a", "s1", 20, ok=False),
            _start("a", "step_1", 2, 20, "s2"), _end("a", "s2", 20)]
    events = [Ev(3, "step_retrying", "step_1"), Ev(5, "step_completed", "step_1")]
    problems, res = _check(recs, 0, set(), events, 0)
    assert problems == [] and res.rerun == 0


def test_the_same_attempt_in_two_processes_is_reported() -> None:
    recs = [_start("a", "step_1", 1, 10, "s1"), _start("a", "step_1", 1, 20, "s2"),
            _end("a", "s2", 20)]
    problems, _ = _check(recs, 1, set(), [Ev(3, "step_completed", "step_1")], 2)
    assert any("attempt(s) [1] executed in more than one process" in p for p in problems)


def test_candidates_are_non_interactive_and_have_the_engine_s_definition() -> None:
    from scenarios import get_scenario

    for engine in ct.DURABLE_ENGINES:
        ids = ct.candidates(engine)
        assert len(ids) >= 20
        assert "dur-kill-mid-chain" in ids and "wcp14-foreach-c3" in ids
        assert "hitl-suspend-resume" not in ids  # needs a resume action
        assert "dur-hook-other-process" not in ids  # needs a resume from another process
        assert "scale-chain-1000" not in ids
        for sid in ids:
            s = get_scenario(sid)
            assert not s.actions
            assert (s.native_ref if engine == "native" else s.workflow_factory) is not None
    assert "time-sleep-until" not in ct.candidates("codegen")
    assert "time-sleep-until" in ct.candidates("native")
    assert "wcp16-deferred-choice-timeout" not in ct.candidates("codegen")  # no Mastra definition


async def test_the_plan_is_reproducible_from_the_seed() -> None:
    a = await ct.plan_trials(["codegen", "native"], 12, seed=5)
    b = await ct.plan_trials(["codegen", "native"], 12, seed=5)
    c = await ct.plan_trials(["codegen", "native"], 12, seed=6)
    assert a == b
    assert a != c
    assert [p.engine for p in a] == ["codegen", "native"] * 6
    for p in a:
        assert p.mode in ct.KILL_MODES and p.scenario in ct.candidates(p.engine)
        assert p.k >= (2 if p.mode == "before-commit" else 0)


def test_crash_test_refuses_a_non_durable_engine() -> None:
    result = CliRunner().invoke(ct.crash_test, ["--engine", "default", "--trials", "1"])
    assert result.exit_code == 2
    assert "default" in result.output and "codegen" in result.output


@pytest.mark.slow
def test_a_40_trial_campaign_on_both_durable_engines_passes(tmp_path: Any) -> None:
    report = tmp_path / "crash.json"
    from harness.cli import main

    result = CliRunner().invoke(main, [
        "crash-test", "--trials", "40", "--seed", "1", "--jobs", "2", "--db-dir", str(tmp_path / "dbs"),
        "--report", str(report)])
    data = json.loads(report.read_text())
    summary = data["summary"]
    failures = [f"{t['index']} {t['engine']} {t['scenario']} {t['mode']} k={t['k']}: "
                f"{t['problems']}" for t in data["failures"]]
    print(f"crash-test 40 trials seed 1: {summary}")
    assert summary["trials"] == 40
    assert summary["by_engine"]["codegen"]["trials"] == 20
    assert summary["by_engine"]["native"]["trials"] == 20
    assert summary["killed"] >= 30  # the kill points lie inside the runs
    assert sum(t["rerun"] for t in data["trials"]) >= 1  # some in-flight step ran again
    assert (tmp_path / "dbs" / "trial-0000" / "runs.db").exists()
    assert failures == [], "\n".join(failures)
    assert result.exit_code == 0, result.output
    assert "40/40 trials passed" in result.output


def test_the_report_is_json_with_one_line_per_trial() -> None:
    trials = [ct.TrialResult(i, "native", "wcp1-sequence", "span", 2, killed=True)
              for i in range(3)]
    trials[1].problems.append("log: 2 terminal events")
    camp = ct.Campaign(seed=4, engines=["native"], trials=trials, seconds=1.5)
    text = camp.to_json()
    data = json.loads(text)
    assert data["command"] == "wfbench crash-test --trials 3 --seed 4 --engine native"
    assert data["summary"]["passed"] == 2 and data["summary"]["failed"] == 1
    assert [t["index"] for t in data["failures"]] == [1]
    assert len(data["trials"]) == 3
    assert sum(1 for line in text.splitlines() if line.startswith('  {"index"')) == 3
