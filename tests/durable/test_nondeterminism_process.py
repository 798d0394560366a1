"""Nondeterminism detected across processes (issue 3, "Must show": Nondeterminism; semantics
reference sections 1.4 and 2.6, [N]: a call that does not match the log at its position raises
``NondeterminismError`` naming the position, what the log has and what the code called; the run
fails and nothing after the divergence runs).

The workflow ``crashwf_nd:shifting`` picks its step order from ``$WFBENCH_ND_VARIANT`` at import
time. A first process (original order: nd_alpha, nd_beta, nd_hold) is SIGKILLed inside nd_hold;
a worker process then recovers the run with the original or the reordered module
(nd_alpha, nd_hold, nd_beta).
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


def error_text(error) -> str:
    """Whatever form the run record keeps the error in, as one string to search."""
    if isinstance(error, dict):
        return " ".join(str(v) for v in error.values())
    return str(error)


def test_reordered_steps_fail_the_run_with_nondeterminism_error(tmp_path, crashed_run):
    db, side, run_id = crashed_run
    procs.run_to_end(
        tmp_path, "worker", str(db),
        env={"WFBENCH_ND_VARIANT": "reordered", "WFBENCH_ND_HOLD_SECONDS": "0"},
    )
    record = durable.SqliteWorld(str(db)).get_run(run_id)
    assert record.status == "failed", record
    text = error_text(record.error)
    assert "NondeterminismError" in text, text
    # the divergence is the second operation: position 1 counted from 0 (2 counted from 1)
    assert re.search(r"\b(position|operation|index|#)\s*[#:]?\s*[12]\b", text, re.I), text
    assert "nd_beta" in text and "nd_hold" in text, text
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
    assert record.output == "abh"
    # nd_hold was in flight at the kill: it runs again (at-least-once); alpha and beta do not
    assert procs.read_lines(side) == ["alpha", "beta", "hold", "hold"]
