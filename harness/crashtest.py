"""`wfbench crash-test`: a SIGKILL campaign against the durable engines (codegen, native).

Owns the campaign: each trial picks, from the seed, a scenario among the durable-capable ones
(`candidates`) and a kill point, runs the scenario on a fresh `SqliteWorld` in a child process,
SIGKILLs that process at the kill point, starts a worker in a new process, and checks:

- the run finishes with the expected result (`scenarios.check.check_result`);
- no completed step ran again: no step whose `step_completed` was in the log at the kill starts
  again, neither in the log nor in the side-effect trace;
- a step in flight at the kill ran at most twice (per attempt), and no other step ran twice;
- the event log is well-formed (`log_problems`).

Kill points (`KILL_MODES`): `after-commit` (right after the world commit that brings the run's
log to k events), `before-commit` (right before the commit that would), `span` (right after the
k-th side-effect trace record: inside or right after a step body) and `timer` (k ms after the
run was created, from a thread: anywhere, also inside a SQLite transaction). The first three are
exact, so a seed reproduces the same kill; the child kills itself with SIGKILL (no clean-up runs).

The trace records of the children are annotated with the durable step that wrote them
(correlation id and attempt from `durable.get_step_metadata()`), which is how a side effect is
attributed to a step. Child processes: ``python -m harness.crashtest start|worker ...``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

DURABLE_ENGINES: tuple[str, ...] = ("codegen", "native")
KILL_MODES: tuple[str, ...] = ("after-commit", "before-commit", "span", "timer")
TERMINAL_EVENTS = ("run_completed", "run_failed", "run_cancelled")
EXCLUDED: dict[str, str] = {
    "scale-chain-1000": "too long for a ~1 s trial",
    "scale-fanout-500": "too long for a ~1 s trial",
}
EXCLUDED_ON: dict[tuple[str, str], str] = {
    ("codegen", "time-sleep-until"): "its graph embeds the date it was built at (now + 0.3 s), so "
    "another process rebuilds a different workflow and refuses to replay the run (correct)",
}
RESULT_COUNTS_ATTEMPTS: dict[str, str] = {
    "err-retry-config": "the result is the attempt number",
    "err-retryable-error": "the result is the attempt number",
}
"""Scenarios whose result is the step's attempt number: a step re-run after a crash is one
more attempt (the reference: `step_started` increments `attempt`), so only the status is
compared."""
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# which scenarios


def candidates(engine: str) -> list[str]:
    """Ids of the scenarios a crash trial on `engine` can pick: the engine has a definition for
    them, they need no action from outside (resume, cancel) and no special recovery
    environment, and they are short (not in `EXCLUDED`)."""
    from scenarios import all_scenarios

    out = []
    for s in all_scenarios():
        if s.id in EXCLUDED or s.actions:
            continue
        if s.durability is not None and (s.durability.resume is not None or s.durability.recover_env):
            continue
        if (engine, s.id) in EXCLUDED_ON:
            continue
        if engine == "native" and s.native_ref is None:
            continue
        if engine != "native" and s.workflow_factory is None:
            continue
        out.append(s.id)
    return out


# ---------------------------------------------------------------------------------------------
# the event log


def log_problems(events: Sequence[Any]) -> list[str]:
    """What is wrong with a finished run's event log (empty = well-formed): `run_created`
    first, seq strictly increasing, exactly one terminal event and it is last, every
    `step_completed`/`step_failed` preceded by its `step_started`, at most one `step_completed`
    per correlation id, every `wait_completed` preceded by its `wait_created`, every
    `hook_received` by its `hook_created`."""
    out: list[str] = []
    if not events:
        return ["the log is empty"]
    if events[0].type != "run_created":
        out.append(f"first event is {events[0].type!r}, not 'run_created'")
    started: set[str] = set()
    completed: Counter[str] = Counter()
    waits: set[str] = set()
    hooks: set[str] = set()
    terminal = [i for i, e in enumerate(events) if e.type in TERMINAL_EVENTS]
    if len(terminal) != 1:
        out.append(f"{len(terminal)} terminal events ({[events[i].type for i in terminal]}), expected 1")
    elif terminal[0] != len(events) - 1:
        after = [e.type for e in events[terminal[0] + 1:]]
        out.append(f"events after the terminal {events[terminal[0]].type!r}: {after}")
    prev = None
    for e in events:
        if prev is not None and not e.seq > prev:
            out.append(f"seq not strictly increasing: {prev} then {e.seq}")
        prev = e.seq
        cid = e.correlation_id
        if e.type == "step_started":
            started.add(cid)
        elif e.type in ("step_completed", "step_failed"):
            if cid not in started:
                out.append(f"{e.type} of {cid} (seq {e.seq}) without a step_started before it")
            if e.type == "step_completed":
                completed[cid] += 1
        elif e.type == "wait_created":
            waits.add(cid)
        elif e.type == "wait_completed" and cid not in waits:
            out.append(f"wait_completed of {cid} (seq {e.seq}) without a wait_created before it")
        elif e.type == "hook_created":
            hooks.add(cid)
        elif e.type == "hook_received" and cid not in hooks:
            out.append(f"hook_received of {cid} (seq {e.seq}) without a hook_created before it")
    dup = sorted(c for c, n in completed.items() if n > 1)
    if dup:
        out.append(f"step_completed more than once for {dup}")
    return out


# ---------------------------------------------------------------------------------------------
# trials


@dataclass
class TrialPlan:
    """What one trial does (drawn from the seed)."""

    index: int
    engine: str
    scenario: str
    mode: str
    k: int

    @property
    def run_id(self) -> str:
        return f"crash-{self.engine}-{self.index}"


@dataclass
class TrialResult:
    """What one trial found. `problems` empty = pass."""

    index: int
    engine: str
    scenario: str
    mode: str
    k: int
    killed: bool = False
    events_at_kill: int = 0
    completed_at_kill: int = 0
    in_flight_at_kill: int = 0
    rerun: int = 0  # steps in flight at the kill that ran again
    final_status: str | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class Baseline:
    """One uncrashed run of a scenario on an engine: sizes the kill points."""

    events: int
    trace_records: int
    seconds: float


_BASELINES: dict[tuple[str, str], Baseline] = {}


async def baseline(engine: str, scenario_id: str) -> Baseline:
    """Run the scenario once without a crash (in this process, a temporary SqliteWorld) and
    count its log events and trace records (cached per process)."""
    key = (engine, scenario_id)
    if key not in _BASELINES:
        _BASELINES[key] = await _baseline(engine, scenario_id)
    return _BASELINES[key]


async def _baseline(engine: str, scenario_id: str) -> Baseline:
    import durable
    from engines import get_engine
    from harness.targets import install_engine_resolver
    from scenarios import get_scenario
    from scenarios.trace import recording

    install_engine_resolver()
    scenario = get_scenario(scenario_id)
    with tempfile.TemporaryDirectory(prefix="wfbench-crash-base-") as tmp:
        world = durable.SqliteWorld(Path(tmp) / "base.db")
        eng = get_engine(engine, world=world)
        run_id = f"baseline-{engine}-{scenario_id}"
        t0 = time.monotonic()
        with recording() as rec:
            await eng.run(scenario, **start_kwargs(engine, scenario, run_id))
        secs = time.monotonic() - t0
        n = len(world.list_events(run_id))
        world.close()
    return Baseline(events=n, trace_records=len(rec.events()), seconds=secs)


def start_kwargs(engine: str, scenario: Any, run_id: str) -> dict[str, Any]:
    """`engine.run` keyword arguments for a scenario (the calling conventions of
    `scenarios.base`): the native definition takes `native_kwargs()`, the Mastra-syntax one the
    input, initial state and request context; `target_ref` lets a worker rebuild it."""
    kw: dict[str, Any] = {"run_id": run_id}
    if engine == "native":
        kw["kwargs"] = scenario.native_kwargs()
        return kw
    kw.update(input_data=scenario.fresh_input(), target_ref=scenario.id)
    if scenario.initial_state is not None:
        kw["initial_state"] = dict(scenario.initial_state)
    if scenario.request_context is not None:
        kw["request_context"] = dict(scenario.request_context)
    return kw


async def plan_trials(engines: Sequence[str], trials: int, seed: int) -> list[TrialPlan]:
    """The trials of a campaign: split evenly across `engines` (in turn), each drawn from
    `random.Random(f"{seed}:{index}")`, so a seed always gives the same plans."""
    cands = {e: candidates(e) for e in engines}
    plans = []
    for i in range(trials):
        engine = engines[i % len(engines)]
        rng = random.Random(f"{seed}:{i}")
        sid = rng.choice(cands[engine])
        mode = rng.choice(KILL_MODES)
        base = await baseline(engine, sid)
        if mode == "after-commit":
            k = rng.randint(1, max(1, base.events - 1))
        elif mode == "before-commit":
            k = rng.randint(2, max(2, base.events))
        elif mode == "span":
            k = rng.randint(1, max(1, base.trace_records))
        else:
            k = rng.randint(0, max(1, int(base.seconds * 1000)))
        plans.append(TrialPlan(i, engine, sid, mode, k))
    return plans


def _child_env(db: Path, trace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["WFBENCH_DB"] = str(db)
    env["WFBENCH_TRACE_FILE"] = str(trace)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("WFBENCH_DEBUG", None)
    return env


async def _run_child(args: list[str], env: dict[str, str], cwd: Path,
                     timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.crashtest", *args, env=env, cwd=str(cwd),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -999, f"timed out after {timeout:g} s"
    rc = proc.returncode if proc.returncode is not None else -998
    return rc, err.decode(errors="replace")


def _tail(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


async def run_trial(plan: TrialPlan, workdir: Path, timeout: float = 60.0) -> TrialResult:
    """Run one trial in `workdir` (its own database and trace file)."""
    import durable
    from scenarios import get_scenario
    from scenarios.check import check_result
    from scenarios.trace import load_events

    res = TrialResult(plan.index, plan.engine, plan.scenario, plan.mode, plan.k)
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    db, trace = workdir / "runs.db", workdir / "trace.jsonl"
    env = _child_env(db, trace)
    rc, err = await _run_child(["start", plan.engine, plan.scenario, plan.run_id, plan.mode,
                                str(plan.k)], env, workdir, timeout)
    res.killed = rc == -signal.SIGKILL
    if not res.killed and rc != 0:
        res.problems.append(f"the run's process exited with {rc}: {_tail(err)}")
        res.seconds = time.monotonic() - t0
        return res
    world = durable.SqliteWorld(db)
    try:
        try:
            before = world.list_events(plan.run_id)
        except Exception as exc:  # noqa: BLE001 - reported
            res.problems.append(f"the log cannot be read after the kill: {type(exc).__name__}: {exc}")
            return res
        res.events_at_kill = len(before)
        last_seq = before[-1].seq if before else 0
        done_at_kill = {str(e.correlation_id) for e in before if e.type == "step_completed"}
        started_at_kill = {str(e.correlation_id) for e in before if e.type == "step_started"}
        ended_at_kill = done_at_kill | {str(e.correlation_id) for e in before
                                        if e.type == "step_failed"}
        res.completed_at_kill = len(done_at_kill)
        records_at_kill = len(load_events(trace))
        if not before:
            # killed before the run was created: nothing was recorded, nothing to recover
            res.seconds = time.monotonic() - t0
            return res
        rc, err = await _run_child(["worker", plan.engine, plan.run_id], env, workdir, timeout)
        if rc != 0:
            res.problems.append(f"the worker exited with {rc}: {_tail(err)}")
            return res
        rec = world.get_run(plan.run_id)
        res.final_status = rec.status
        if rec.status not in ("completed", "failed", "cancelled"):
            res.problems.append(f"the worker left the run {rec.status!r}, not finished")
            return res
        events = world.list_events(plan.run_id)
        res.problems += [f"log: {p}" for p in log_problems(events)]
        again = sorted({str(e.correlation_id) for e in events
                        if e.seq > last_seq and e.type == "step_started"
                        and e.correlation_id in done_at_kill})
        if again:
            res.problems.append(f"log: steps completed before the kill started again: {again}")
        res.problems += _trace_problems(load_events(trace), records_at_kill, done_at_kill, events,
                                        last_seq, res)
        res.in_flight_at_kill = max(res.in_flight_at_kill, len(started_at_kill - ended_at_kill))
        scenario = get_scenario(plan.scenario)
        result = await final_result(plan.engine, scenario, world, plan.run_id)
        if plan.scenario in RESULT_COUNTS_ATTEMPTS:
            if result.status != scenario.expect.status:
                res.problems.append(f"result: status expected {scenario.expect.status!r}, "
                                    f"got {result.status!r}")
        else:
            res.problems += [f"result: {d}" for d in
                             check_result(scenario.expect, result, native=plan.engine == "native")]
    finally:
        world.close()
        res.seconds = time.monotonic() - t0
    return res


def _trace_problems(records: Sequence[Any], at_kill: int, done_at_kill: set[str],
                    events: Sequence[Any], last_seq: int, res: TrialResult) -> list[str]:
    """Side effects, attributed to step executions by the annotation the children add: an
    execution is (correlation id, attempt, process). Checks:

    - a step completed at the kill has no execution after it;
    - each attempt of a step executes in one process only (a re-run has its own step_started);
    - before and after the kill, a step executes at most 1 + (its failed attempts in that
      phase) times: so a step in flight at the kill runs at most twice (once before, once
      after), and no step runs twice without a failure or a crash in between.
    """
    out: list[str] = []
    execs: dict[str, dict[tuple[int, int], bool]] = {}  # cid -> (attempt, pid) -> after kill
    names: dict[str, str] = {}
    for i, r in enumerate(records):
        if r.kind != "start" or not isinstance(r.data, dict) or "crash_cid" not in r.data:
            continue
        cid = str(r.data["crash_cid"])
        key = (int(r.data.get("crash_attempt") or 0), int(r.pid))
        execs.setdefault(cid, {}).setdefault(key, i >= at_kill)
        names.setdefault(cid, r.name)
    failures: Counter[tuple[str, bool]] = Counter()
    for e in events:
        if e.type in ("step_retrying", "step_failed"):
            failures[(str(e.correlation_id), e.seq > last_seq)] += 1
    again = sorted(cid for cid, ex in execs.items() if cid in done_at_kill and any(ex.values()))
    if again:
        out.append("trace: steps completed before the kill ran again after it: "
                   + ", ".join(f"{c} ({names[c]})" for c in again))
    rerun = 0
    in_flight = 0
    for cid, ex in execs.items():
        attempts = Counter(att for att, _ in ex)
        twice = sorted(a for a, n in attempts.items() if n > 1)
        if twice:
            out.append(f"trace: step {cid} ({names[cid]}) attempt(s) {twice} executed in more "
                       "than one process")
        for after in (False, True):
            n = sum(1 for v in ex.values() if v is after)
            allowed = 1 + failures[(cid, after)]
            if n > allowed:
                when = "after" if after else "before"
                out.append(f"trace: step {cid} ({names[cid]}) executed {n} times {when} the kill "
                           f"with {allowed - 1} failed attempt(s)")
        if cid not in done_at_kill and any(not v for v in ex.values()):
            in_flight += 1
            if any(ex.values()):
                rerun += 1
    res.in_flight_at_kill = in_flight
    res.rerun = rerun
    return out


async def final_result(engine: str, scenario: Any, world: Any, run_id: str) -> Any:
    """The finished run as a `flow.WorkflowResult`, the way the engine reports it (its
    `recover`, which returns at once for a finished run), else from the run record."""
    from engines import get_engine

    eng = get_engine(engine, world=world)
    recover = getattr(eng, "recover", None)
    if recover is not None:
        return await recover(scenario, run_id)
    import durable
    from flow.results import WorkflowResult

    rec = world.get_run(run_id)
    status: Any = {"completed": "success", "failed": "failed", "cancelled": "canceled"}[rec.status]
    error = None
    if rec.status == "failed":
        try:
            await durable.get_run(run_id, world=world).return_value()
        except durable.WorkflowRunFailedError as exc:
            error = getattr(exc, "cause", exc)
        except Exception as exc:  # noqa: BLE001 - kept as the run's error
            error = exc
    return WorkflowResult(status=status, result=rec.output if status == "success" else None,
                          error=error, run_id=run_id)


# ---------------------------------------------------------------------------------------------
# campaign


@dataclass
class Campaign:
    """A finished campaign (what `reports/crash.json` holds)."""

    seed: int
    engines: list[str]
    trials: list[TrialResult]
    seconds: float

    def summary(self) -> dict[str, Any]:
        by_engine: dict[str, dict[str, int]] = {}
        for t in self.trials:
            d = by_engine.setdefault(t.engine, Counter())  # type: ignore[arg-type]
            d["trials"] += 1
            d["passed"] += t.passed
            d["killed"] += t.killed
            d["rerun_in_flight_steps"] += t.rerun
        return {
            "trials": len(self.trials),
            "passed": sum(t.passed for t in self.trials),
            "failed": sum(not t.passed for t in self.trials),
            "killed": sum(t.killed for t in self.trials),
            "finished_before_kill": sum(not t.killed for t in self.trials),
            "by_engine": {k: dict(v) for k, v in by_engine.items()},
            "by_mode": dict(Counter(t.mode for t in self.trials)),
            "scenarios": len({t.scenario for t in self.trials}),
            "seconds": round(self.seconds, 2),
            "mean_trial_seconds": round(sum(t.seconds for t in self.trials)
                                        / max(1, len(self.trials)), 2),
        }

    def to_dict(self) -> dict[str, Any]:
        engines = "" if tuple(self.engines) == DURABLE_ENGINES else "".join(
            f" --engine {e}" for e in self.engines)
        return {
            "command": f"wfbench crash-test --trials {len(self.trials)} --seed {self.seed}{engines}",
            "seed": self.seed,
            "engines": self.engines,
            "summary": self.summary(),
            "failures": [asdict(t) for t in self.trials if not t.passed],
            "trials": [asdict(t) for t in self.trials],
        }

    def to_json(self) -> str:
        """The report as JSON text: the summary indented, one line per trial."""
        data = self.to_dict()
        trials = data.pop("trials")
        head = json.dumps(data, indent=1)
        rows = ",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in trials)
        return head[:-2] + ',\n "trials": [\n' + rows + "\n ]\n}\n"


async def run_campaign(engines: Sequence[str], trials: int, seed: int, db_dir: Path,
                       jobs: int = 1, progress: Any = None, timeout: float = 60.0) -> Campaign:
    """Plan and run `trials` trials (`jobs` at a time); `progress(result)` after each."""
    t0 = time.monotonic()
    plans = await plan_trials(list(engines), trials, seed)
    sem = asyncio.Semaphore(max(1, jobs))

    async def one(p: TrialPlan) -> TrialResult:
        async with sem:
            try:
                r = await run_trial(p, db_dir / f"trial-{p.index:04d}", timeout)
            except Exception as exc:  # noqa: BLE001 - a crashed trial is a failed trial
                r = TrialResult(p.index, p.engine, p.scenario, p.mode, p.k,
                                problems=[f"trial crashed: {type(exc).__name__}: {exc}"])
            if progress is not None:
                progress(r)
            return r

    results = await asyncio.gather(*(one(p) for p in plans))
    return Campaign(seed, list(engines), sorted(results, key=lambda r: r.index),
                    time.monotonic() - t0)


def print_summary(campaign: Campaign) -> None:
    """A rich table: per engine and kill mode, trials / passed / killed / reruns."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    table = Table(title=f"crash-test: {len(campaign.trials)} trials, seed {campaign.seed}")
    for col in ("engine", "kill point", "trials", "passed", "failed", "killed",
                "in-flight steps rerun"):
        table.add_column(col, justify="left" if col in ("engine", "kill point") else "right")
    groups: dict[tuple[str, str], list[TrialResult]] = {}
    for t in campaign.trials:
        groups.setdefault((t.engine, t.mode), []).append(t)
    for (eng, mode), ts in sorted(groups.items()):
        failed = sum(not t.passed for t in ts)
        table.add_row(eng, mode, str(len(ts)), str(len(ts) - failed),
                      f"[red]{failed}[/red]" if failed else "0", str(sum(t.killed for t in ts)),
                      str(sum(t.rerun for t in ts)))
    console.print(table)
    for t in campaign.trials:
        if not t.passed:
            console.print(f"[red]FAIL[/red] trial {t.index} {t.engine} {t.scenario} "
                          f"{t.mode} k={t.k}: " + "; ".join(t.problems), markup=True,
                          highlight=False)
    s = campaign.summary()
    console.print(f"{s['passed']}/{s['trials']} trials passed ({s['killed']} killed, "
                  f"{s['finished_before_kill']} finished before the kill point) on "
                  f"{s['scenarios']} scenarios in {s['seconds']} s")


@click.command("crash-test")
@click.option("--engine", "-e", "engines", multiple=True,
              type=click.Choice(list(DURABLE_ENGINES)),
              help="Durable engine to crash (repeatable; default: codegen and native, trials "
                   "split between them).")
@click.option("--trials", "-n", type=click.IntRange(1, 100000), default=40, show_default=True,
              help="Number of trials.")
@click.option("--seed", "-s", type=int, default=0, show_default=True,
              help="Seed: the same seed picks the same scenarios and kill points.")
@click.option("--db-dir", type=click.Path(file_okay=False), default=None,
              help="Keep each trial's database and trace here (default: a temporary directory, "
                   "removed afterwards).")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Trials run at the same time.")
@click.option("--report", type=click.Path(dir_okay=False), default="reports/crash.json",
              show_default=True, help="Where to write the JSON report.")
def crash_test(engines: tuple[str, ...], trials: int, seed: int, db_dir: str | None,
               jobs: int, report: str) -> None:
    """SIGKILL durable runs at random points and check that a worker recovers them.

    Each trial picks (from the seed) a scenario and a kill point, runs the scenario in a
    subprocess on a fresh SQLite database, kills it, starts a worker in a new process and
    checks the result, that no completed step ran again, that an in-flight step ran at most
    twice, and that the event log is well-formed. Exit code 1 when a trial fails.

    \b
    Examples:
      wfbench crash-test --trials 40 --seed 1
      wfbench crash-test --engine native --trials 200 --seed 1 --jobs 2
      wfbench crash-test -n 5 --seed 7 --db-dir /tmp/crash   # keep the databases
    """
    chosen = list(engines) or list(DURABLE_ENGINES)
    tmp = None
    if db_dir is None:
        tmp = tempfile.mkdtemp(prefix="wfbench-crash-")
        base = Path(tmp)
    else:
        base = Path(db_dir)
        base.mkdir(parents=True, exist_ok=True)
    try:
        count = [0]

        def progress(r: TrialResult) -> None:
            count[0] += 1
            mark = "." if r.passed else "F"
            click.echo(mark, nl=count[0] % 50 == 0 or count[0] == trials, err=True)

        campaign = asyncio.run(run_campaign(chosen, trials, seed, base, jobs, progress))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(campaign)
    out = Path(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(campaign.to_json(), encoding="utf-8")
    click.echo(f"wrote {out}", err=True)
    if any(not t.passed for t in campaign.trials):
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# child processes


def _annotate_trace() -> None:
    """Make every trace record of this process carry the durable step that wrote it."""
    import durable
    from scenarios import trace as tr

    original = tr.FileRecorder.record

    def record(self: Any, kind: Any, name: str, span: str, ok: bool | None = None,
               data: Any = None) -> None:
        if kind == "start":
            try:
                meta = durable.get_step_metadata()
            except RuntimeError:
                meta = None
            if meta is not None:
                data = {"crash_cid": meta.step_id, "crash_attempt": meta.attempt,
                        "crash_run": meta.run_id, "data": data}
        original(self, kind, name, span, ok, data)
        _on_trace_record()

    tr.FileRecorder.record = record  # type: ignore[method-assign]


_KILL: dict[str, Any] = {"mode": None, "k": 0, "events": 0, "records": 0}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _on_trace_record() -> None:
    if _KILL["mode"] == "span":
        _KILL["records"] += 1
        if _KILL["records"] >= _KILL["k"]:
            _die()


def _instrument_world(world: Any, mode: str, k: int) -> None:
    """Wrap this process's world so it SIGKILLs itself at the kill point."""
    _KILL.update(mode=mode, k=k)
    create_run, commit = world.create_run, world.commit

    def counted(n: int, call: Any) -> Any:
        if mode == "before-commit" and _KILL["events"] + n >= k:
            _die()
        out = call()
        _KILL["events"] += n
        if mode == "after-commit" and _KILL["events"] >= k:
            _die()
        if mode == "timer" and n and _KILL["events"] == n:  # the run_created commit
            t = threading.Timer(k / 1000.0, _die)
            t.daemon = True
            t.start()
        return out

    def create_run_w(run: Any, owner: Any, lease_seconds: float) -> Any:
        return counted(1, lambda: create_run(run, owner, lease_seconds))

    def commit_w(run_id: str, owner: Any, batch: Any, lease_seconds: float,
                 require_running: bool = True) -> Any:
        n = len(batch.events)
        return counted(n, lambda: commit(run_id, owner, batch, lease_seconds, require_running))

    world.create_run = create_run_w
    world.commit = commit_w


def _child_start(engine: str, scenario_id: str, run_id: str, mode: str, k: int) -> int:
    import durable
    from engines import get_engine
    from harness.targets import install_engine_resolver
    from scenarios import get_scenario

    install_engine_resolver()
    _annotate_trace()
    world = durable.SqliteWorld(os.environ["WFBENCH_DB"])
    _instrument_world(world, mode, k)
    durable.set_world(world)
    scenario = get_scenario(scenario_id)
    eng = get_engine(engine, world=world)
    asyncio.run(eng.run(scenario, **start_kwargs(engine, scenario, run_id)))
    return 0


def _child_worker(engine: str, run_id: str) -> int:
    import durable
    from harness.targets import install_engine_resolver

    install_engine_resolver()
    _annotate_trace()
    world = durable.SqliteWorld(os.environ["WFBENCH_DB"])
    durable.set_world(world)
    loader: Any = None
    if engine.startswith("codegen"):
        from engines.codegen.engine import loader as codegen_loader

        loader = codegen_loader
    asyncio.run(_work_until_done(durable.Worker(world, loader=loader), world, run_id))
    return 0


async def _work_until_done(worker: Any, world: Any, run_id: str) -> None:
    """`worker.run(until_idle=True)` until the run has finished (a sleeping run is not due
    yet when the worker first looks)."""
    while True:
        await worker.run(until_idle=True)
        if world.get_run(run_id).status in ("completed", "failed", "cancelled"):
            return
        await asyncio.sleep(0.02)


def _child_main(argv: list[str]) -> int:
    if argv[:1] == ["start"] and len(argv) == 6:
        return _child_start(argv[1], argv[2], argv[3], argv[4], int(argv[5]))
    if argv[:1] == ["worker"] and len(argv) == 3:
        return _child_worker(argv[1], argv[2])
    print("usage: python -m harness.crashtest start ENGINE SCENARIO RUN_ID MODE K | "
          "worker ENGINE RUN_ID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
