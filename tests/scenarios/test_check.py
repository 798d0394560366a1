"""check() and the trace recorder, on hand-made results and traces (no engine involved)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from scenarios.base import (
    ANY,
    ErrorExpect,
    Expect,
    KillPoint,
    Scenario,
    StepExpect,
    TraceExpect,
    hook_token,
)
from scenarios.check import check, check_trace
from scenarios.trace import ENV_VAR, Recorder, Trace, load, mark, recording, span, use


def _scenario(expect: Expect, **kw) -> Scenario:
    return Scenario(id="t", title="t", family="control-flow", expect=expect,
                    workflow_reason="test", native_reason="test", **kw)


def _result(status="success", result=None, error=None, steps=None, suspended=None, state=None):
    return SimpleNamespace(status=status, result=result, error=error, steps=steps or {},
                           suspended=suspended, state=state)


def _rec(status, output=None, payload=None, error=None):
    return SimpleNamespace(status=status, output=output, payload=payload, error=error,
                           suspend_payload=None, resume_payload=None)


def _seq_trace(*names: str) -> Trace:
    rec = Recorder()
    with use(rec):
        for n in names:
            mark(n)
    return rec.trace()


SEQ = _scenario(Expect(
    status="success", result={"value": 23},
    steps={"a": StepExpect("success", output={"value": 2})},
    absent_steps=("z",),
    trace=TraceExpect(runs={"a": 1, "b": 1}, before=(("a", "b"),), max_in_flight={"*": 1}),
))


def test_passing_run_has_no_diffs():
    res = _result(result={"value": 23}, steps={"a": _rec("success", {"value": 2})})
    assert check(SEQ, res, _seq_trace("a", "b")) == []


def test_changed_expected_value_gives_a_unified_diff():
    changed = dataclasses.replace(SEQ, expect=dataclasses.replace(SEQ.expect, result={"value": 24}))
    res = _result(result={"value": 23}, steps={"a": _rec("success", {"value": 2})})
    diffs = check(changed, res, _seq_trace("a", "b"))
    assert len(diffs) == 1
    assert diffs[0].startswith("result differs:")
    assert '-  "value": 24' in diffs[0] and '+  "value": 23' in diffs[0]
    assert "--- expected" in diffs[0] and "+++ actual" in diffs[0]


def test_status_step_and_absent_step_differences():
    res = _result(status="failed", result=None, error=ValueError("x"),
                  steps={"a": _rec("failed"), "z": _rec("success")})
    diffs = check(SEQ, res, _seq_trace("a", "b"))
    text = "\n".join(diffs)
    assert "status: expected 'success', got 'failed' (error: ValueError: x)" in text
    assert "steps['a'].status: expected 'success', got 'failed'" in text
    assert "steps['z']: expected no record" in text


def test_changed_trace_is_detected():
    res = _result(result={"value": 23}, steps={"a": _rec("success", {"value": 2})})
    # b before a, a twice, and an unexpected step
    diffs = check(SEQ, res, _seq_trace("b", "a", "a", "c"))
    text = "\n".join(diffs)
    assert "'a' expected to start 1 time(s), started 2" in text
    assert "expected a.end before b.start" in text
    assert "unexpected steps ran: ['c']" in text


def test_native_mode_skips_flow_records():
    res = _result(result={"value": 23}, steps={})
    assert check(SEQ, res, _seq_trace("a", "b"), native=True) == []
    assert check(SEQ, res, _seq_trace("a", "b"))  # flow mode wants the step record


def test_error_expectations_accept_exceptions_and_dicts():
    sc = _scenario(Expect(status="failed", error=ErrorExpect("ValueError", "boom")))
    assert check(sc, _result("failed", error=ValueError("big boom")), None) == []
    assert check(sc, _result("failed", error={"name": "ValueError", "message": "boom!"}), None) == []
    diffs = check(sc, _result("failed", error=RuntimeError("other")), None)
    assert any("expected error class 'ValueError', got 'RuntimeError'" in d for d in diffs)
    assert any("to contain 'boom'" in d for d in diffs)
    assert check(sc, _result("failed"), None) == ["error: expected an error ValueError containing 'boom', got none"]


def test_any_and_suspended_paths_and_bool_vs_int():
    sc = _scenario(Expect(status="suspended", result={"t": ANY, "ok": True},
                          suspended=(("p1",), ("outer", "p2"))))
    good = _result("suspended", result={"t": 123.4, "ok": True}, suspended=[["outer", "p2"], ["p1"]])
    assert check(sc, good, None) == []
    bad = _result("suspended", result={"t": 1, "ok": 1}, suspended=[["p1"]])
    text = "\n".join(check(sc, bad, None))
    assert "result differs" in text and "suspended paths differs" in text


def test_trace_counts_ranges_globs_gaps_and_open_right_end():
    exp = TraceExpect(runs={"copy-*": 3, "slow": (0, 1), "join": 1},
                      completed={"slow": 0},
                      before=(("copy-*", "join"), ("join.start", "slow.end")),
                      min_gap=(("copy-1", "join", 0.0),))
    rec = Recorder()
    with use(rec):
        cm = span("slow")
        cm.__enter__()  # a loser that has not finished when the run is checked
        for i in (1, 2, 3):
            mark(f"copy-{i}")
        mark("join")
    assert check_trace(exp, rec.trace()) == []
    # now slow finishes before join starts: the discriminator ordering is broken
    rec2 = Recorder()
    with use(rec2):
        mark("slow")
        for i in (1, 2, 3):
            mark(f"copy-{i}")
        mark("join")
    text = "\n".join(check_trace(exp, rec2.trace()))
    assert "expected join.start before slow.end" in text
    assert "'slow' expected to complete 0 time(s), completed 1" in text


def test_min_gap_detects_a_short_sleep():
    rec = Recorder()
    with use(rec):
        mark("before")
        mark("after")
    diffs = check_trace(TraceExpect(runs={"before": 1, "after": 1}, min_gap=(("before", "after", 0.2),)), rec.trace())
    assert len(diffs) == 1 and "at least 0.2s" in diffs[0]


def test_max_in_flight_across_tasks_and_threads():
    async def body(name: str) -> None:
        with span(name):
            await asyncio.sleep(0.05)

    async def main() -> None:
        await asyncio.gather(*(body("w") for _ in range(3)))

    with recording() as rec:
        asyncio.run(main())
        threads = [threading.Thread(target=lambda: mark("t")) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    tr = rec.trace()
    assert tr.max_in_flight("w") == 3
    assert tr.runs("w") == 3 and tr.completed("t") == 4


def test_failing_body_ends_span_not_ok():
    with recording() as rec:
        with pytest.raises(ValueError):
            with span("bad"):
                raise ValueError("x")
    tr = rec.trace()
    assert tr.runs("bad") == 1 and tr.completed("bad") == 0


def test_no_recorder_means_no_effect(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with span("nothing"):
        pass  # must not raise


def test_file_recorder_across_processes(tmp_path, monkeypatch):
    path = tmp_path / "trace.jsonl"
    code = (
        "from scenarios.trace import span\n"
        "import sys\n"
        "with span(sys.argv[1]):\n    pass\n"
    )
    env = {**os.environ, ENV_VAR: str(path)}
    for name in ("p1", "p2"):
        subprocess.run([sys.executable, "-c", code, name], env=env, check=True)
    monkeypatch.setenv(ENV_VAR, str(path))
    with use(None):  # no in-memory recorder (another test in this worker may have left one)
        mark("parent")
    with path.open("a") as f:
        f.write('{"kind": "start", "na')  # a torn line from a killed writer is ignored
    tr = load(path)
    assert tr.names() == ["p1", "p2", "parent"]
    assert len({s.pid for s in tr.spans}) == 3  # two children and this process
    assert KillPoint("p*", "end", count=2).reached(tr)
    assert not KillPoint("p*", "end", count=4).reached(tr)


def test_scenario_validation_errors():
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        Scenario(id="x", title="x", family="nope", expect=Expect(status="success"),  # type: ignore[arg-type]
                 workflow_reason="r", native_reason="r")
    with pytest.raises(ValueError, match="exactly one of workflow_factory and workflow_reason"):
        Scenario(id="x", title="x", family="data", expect=Expect(status="success"), native_reason="r")
    with pytest.raises(ValueError, match="unknown action 'pause'"):
        _scenario(Expect(status="success"), actions=(("pause", 1),))
    with pytest.raises(ValueError, match="bad pattern id 'wcp1'"):
        _scenario(Expect(status="success"), wcp=("wcp1",))
    assert hook_token("r1", ["a", "b"], 2) == "r1/a.b#2"


async def test_concurrent_recordings_in_one_process_stay_separate():
    async def cell(name: str) -> Trace:
        with recording() as rec:
            async def body() -> None:
                with span(name):
                    await asyncio.sleep(0.02)

            await asyncio.gather(asyncio.ensure_future(body()), body())
            return rec.trace()

    a, b = await asyncio.gather(cell("a"), cell("b"))
    assert a.names() == ["a"] and a.runs("a") == 2
    assert b.names() == ["b"] and b.runs("b") == 2
