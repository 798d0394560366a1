"""Nondeterminism detected across processes (issue 3, "Must show": Nondeterminism; semantics
reference sections 1.4 and 2.6, [N]: a call that does not match the log at its position raises
``NondeterminismError`` naming the position, what the log has and what the code called; the run
fails and nothing after the divergence runs).

The workflow ``crashwf_nd:shifting`` picks its operations from ``$WFBENCH_ND_VARIANT`` at import
time. A first process (original: nd_alpha, nd_beta("b"), nd_hold) is SIGKILLed inside nd_hold;
a worker process then recovers the run with the original module or a changed one: step order
changed, argument changed, or a sleep where the log has a step (see ``crashwf_nd``).
"""

from __future__ import annotations

import importlib.util
import json
import re
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


@pytest.fixture
def crashed_run(tmp_path):
    """A run of ``shifting`` killed inside nd_hold (log: nd_alpha done, nd_beta done, nd_hold
    started). Returns (db, side-effect file, run id)."""
    db, side = tmp_path / "runs.db", tmp_path / "side.txt"
    starter = procs.Child(
        tmp_path,
        "start", str(db), "crashwf_nd:shifting", json.dumps([str(side)]), "--hold",
        env={"WFBENCH_ND_VARIANT": "original", "WFBENCH_ND_HOLD_SECONDS": "120"},
    )
    try:
        run_id = starter.expect("run_id")["run_id"]
        assert procs.wait_for_lines(side, 3, starter) == ["alpha", "beta", "hold"]
        starter.kill()
    finally:
        starter.ensure_dead()
    return db, side, run_id


@pytest.mark.parametrize(
    ("variant", "called"),
    [
        ("reordered", "nd_hold"),  # the step order changed
        ("argument", '"B"'),  # same step, another argument
        ("kind", "sleep"),  # a sleep where the log has a step
    ],
)
def test_changed_workflow_fails_the_run_with_nondeterminism_error(
    tmp_path, crashed_run, variant, called
):
    db, side, run_id = crashed_run
    procs.run_to_end(
        tmp_path, "worker", str(db),
        env={"WFBENCH_ND_VARIANT": variant, "WFBENCH_ND_HOLD_SECONDS": "0"},
    )
    world = durable.SqliteWorld(str(db))
    record = world.get_run(run_id)
    assert record.status == "failed", record
    types = [e.type for e in world.list_events(run_id)]
    assert types[-1] == "run_failed" and types.count("run_failed") == 1, types
    assert record.error["type"] == "NondeterminismError", record.error
    message = record.error["message"]
    # the divergence is the second operation (positions count from 1 in durable's messages)
    assert re.search(r"\bposition 2\b", message), message
    # what the log has (nd_beta) and what the code called
    assert "nd_beta" in message and called in message, message
    # nothing ran in the worker: alpha was replayed from the log, the divergence stopped the rest
    assert procs.read_lines(side) == ["alpha", "beta", "hold"]


def test_same_order_recovers_and_completes(tmp_path, crashed_run):
    """Control for the test above: with the module unchanged the same log recovers."""
    db, side, run_id = crashed_run
    procs.run_to_end(
        tmp_path, "worker", str(db),
        env={"WFBENCH_ND_VARIANT": "original", "WFBENCH_ND_HOLD_SECONDS": "0"},
    )
    record = durable.SqliteWorld(str(db)).get_run(run_id)
    assert record.status == "completed", record
    assert record.output == "abh"  # "a" + "b" + "h"
    # nd_hold was in flight at the kill: it runs again (at-least-once); alpha and beta do not
    assert procs.read_lines(side) == ["alpha", "beta", "hold", "hold"]
