"""Driving one scenario on one engine: start the run, then play the scenario's actions.

- Ordinary scenarios: `scenarios.drive.drive_engine` starts the run through `engine.run` and
  plays the actions (resume -> `engine.resume`, cancel_after -> `engine.cancel`), recording the
  side-effect trace in memory (`drive_actions`).
- Scenarios with a `durability` spec: the protocol of `scenarios.base.DurabilitySpec`, with
  child processes (`python -m harness.crashrun`) sharing the cell's SQLite file and trace file:
  start (A, SIGKILLed at the kill point), optional resume (B), recover (C) (`drive_durable`).
  An engine that cannot recover says so by raising `Unsupported` in C: measured by trying.

It decides no verdict: it returns the final result, the trace and checkpoint differences, or
lets the engine's exception (`Unsupported` or anything else) propagate to `harness.runner`.
Also owns `generated_source` (the codegen source shown in the HTML report).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cells import ExceptionInfo


class NotApplicable(Exception):
    """The scenario does not apply to this engine (verdict `n/a`), with the reason."""


@dataclass
class Outcome:
    """What a driven scenario produced: the final result and the side-effect trace."""

    result: Any
    trace: Any
    run_id: str | None = None
    native: bool = False  # the result comes from the native definition (no Mastra step records)
    extra_diff: list[str] = field(default_factory=list)  # e.g. failed checkpoints


SOURCE_LIMIT = 20_000


def generated_source(engine: Any, scenario: Any) -> str | None:
    """The Python source a compiling engine makes of the scenario's workflow, if it has one
    (cut after `SOURCE_LIMIT` characters: `wfbench codegen <scenario>` prints all of it)."""
    src = _full_source(engine, scenario)
    if src is None or len(src) <= SOURCE_LIMIT:
        return src
    cut = src.rfind("\n", 0, SOURCE_LIMIT) + 1 or SOURCE_LIMIT
    return (src[:cut] + f"# ... {len(src) - cut} more characters: run "
            f"`wfbench codegen {getattr(scenario, 'id', 'TARGET')}` for the whole source\n")


def _full_source(engine: Any, scenario: Any) -> str | None:
    fn = next((f for f in (getattr(engine, n, None)
                           for n in ("generated_source", "source", "source_for")) if callable(f)),
              None)
    if fn is None:
        name = _engine_name(engine)
        if not name.startswith("codegen") or getattr(scenario, "workflow", None) is None:
            return None
        try:
            from engines.codegen.compiler import generate_source

            return generate_source(scenario.workflow, strict=name == "codegen-strict")
        except Exception:  # noqa: BLE001 - refusals are reported by run(), not here
            return None
    try:
        src = fn(scenario)
    except Exception:  # noqa: BLE001 - refusals are reported by run(), not here
        return None
    return src if isinstance(src, str) else None


@dataclass
class ChildRefs:
    """How a child process rebuilds the engine and the scenario (for durability cells)."""

    engine_name: str
    engine_factory: str | None = None  # "module:attr"; None = engines.get_engine
    scenario_lookup: str | None = None  # "module:attr"; None = scenarios.get_scenario


class ChildFailure(Exception):
    """A phase of a durability cell crashed in its child process; `info` is its exception."""

    def __init__(self, phase: str, info: ExceptionInfo) -> None:
        super().__init__(f"{phase} phase: {info.type}: {info.message}")
        self.info = ExceptionInfo(info.type, f"{phase} phase: {info.message}", info.traceback)


async def drive(engine: Any, scenario: Any, workdir: Path,
                refs: ChildRefs | None = None) -> Outcome:
    """Start the scenario's run on `engine` and apply each of its actions in order.

    A scenario with a `durability` spec is run through child processes instead (`drive_durable`).
    """
    if getattr(scenario, "durability", None) is not None:
        return await drive_durable(scenario, workdir, refs or ChildRefs(_engine_name(engine)))
    return await drive_actions(engine, scenario, refs.engine_name if refs else _engine_name(engine))


async def drive_actions(engine: Any, scenario: Any, engine_name: str) -> Outcome:
    """Run the scenario through `engine` with `scenarios.drive.drive_engine` (start, then the
    actions: resume -> `engine.resume`, cancel_after -> `engine.cancel`), which records the
    side-effect trace in memory and returns checkpoint differences."""
    from scenarios import drive as sdrive

    native = engine_name == "native"
    check_first = getattr(engine, "check", None)
    if callable(check_first):
        check_first(scenario)  # refusals (Unsupported) before anything runs
    run_id = f"{getattr(scenario, 'id', 'run')}-{engine_name}"
    async with engine_session(engine):
        out = await sdrive.drive_engine(scenario, engine, run_id=run_id, native=native,
                                        target_ref=getattr(scenario, "id", None))
    return Outcome(result=out.result, trace=out.trace, run_id=out.run_id or run_id,
                   native=native, extra_diff=list(out.diffs))


@contextlib.asynccontextmanager
async def engine_session(engine: Any) -> AsyncIterator[Any]:
    """`async with engine:` for engines that are async context managers (temporal: one
    in-process worker for the whole cell, so a resume sent while the run is still going does
    not start a second worker on the same task queue), else nothing."""
    if hasattr(engine, "__aenter__") and hasattr(engine, "__aexit__"):
        async with engine:
            yield engine
    else:
        yield engine


def _engine_name(engine: Any) -> str:
    return str(getattr(engine, "name", "") or type(engine).__name__)


def _trace_load(path: Path) -> Any:
    from scenarios.trace import load

    return load(path)


async def _child(phase: str, refs: ChildRefs, scenario_id: str, run_id: str, workdir: Path,
                 env: dict[str, str], action: Any = None, *, kill: Any = None,
                 trace_file: Path | None = None, deadline_s: float = 120.0) -> dict[str, Any] | None:
    """Run one phase in a child process. With `kill`, SIGKILL it once the trace shows the kill
    point (returns None then). Otherwise wait for it and return its outcome record."""
    out = workdir / f"{phase}.json"
    args = [sys.executable, "-m", "harness.crashrun", phase, refs.engine_name, scenario_id,
            run_id, str(out)]
    if action is not None:
        args.append(json.dumps(action))
    err_path = workdir / f"{phase}.stderr"
    with open(err_path, "wb") as err_file:  # a file, not a pipe: a chatty child never blocks
        proc = await asyncio.create_subprocess_exec(*args, env=env, cwd=str(workdir),
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=err_file)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    killed = False
    try:
        while proc.returncode is None:
            if kill is not None and trace_file is not None and kill.reached(_trace_load(trace_file)):
                if kill.delay:
                    await asyncio.sleep(kill.delay)
                killed = _kill(proc)
                await proc.wait()
                break
            if loop.time() > deadline:
                raise TimeoutError(f"{phase} phase did not finish within {deadline_s:g} s")
            try:
                await asyncio.wait_for(proc.wait(), 0.01)
            except TimeoutError:
                pass
    finally:
        if proc.returncode is None:
            _kill(proc)
            await proc.wait()
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    if killed:
        return None
    if not out.exists():
        tail = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise ChildFailure(phase, ExceptionInfo("ChildProcessError",
                                                f"no outcome written ({tail[0]})", stderr))
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


_TERMINAL = ("success", "failed", "canceled")


def _status(result: Any) -> Any:
    return result.get("status") if isinstance(result, dict) else getattr(result, "status", None)


def _kill(proc: Any) -> bool:
    """SIGKILL `proc`; False when it had already exited on its own."""
    try:
        proc.kill()
    except ProcessLookupError:
        return False
    return True


def _raise_for(phase: str, data: dict[str, Any]) -> None:
    if data.get("outcome") == "unsupported":
        from engines import Unsupported

        raise Unsupported(str(data.get("reason")))
    if data.get("outcome") == "error":
        raise ChildFailure(phase, ExceptionInfo.from_dict(data.get("exception") or {}))


async def drive_durable(scenario: Any, workdir: Path, refs: ChildRefs) -> Outcome:
    """The DurabilitySpec protocol (scenarios.base): start in process A, SIGKILL A at the kill
    point, optionally send a resume from process B, recover in process C, check the result
    and the whole trace file. An engine that cannot recover raises `Unsupported` in C."""
    spec = scenario.durability
    trace_file = workdir / "trace.jsonl"
    env = dict(os.environ)
    env["WFBENCH_DB"] = str(workdir / "runs.db")
    env["WFBENCH_TRACE_FILE"] = str(trace_file)
    if refs.engine_factory:
        env["WFBENCH_ENGINE_FACTORY"] = refs.engine_factory
    if refs.scenario_lookup:
        env["WFBENCH_SCENARIO_LOOKUP"] = refs.scenario_lookup
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    run_id = f"{scenario.id}-{refs.engine_name}"
    extra: list[str] = []
    started = await _child("start", refs, scenario.id, run_id, workdir, env,
                           kill=spec.kill, trace_file=trace_file)
    if started is not None:  # process A ended on its own before it could be killed
        _raise_for("start", started)
        status = _status(started.get("result"))
        if not spec.kill.reached(_trace_load(trace_file)):
            extra.append(f"the kill point ({spec.kill.event} #{spec.kill.count} of "
                         f"{spec.kill.name!r}) was never reached: the run ended before it")
        elif status in _TERMINAL:
            extra.append(f"the run finished ({status}) before it could be killed at "
                         f"{spec.kill.name!r}: recovery was not exercised")
        # else: the run suspended and its process ended, as a killed one would have
    if spec.resume is not None:
        kind, arg = spec.resume
        resumed = await _child("resume", refs, scenario.id, run_id, workdir, env, action=arg)
        assert resumed is not None
        _raise_for("resume", resumed)
        if _status(resumed.get("result")) in _TERMINAL:
            # the resume ran the run to its end in process B: nothing is left to recover
            return Outcome(result=resumed.get("result"), trace=_trace_load(trace_file),
                           run_id=run_id, native=refs.engine_name == "native", extra_diff=extra)
    env_c = dict(env)
    env_c.update({str(k): str(v) for k, v in (spec.recover_env or {}).items()})
    recovered = await _child("recover", refs, scenario.id, run_id, workdir, env_c)
    assert recovered is not None
    _raise_for("recover", recovered)
    return Outcome(result=recovered.get("result"), trace=_trace_load(trace_file), run_id=run_id,
                   native=refs.engine_name == "native", extra_diff=extra)
