"""`check(scenario, result, trace) -> list[str]`: compare a run with a scenario's expectations.

`result` is a `flow.WorkflowResult` (or anything with the same attributes: status, result,
error, steps, suspended, state; or its `to_dict()` form). `trace` is a `scenarios.trace.Trace`
(or None when no trace was recorded: then trace expectations are reported as unchecked).
Every difference becomes one human-readable string; mismatched values carry a unified diff of
their pretty-printed JSON. An empty list means every expectation held.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from typing import Any

from scenarios.base import MISSING, Count, ErrorExpect, Expect, Scenario, StepExpect, TraceExpect
from scenarios.trace import Trace


def normalize(value: Any) -> Any:
    """JSON-like form for comparison: tuples -> lists, pydantic models and dataclasses -> dicts."""
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return normalize(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return normalize(dataclasses.asdict(value))
    return value


def matches(expected: Any, actual: Any) -> bool:
    """Structural equality where `ANY` in `expected` matches anything."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping) or set(expected) != set(actual):
            return False
        return all(matches(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        return all(matches(e, a) for e, a in zip(expected, actual, strict=True))
    if expected.__class__.__name__ == "_Any":
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def _pretty(v: Any) -> list[str]:
    return json.dumps(v, indent=2, sort_keys=True, default=repr).splitlines()


def value_diff(what: str, expected: Any, actual: Any) -> str:
    """'<what> differs' plus a unified diff of the pretty-printed values."""
    diff = difflib.unified_diff(_pretty(expected), _pretty(actual), "expected", "actual", lineterm="")
    return f"{what} differs:\n" + "\n".join(diff)


def _compare(what: str, expected: Any, actual: Any, out: list[str]) -> None:
    exp, act = normalize(expected), normalize(actual)
    if not matches(exp, act):
        out.append(value_diff(what, exp, act))


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def error_parts(err: Any) -> tuple[str | None, str]:
    """(class name, message) of an exception, an {"name","message"} dict or a string."""
    if err is None:
        return None, ""
    if isinstance(err, BaseException):
        return type(err).__name__, str(err)
    if isinstance(err, Mapping):
        return err.get("name"), str(err.get("message", ""))
    return None, str(err)


def _check_error(what: str, exp: ErrorExpect, err: Any, out: list[str]) -> None:
    if err is None:
        out.append(f"{what}: expected an error {_describe_error(exp)}, got none")
        return
    name, message = error_parts(err)
    if exp.name is not None and name != exp.name:
        out.append(f"{what}: expected error class {exp.name!r}, got {name!r} ({message!r})")
    if exp.message is not None and exp.message not in message:
        out.append(f"{what}: expected the error message to contain {exp.message!r}, got {message!r}")


def _describe_error(exp: ErrorExpect) -> str:
    parts = []
    if exp.name:
        parts.append(exp.name)
    if exp.message:
        parts.append(f"containing {exp.message!r}")
    return " ".join(parts) or "(any)"


def _count_ok(exp: Count, n: int) -> bool:
    if isinstance(exp, tuple):
        return exp[0] <= n <= exp[1]
    return n == exp


def _count_text(exp: Count) -> str:
    return f"between {exp[0]} and {exp[1]}" if isinstance(exp, tuple) else str(exp)


def _anchor(trace: Trace, ref: str, side: str) -> tuple[str, str]:
    name, _, which = ref.rpartition(".")
    if which in ("start", "end") and name:
        return name, which
    return ref, ("end" if side == "left" else "start")


def _summary_text(trace: Trace, limit: int = 30) -> str:
    """`trace.summary()` for a message, cut after `limit` names."""
    items = list(trace.summary().items())
    text = ", ".join(f"{n!r}: {v!r}" for n, v in items[:limit])
    if len(items) > limit:
        text += f", ... ({len(items) - limit} more names)"
    return "{" + text + "}"


def check_trace(exp: TraceExpect, trace: Trace | None) -> list[str]:
    """Differences between a `TraceExpect` and a recorded trace.

    Linear in the number of spans (see `Trace`); the trace summary is only computed when a
    difference is reported."""
    if trace is None:
        return ["trace: expected side effects but no trace was recorded"]
    out: list[str] = []
    for pat, cnt in exp.runs.items():
        n = trace.runs(pat)
        if not _count_ok(cnt, n):
            out.append(f"trace: {pat!r} expected to start {_count_text(cnt)} time(s), started {n} "
                       f"(trace: {_summary_text(trace)})")
    for pat, cnt in exp.completed.items():
        n = trace.completed(pat)
        if not _count_ok(cnt, n):
            out.append(f"trace: {pat!r} expected to complete {_count_text(cnt)} time(s), completed {n} "
                       f"(trace: {_summary_text(trace)})")
    if exp.strict:
        expected_names: set[str] = set()
        for p in exp.runs:
            expected_names.update(trace.matching_names(p))
        extra = [n for n in trace.names() if n not in expected_names]
        if extra:
            out.append(f"trace: unexpected steps ran: {extra} (trace: {_summary_text(trace)})")
    for pat, mx in exp.max_in_flight.items():
        got = trace.max_in_flight(pat)
        if got != mx:
            out.append(f"trace: largest number of {pat!r} in flight expected {mx}, got {got}")
    for p, q in exp.before:
        pn, pw = _anchor(trace, p, "left")
        qn, qw = _anchor(trace, q, "right")
        ps = trace.first_start(pn) if pw == "start" else trace.last_end(pn)
        qs = trace.first_start(qn) if qw == "start" else trace.last_end(qn)
        if ps is None:
            out.append(f"trace: ordering {p!r} before {q!r}: {pn!r} has no {pw}")
            continue
        if qs is None:
            if qw == "end":
                continue  # q has not ended (yet): p is before it
            out.append(f"trace: ordering {p!r} before {q!r}: {qn!r} never started")
            continue
        p_seq = ps.start_seq if pw == "start" else ps.end_seq
        q_seq = qs.start_seq if qw == "start" else qs.end_seq
        assert p_seq is not None and q_seq is not None
        if not p_seq < q_seq:
            out.append(f"trace: expected {pn}.{pw} before {qn}.{qw}, but it came after")
    for a, b, secs in exp.min_gap:
        ae, bs = trace.last_end(a), trace.first_start(b)
        if ae is None or bs is None or ae.end_t is None:
            out.append(f"trace: gap {a!r} -> {b!r}: {a if ae is None else b!r} missing")
            continue
        gap = bs.start_t - ae.end_t
        if gap < secs - 0.01:
            out.append(f"trace: expected at least {secs}s between the end of {a!r} and the start of {b!r}, got {gap:.3f}s")
    return out


def _check_step(sid: str, exp: StepExpect, rec: Any, out: list[str]) -> None:
    if rec is None:
        out.append(f"steps[{sid!r}]: expected a record, found none")
        return
    if exp.status is not None and _get(rec, "status") != exp.status:
        out.append(f"steps[{sid!r}].status: expected {exp.status!r}, got {_get(rec, 'status')!r}")
    for fname in ("output", "payload", "suspend_payload", "resume_payload"):
        e = getattr(exp, fname)
        if e is not MISSING:
            _compare(f"steps[{sid!r}].{fname}", e, _get(rec, fname), out)
    if exp.error is not None:
        _check_error(f"steps[{sid!r}].error", exp.error, _get(rec, "error"), out)


def _paths(value: Any) -> set[tuple[str, ...]]:
    if not value:
        return set()
    return {tuple(p) if not isinstance(p, str) else (p,) for p in value}


def check_result(expect: Expect, result: Any, *, native: bool = False) -> list[str]:
    """Differences between an `Expect` and a run result (without the trace)."""
    out: list[str] = []
    status = _get(result, "status")
    if status != expect.status:
        err = _get(result, "error")
        extra = f" (error: {error_parts(err)[0]}: {error_parts(err)[1]})" if err is not None else ""
        out.append(f"status: expected {expect.status!r}, got {status!r}{extra}")
    if expect.result is not MISSING:
        _compare("result", expect.result, _get(result, "result"), out)
    if expect.error is not None:
        _check_error("error", expect.error, _get(result, "error"), out)
    if native:
        return out
    steps = _get(result, "steps") or {}
    for sid, sexp in expect.steps.items():
        _check_step(sid, sexp, steps.get(sid), out)
    for sid in expect.absent_steps:
        if sid in steps:
            out.append(f"steps[{sid!r}]: expected no record (the step must not run), got status {_get(steps[sid], 'status')!r}")
    if expect.suspended is not None:
        exp_p, got_p = _paths(expect.suspended), _paths(_get(result, "suspended"))
        if exp_p != got_p:
            out.append(value_diff("suspended paths", sorted(map(list, exp_p)), sorted(map(list, got_p))))
    if expect.state is not MISSING:
        _compare("state", expect.state, _get(result, "state"), out)
    return out


def check(scenario: Scenario, result: Any, trace: Trace | None, *, native: bool = False) -> list[str]:
    """All differences between `scenario.expect` and a run (empty list = pass).

    `native=True` when `result` comes from the native definition: the Mastra step records,
    suspended paths and state are then not compared (a native run has none).
    """
    out = check_result(scenario.expect, result, native=native)
    if scenario.expect.trace is not None:
        out.extend(check_trace(scenario.expect.trace, trace))
    return out


def check_checkpoint(expected: Mapping[str, Any], result: Any, where: str, *, native: bool = False) -> list[str]:
    """Differences for an ("expect", {...}) action against an intermediate result."""
    out: list[str] = []
    if "status" in expected and _get(result, "status") != expected["status"]:
        out.append(f"{where}: status expected {expected['status']!r}, got {_get(result, 'status')!r}")
    if "suspended" in expected and not native:
        exp_p: set[tuple[str, ...]] = _paths(expected["suspended"])
        got_p = _paths(_get(result, "suspended"))
        if exp_p != got_p:
            out.append(value_diff(f"{where}: suspended paths", sorted(map(list, exp_p)), sorted(map(list, got_p))))
    return out


__all__ = [
    "check",
    "check_checkpoint",
    "check_result",
    "check_trace",
    "error_parts",
    "matches",
    "normalize",
    "value_diff",
]
