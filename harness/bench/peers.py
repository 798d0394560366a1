"""Bench peers: other durable-workflow libraries running the equivalent hand-written workflows.

Owns `PEERS`, `unavailable(name)` (None, or why a peer is skipped: not installed), `version`,
and `measure(name, workload, plan, root) -> runner.Cell`. Each (peer, workload) runs in its own
subprocess (`python -m harness.bench.peers PEER KIND-SIZE ...`) on a fresh database in its own
directory, so a peer's process-wide state (DBOS is a singleton) never leaks between cells and a
hung peer is killed at the plan's timeout. The subprocess prints one JSON line:
`{"status": "ok", "times_s": [...], "cpu_s": [...]}` or `{"status": "unsupported"|"error", "reason": ...}`.

- `dbos`: DBOS Transact with its SQLite system database (`sqlite:///<dir>/dbos.db`); async
  `@DBOS.workflow()` / `@DBOS.step()`; fan-out and foreach with `asyncio.gather`; suspend ->
  resume with `DBOS.recv` / `DBOS.send`.
- `vercel-workflow`: the official Python Workflow SDK (0.12) with its local world (a data dir);
  completion is detected by polling the public `run.status()` every 2 ms (its `return_value()`
  polls once a second); suspend -> resume is a hook resumed from the same process. Its known
  fan-out bug (duplicate step executions, spurious failures) is not patched: such runs are
  reported as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench.workloads import FOREACH_CONCURRENCY, RESUME_VALUE, Workload, parse_workload

if TYPE_CHECKING:
    from harness.bench.runner import Cell, Plan

PEERS: tuple[str, ...] = ("dbos", "vercel-workflow")
_MODULES = {"dbos": "dbos", "vercel-workflow": "vercel.workflow"}
_INSTALL = "install it with: pip install 'wfbench[peers]'"


def unavailable(name: str) -> str | None:
    """None when peer `name` can run here, else the reason it is skipped."""
    if name not in _MODULES:
        return f"unknown peer {name!r}; known peers: {', '.join(PEERS)}"
    try:
        found = importlib.util.find_spec(_MODULES[name]) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"{name} is not installed; {_INSTALL}"


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def measure(name: str, w: Workload, plan: Plan, root: Path) -> Cell:
    """Measure peer `name` on `w` in a subprocess (see the module docstring)."""
    from harness.bench.runner import Cell

    cell = Cell(w.name, w.kind, w.size, w.units, name, "peer", "ok")
    missing = unavailable(name)
    if missing:
        cell.status, cell.reason = "skipped", missing
        return cell
    if w.kind == "compile":
        cell.status, cell.reason = "n/a", "compile time applies to the codegen engines only"
        return cell
    cap = plan.peer_max_size.get(name)
    if cap is not None and w.size > cap:
        cell.status = "skipped"
        cell.reason = (f"size {w.size} > {cap}: {name} replays the whole run per step (O(N^2)), "
                       f"too slow for the {plan.name} plan")
        return cell
    workdir = root / f"peer-{name}-{w.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "harness.bench.peers", name, w.name, "--workdir", str(workdir),
           "--repeats-min", str(plan.repeats_min), "--repeats-max", str(plan.repeats_max),
           "--warmup", str(plan.warmup), "--budget", str(plan.cell_budget_s)]
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=plan.peer_timeout_s,
                              cwd=str(workdir), env=env, check=False)
    except subprocess.TimeoutExpired:
        cell.status, cell.reason = "error", f"timed out after {plan.peer_timeout_s:g} s"
        return cell
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
    if line is None:
        err = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        cell.status, cell.reason = "error", f"no result (rc={proc.returncode}): {err[:300]}"
        return cell
    data = json.loads(line)
    cell.status = data.get("status", "error")
    cell.reason = data.get("reason", "")
    cell.times_s = [float(t) for t in data.get("times_s", [])]
    cell.cpu_s = [float(t) for t in data.get("cpu_s", [])]
    return cell


# ----------------------------------------------------------------------------- in the subprocess


async def _timed(run_once: Any, warmup: int, rmin: int, rmax: int,
                 budget: float) -> tuple[list[float], list[float]]:
    warm = 0.0
    for _ in range(warmup):
        t0 = time.perf_counter()
        await run_once()
        warm = time.perf_counter() - t0
    fit = int(budget / warm) if warm > 0 else rmax
    times, cpu = [], []
    for _ in range(max(rmin, min(rmax, fit))):
        c0, t0 = time.process_time(), time.perf_counter()
        await run_once()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def _check(w: Workload, name: str, result: Any) -> None:
    if result != w.expected_result():
        raise RuntimeError(f"{name} on {w.name}: wrong result {str(result)[:160]}")


async def _dbos_main(w: Workload, workdir: Path,
                     args: argparse.Namespace) -> tuple[list[float], list[float]]:
    import logging
    import uuid

    from dbos import DBOS, DBOSConfig

    logging.getLogger("dbos").setLevel(logging.WARNING)

    @DBOS.step()
    async def bump(value: dict[str, Any]) -> dict[str, Any]:
        return {"value": value["value"] + 1}

    @DBOS.workflow()
    async def chain(value: dict[str, Any], n: int) -> dict[str, Any]:
        for _ in range(n):
            value = await bump(value)
        return value

    @DBOS.workflow()
    async def fanout(value: dict[str, Any], k: int) -> dict[str, Any]:
        outs = await asyncio.gather(*(bump(value) for _ in range(k)))
        return {f"s{i}": out for i, out in enumerate(outs)}

    @DBOS.workflow()
    async def foreach(items: list[dict[str, Any]], c: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in range(0, len(items), c):
            out.extend(await asyncio.gather(*(bump(x) for x in items[s:s + c])))
        return out

    @DBOS.workflow()
    async def dountil(value: dict[str, Any], limit: int) -> dict[str, Any]:
        while True:
            value = await bump(value)
            if value["value"] >= limit:
                return value

    @DBOS.workflow()
    async def ask(value: dict[str, Any]) -> dict[str, Any]:
        answer = await DBOS.recv_async("answer", timeout_seconds=60)
        return {"value": answer["value"]}

    config: DBOSConfig = {
        "name": "wfbench-bench",
        "system_database_url": f"sqlite:///{workdir / 'dbos.db'}",
        "application_version": "wfbench-bench",
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.001,
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        async def once() -> None:
            n = w.size
            if w.kind == "chain":
                result: Any = await chain({"value": 0}, n)
            elif w.kind == "fanout":
                result = await fanout({"value": 0}, n)
            elif w.kind == "foreach":
                result = await foreach([{"value": i} for i in range(n)], FOREACH_CONCURRENCY)
            elif w.kind == "dountil":
                result = await dountil({"value": 0}, n)
            else:
                wid = uuid.uuid4().hex
                from dbos import SetWorkflowID

                with SetWorkflowID(wid):
                    handle = await DBOS.start_workflow_async(ask, {"value": 0})
                await DBOS.send_async(wid, {"value": RESUME_VALUE}, "answer")
                result = await handle.get_result()
            _check(w, "dbos", result)

        return await _timed(once, args.warmup, args.repeats_min, args.repeats_max, args.budget)
    finally:
        DBOS.destroy(destroy_registry=True)


def _vercel_module_source() -> str:
    return '''
import asyncio
from dataclasses import dataclass
from vercel.workflow import Workflows, BaseHook, get_workflow_metadata

wf = Workflows()


@wf.step
async def bump(value):
    return {"value": value["value"] + 1}


@wf.workflow
async def chain(value, n):
    for _ in range(n):
        value = await bump(value)
    return value


@wf.workflow
async def fanout(value, k):
    outs = await asyncio.gather(*(bump(value) for _ in range(k)))
    return {f"s{i}": out for i, out in enumerate(outs)}


@wf.workflow
async def foreach(items, c):
    out = []
    for s in range(0, len(items), c):
        out.extend(await asyncio.gather(*(bump(x) for x in items[s:s + c])))
    return out


@dataclass
class Answer(BaseHook):
    value: int = 0


@wf.workflow
async def ask(value, token):
    answer = await Answer.wait(token=token)
    return {"value": answer.value}


@wf.workflow
async def dountil(value, limit):
    while True:
        value = await bump(value)
        if value["value"] >= limit:
            return value
'''


async def _vercel_main(w: Workload, workdir: Path,
                       args: argparse.Namespace) -> tuple[list[float], list[float]]:
    os.environ.setdefault("WORKFLOW_LOCAL_DATA_DIR", str(workdir / "vercel-data"))
    moddir = workdir / "mods"
    moddir.mkdir(exist_ok=True)
    (moddir / "wfbench_vercel_bench.py").write_text(_vercel_module_source())
    sys.path.insert(0, str(moddir))
    import uuid

    import wfbench_vercel_bench as mod
    from vercel.workflow import HookNotFoundError, start

    terminal = {"completed", "failed", "cancelled"}

    async def once() -> None:
        n = w.size
        if w.kind == "chain":
            run = await start(mod.chain, {"value": 0}, n)
        elif w.kind == "fanout":
            run = await start(mod.fanout, {"value": 0}, n)
        elif w.kind == "foreach":
            run = await start(mod.foreach, [{"value": i} for i in range(n)], FOREACH_CONCURRENCY)
        elif w.kind == "dountil":
            run = await start(mod.dountil, {"value": 0}, n)
        else:  # suspend -> resume, in this process (the hook's run lives here)
            token = f"bench-ask:{uuid.uuid4().hex}"
            run = await start(mod.ask, {"value": 0}, token)
            while True:
                try:
                    await mod.Answer(value=RESUME_VALUE).resume(token)
                    break
                except HookNotFoundError:
                    await asyncio.sleep(0.002)
        # `return_value()` polls once a second; poll the public status every 2 ms instead, then
        # read the value (its first read returns once the run is terminal)
        while str(await run.status()) not in terminal:
            await asyncio.sleep(0.002)
        _check(w, "vercel-workflow", await run.return_value())

    try:
        return await _timed(once, args.warmup, args.repeats_min, args.repeats_max, args.budget)
    finally:
        try:  # close the embedded queue in this task (else anyio complains at exit)
            from vercel.workflow._internal.world import get_world

            await getattr(get_world(), "aclose")()  # noqa: B009 - not on the World type
        except Exception:  # noqa: S110 - best effort, private API of vercel-workflow 0.12
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.peers")
    ap.add_argument("peer", choices=PEERS)
    ap.add_argument("workload")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--repeats-min", type=int, default=3)
    ap.add_argument("--repeats-max", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--budget", type=float, default=5.0)
    args = ap.parse_args(argv)
    w = parse_workload(args.workload)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fn = _dbos_main if args.peer == "dbos" else _vercel_main
    try:
        times, cpu = asyncio.run(fn(w, workdir, args))
        out: dict[str, Any] = {"status": "ok", "times_s": times, "cpu_s": cpu}
    except Exception as exc:  # reported as an error cell, never a crash of the bench
        first = (str(exc).strip().splitlines() or [""])[0]
        out = {"status": "error", "reason": f"{type(exc).__name__}: {first}"[:300]}
    sys.stdout.flush()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
