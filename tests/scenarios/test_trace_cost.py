"""Trace queries and check_trace cost linear work in the number of spans (counted, not timed)."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from scenarios.base import KillPoint, TraceExpect
from scenarios.check import check_trace
from scenarios.trace import Recorder, Trace, TraceEvent


def _chain(n: int) -> Trace:
    """n sequential completed spans inc-1..inc-n (hand-made events, no recorder)."""
    events = []
    for i in range(1, n + 1):
        events.append(TraceEvent(2 * i - 2, "start", f"inc-{i}", f"s{i}", float(i), 1))
        events.append(TraceEvent(2 * i - 1, "end", f"inc-{i}", f"s{i}", float(i) + 0.5, 1, True))
    return Trace(events)


def _chain_expect(n: int) -> TraceExpect:
    # the scale-chain shape: one glob for every step plus one exact name per step
    runs: dict[str, Any] = {"inc-*": n}
    runs.update({f"inc-{i}": 1 for i in range(1, n + 1)})
    return TraceExpect(runs=runs, completed={"inc-*": n}, max_in_flight={"*": 1},
                       before=(("inc-1", f"inc-{n}"),), strict=True)


@pytest.fixture
def fnmatch_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = fnmatch.fnmatchcase

    def counting(name: str, pat: str) -> bool:
        calls[0] += 1
        return real(name, pat)

    monkeypatch.setattr(fnmatch, "fnmatchcase", counting)
    return calls


def _cost(n: int, fnmatch_calls: list[int]) -> tuple[int, int, list[str]]:
    trace = _chain(n)
    fnmatch_calls[0] = 0
    diffs = check_trace(_chain_expect(n), trace)
    return fnmatch_calls[0], trace.stats["spans_scanned"], diffs


def test_check_trace_of_1000_spans_is_linear(fnmatch_calls: list[int]) -> None:
    f100, s100, d100 = _cost(100, fnmatch_calls)
    f1000, s1000, d1000 = _cost(1000, fnmatch_calls)
    assert d100 == [] and d1000 == []
    # globs "inc-*" and "*" are matched against the distinct names once each (runs and strict
    # reuse them): about 3 calls per name, not one per (name, span) pair (the old 2,000,000)
    assert f1000 <= 3 * 1000 + 10
    assert f1000 <= 11 * f100
    # every pattern's spans are visited once: the glob (n) + "*" (n) + n exact names (1 each)
    assert s1000 == 3 * 1000
    assert s100 == 3 * 100


def test_exact_names_need_no_fnmatch(fnmatch_calls: list[int]) -> None:
    trace = _chain(1000)
    fnmatch_calls[0] = 0
    assert [trace.runs(f"inc-{i}") for i in (1, 500, 1000)] == [1, 1, 1]
    assert trace.completed("inc-7") == 1
    assert trace.runs("nope") == 0
    assert fnmatch_calls[0] == 0


def test_repeated_queries_reuse_the_match(fnmatch_calls: list[int]) -> None:
    trace = _chain(200)
    fnmatch_calls[0] = 0
    for _ in range(50):
        assert trace.runs("inc-1*") == 111  # inc-1, inc-10..19, inc-100..199
    assert fnmatch_calls[0] == 200
    assert trace.stats["matches"] == 1


def test_summary_only_when_something_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = _chain(50)
    calls = [0]
    real = Trace.summary

    def counting(self: Trace) -> dict[str, str]:
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(Trace, "summary", counting)
    assert check_trace(TraceExpect(runs={"inc-*": 50}), trace) == []
    assert calls[0] == 0
    diffs = check_trace(TraceExpect(runs={"inc-*": 49}), trace)
    assert calls[0] == 1
    assert len(diffs) == 1 and "started 50" in diffs[0]
    assert "'inc-1': '1/1'" in diffs[0] and "(20 more names)" in diffs[0]


def test_repr_is_counts_only() -> None:
    trace = _chain(1000)
    text = repr(trace)
    assert text == "Trace(2000 events, 1000 spans, 1000 names)"


def test_glob_matches_and_order_are_kept() -> None:
    rec = Recorder()
    for name in ("copy-1", "a", "copy-2", "a", "x[1]"):
        rec.record("start", name, name + str(len(rec.events())))
    trace = rec.trace()
    assert trace.runs("copy-*") == 2
    assert trace.runs("a") == 2
    assert trace.runs("x[1]") == 1  # a name with glob characters matches itself
    assert [s.name for s in trace._match("*")] == ["copy-1", "a", "copy-2", "a", "x[1]"]
    assert trace.names() == ["copy-1", "a", "copy-2", "x[1]"]
    assert trace.summary() == {"copy-1": "1/0", "a": "2/0", "copy-2": "1/0", "x[1]": "1/0"}
    assert trace.ended("*") == 0


def test_strict_flags_unexpected_names() -> None:
    trace = _chain(3)
    diffs = check_trace(TraceExpect(runs={"inc-1": 1, "inc-2": 1}, strict=True), trace)
    assert len(diffs) == 1 and diffs[0].startswith("trace: unexpected steps ran: ['inc-3']")


def test_kill_point_counts_ended_spans() -> None:
    rec = Recorder()
    rec.record("start", "step-a", "1")
    rec.record("end", "step-a", "1", True)
    rec.record("start", "step-b", "2")
    trace = rec.trace()
    assert KillPoint("step-*", "end", 1).reached(trace)
    assert not KillPoint("step-*", "end", 2).reached(trace)
    assert KillPoint("step-*", "start", 2).reached(trace)
