"""Crash recovery of `durable` on SqliteWorld, with real processes and SIGKILL (issue 3, "Must
show": SIGKILL in subprocesses (a), (b), (c); semantics reference sections 1.6, 1.7, 2.4, 3.6).

Every run is started in a child process (``crashprogs/driver.py``), which is SIGKILLed or exits;
a ``durable.Worker(SqliteWorld(db)).run(until_idle=True)`` in a *new* process must then finish it.
Expected values are written by hand from the workflows in ``crashprogs/crashwf.py``.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections import Counter
from pathlib import Path

import pytest

import durable

_spec = importlib.util.spec_from_file_location(
    "durable_crashprocs", Path(__file__).parent / "crashprogs" / "procs.py"
)
assert _spec is not None and _spec.loader is not None
procs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(procs)

pytestmark = pytest.mark.slow

CHAIN = [f"step-{i:02d}" for i in range(20)]


def final_record(db: Path, run_id: str):
    """The run record as a fresh SqliteWorld in this (parent) process reads it."""
    return durable.SqliteWorld(str(db)).get_run(run_id)


@pytest.fixture
def children():
    started: list = []
    yield started
    for child in started:
        child.ensure_dead()


def spawn(children, workdir: Path, *args: str, env=None):
    child = procs.Child(workdir, *args, env=env)
    children.append(child)
    return child


def test_sigkill_mid_chain_worker_completes_each_step_once(tmp_path, children):
    db, side = tmp_path / "runs.db", tmp_path / "side.txt"
    starter = spawn(
        children, tmp_path, "start", str(db), "crashwf:chain20", json.dumps([str(side)]), "--hold"
    )
    run_id = starter.expect("run_id")["run_id"]
    procs.wait_for_lines(side, 8, starter)
    starter.kill()
    before = procs.read_lines(side)
    assert 8 <= len(before) < 20, f"the kill should land mid-chain, side file: {before}"
    assert before == CHAIN[: len(before)]
    assert final_record(db, run_id).status in ("pending", "running")

    procs.run_to_end(tmp_path, "worker", str(db))

    record = final_record(db, run_id)
    assert record.status == "completed", record
    assert record.output == sum(range(20))  # 190
    after = procs.read_lines(side)
    counts = Counter(after)
    assert set(counts) == set(CHAIN)
    in_flight = before[-1]
    for name in CHAIN:
        # a step that completed before the kill ran once; the one in flight may have run twice
        allowed = {1, 2} if name == in_flight else {1}
        assert counts[name] in allowed, f"{name} ran {counts[name]} times: {after}"
    assert after[: len(before)] == before
    rest = after[len(before) :]
    if rest and rest[0] == in_flight:
        rest = rest[1:]
    assert before + rest == CHAIN
    steps = durable.SqliteWorld(str(db)).list_steps(run_id)
    assert len(steps) == 20
    assert all(s.status == "completed" for s in steps)


def test_sigkill_during_sleep_worker_sleeps_only_the_remainder(tmp_path, children):
    db, side = tmp_path / "runs.db", tmp_path / "side.txt"
    starter = spawn(
        children, tmp_path, "start", str(db), "crashwf:nap3", json.dumps([str(side)]), "--hold"
    )
    run_id = starter.expect("run_id")["run_id"]
    (first,) = procs.wait_for_lines(side, 1, starter)
    label, stamp = first.split()
    assert label == "before"
    t_before = float(stamp)
    # let the run spend about 1 s of its sleep(3) in the first process, then kill it
    time.sleep(max(0.0, t_before + 1.0 - time.time()))
    starter.kill()
    t_kill = time.time()
    assert procs.read_lines(side) == [first], "nothing may run after the sleep before it ends"

    procs.run_to_end(tmp_path, "worker", str(db))

    record = final_record(db, run_id)
    assert record.status == "completed", record
    assert record.output == "rested"
    lines = procs.read_lines(side)
    assert [line.split()[0] for line in lines] == ["before", "after"]
    t_after = float(lines[1].split()[1])
    # The one timing check allowed here, because it is the behaviour under test: the sleep is
    # due 3 s after it began (about 2 s after the kill). A worker that re-armed it from zero
    # would need >= 3 s after the kill; one that skipped it would finish at once.
    since_kill = t_after - t_kill
    assert 1.5 <= since_kill < 2.7, f"worker finished {since_kill:.2f}s after the kill"
    assert t_after - t_before >= 2.95, f"slept only {t_after - t_before:.2f}s of 3"


@pytest.mark.parametrize("first_process_ends", ["exits", "killed"])
def test_hook_resumed_from_short_lived_process_then_worker_completes(
    tmp_path, children, first_process_ends
):
    db, side = tmp_path / "runs.db", tmp_path / "side.txt"
    token = f"approve-{first_process_ends}"
    args = json.dumps([str(side), token])
    if first_process_ends == "exits":
        starter = spawn(
            children, tmp_path, "start", str(db), "crashwf:approval_flow", args,
            "--hook-exit", token,
        )
        run_id = starter.expect("run_id")["run_id"]
        starter.expect("hooked")
        assert starter.finish() == 0, starter.describe()
    else:
        starter = spawn(
            children, tmp_path, "start", str(db), "crashwf:approval_flow", args,
            "--hook-hold", token,
        )
        run_id = starter.expect("run_id")["run_id"]
        starter.expect("hooked")
        starter.kill()
    assert final_record(db, run_id).status in ("pending", "running")
    assert procs.read_lines(side) == []

    # process 2 resumes the hook by token and exits at once: it does not drive the run
    resumer = procs.run_to_end(tmp_path, "resume", str(db), token, "alice")
    assert {"resumed": token} in resumer.seen
    assert procs.read_lines(side) == []

    # process 3: a worker picks the run up and completes it with the payload
    procs.run_to_end(tmp_path, "worker", str(db))
    record = final_record(db, run_id)
    assert record.status == "completed", record
    assert record.output == "alice:True"
    assert procs.read_lines(side) == ["finish alice"]
