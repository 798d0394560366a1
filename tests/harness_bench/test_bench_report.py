"""harness.bench.report: exponent fit, derived figures, targets, renderings (hand-made data)."""

from __future__ import annotations

import json
import math

import pytest

from harness.bench import report


def test_fit_exponent_linear_quadratic_and_degenerate() -> None:
    assert report.fit_exponent([10, 100, 1000], [0.01, 0.1, 1.0]) == pytest.approx(1.0)
    assert report.fit_exponent([10, 100, 1000], [1e-4, 1e-2, 1.0]) == pytest.approx(2.0)
    assert report.fit_exponent([4, 16], [1.0, 8.0]) == pytest.approx(1.5)
    assert report.fit_exponent([100], [1.0]) is None
    assert report.fit_exponent([100, 100], [1.0, 2.0]) is None
    assert report.fit_exponent([10, 100], [0.0, 1.0]) is None


def _cell(workload: str, column: str, kind: str, times: list[float], status: str = "ok",
          reason: str = "") -> dict:
    wk, size = workload.rsplit("-", 1)
    return {"workload": workload, "kind": wk, "size": int(size), "units": int(size),
            "column": column, "column_kind": kind, "status": status, "reason": reason,
            "times_s": times}


def raw_fixture() -> dict:
    cols = [{"name": "default-mem", "kind": "engine", "status": "ok", "reason": ""},
            {"name": "native", "kind": "engine", "status": "ok", "reason": ""},
            {"name": "codegen", "kind": "engine", "status": "ok", "reason": ""},
            {"name": "plain", "kind": "floor", "status": "ok", "reason": ""},
            {"name": "sqlite-normal", "kind": "floor", "status": "ok", "reason": ""},
            {"name": "dbos", "kind": "peer", "status": "skipped",
             "reason": "dbos is not installed; install it with: pip install 'wfbench[peers]'"}]
    cells = [
        # default: 20 us/step at N=10 and N=100 -> overhead (200 - 10) us / 10 = 19 us/step
        _cell("chain-10", "default-mem", "engine", [0.0002, 0.0001, 0.0003]),
        _cell("chain-100", "default-mem", "engine", [0.003, 0.004, 0.005]),
        # native: 100 us/step, linear
        {**_cell("chain-10", "native", "engine", [0.001, 0.001, 0.001]),
         "cpu_s": [0.0009, 0.0005, 0.0007]},
        {**_cell("chain-100", "native", "engine", [0.01, 0.01, 0.01]), "cpu_s": [0.002] * 3},
        _cell("chain-10", "codegen", "engine", [], "unsupported", "no"),
        _cell("chain-100", "codegen", "engine", [], "unsupported", "no"),
        _cell("chain-10", "plain", "floor", [0.00001] * 3),
        _cell("chain-100", "plain", "floor", [0.0001] * 3),
        _cell("chain-10", "sqlite-normal", "floor", [0.0004] * 3),
        {**_cell("chain-100", "sqlite-normal", "floor", [0.004] * 3), "cpu_s": [0.004] * 3},
        _cell("chain-10", "dbos", "peer", [], "skipped", "dbos is not installed"),
        _cell("chain-100", "dbos", "peer", [], "skipped", "dbos is not installed"),
        # fan-out 100 on native: 5 ms, half the chain of 100
        _cell("fanout-100", "native", "engine", [0.005, 0.006, 0.004]),
        _cell("fanout-100", "default-mem", "engine", [0.008, 0.008, 0.008]),
        _cell("compile-200", "codegen", "engine", [0.030, 0.025, 0.035]),
    ]
    return {"schema": "wfbench-bench-1", "plan": {"name": "quick"}, "generated_at": "T",
            "elapsed_s": 1.0, "machine": {"cpus": 2, "python": "3.11", "sqlite": "3",
                                          "platform": "x"}, "columns": cols, "cells": cells}


def _row(summary: dict, workload: str, column: str) -> dict:
    return next(r for r in summary["results"] if r["workload"] == workload and r["column"] == column)


def test_summarize_per_step_overhead_ratios() -> None:
    s = report.summarize(raw_fixture())
    r = _row(s, "chain-10", "default-mem")
    assert r["median_s"] == pytest.approx(0.0002)
    assert r["per_unit_us"] == pytest.approx(20.0)
    assert r["per_unit_min_us"] == pytest.approx(10.0)
    assert r["per_unit_max_us"] == pytest.approx(30.0)
    assert r["overhead_us"] == pytest.approx(19.0)
    assert r["spread_pct"] == pytest.approx(100.0)
    assert r["ratios"] == {"plain": pytest.approx(20.0), "sqlite-normal": pytest.approx(0.5)}
    assert _row(s, "chain-10", "native")["cpu_per_unit_us"] == pytest.approx(70.0)
    assert "cpu_per_unit_us" not in r
    n = _row(s, "chain-100", "native")
    assert n["ratios"]["sqlite-normal"] == pytest.approx(2.5)
    assert "median_s" not in _row(s, "chain-10", "codegen")
    assert "overhead_us" not in _row(s, "chain-10", "plain")


def test_summarize_exponents() -> None:
    s = report.summarize(raw_fixture())
    assert s["exponents"]["native"]["chain"]["all"] == pytest.approx(1.0)
    assert s["exponents"]["default-mem"]["chain"]["all"] == pytest.approx(math.log10(20))
    # only one size >= 100: no exponent from N = 100
    assert s["exponents"]["native"]["chain"]["from_100"] is None
    assert s["exponents"]["codegen"]["chain"]["all"] is None


def _target(s: dict, prefix: str, column: str) -> dict:
    return next(t for t in s["targets"] if t["target"].startswith(prefix) and t["column"] == column)


def test_targets_met_missed_na() -> None:
    s = report.summarize(raw_fixture())
    d = _target(s, "overhead per step", "default-mem")
    assert d["status"] == "missed"  # chain-100: (4 ms - 0.1 ms) / 100 = 39 us > 25
    assert d["value"] == pytest.approx(39.0)
    nat = _target(s, "<= 2x", "native")
    assert (nat["status"], nat["value"]) == ("missed", pytest.approx(2.5))
    # the same ratio from CPU times: 2 ms / 4 ms
    assert (nat["cpu_status"], nat["cpu_value"]) == ("met", pytest.approx(0.5))
    assert _target(s, "overhead per step", "default-mem")["cpu_status"] == "n/a"
    cg = _target(s, "<= 2x", "codegen")
    assert cg["status"] == "n/a" and "unsupported" in cg["detail"]
    fan = _target(s, "fan-out of 100", "native")
    assert (fan["status"], fan["value"]) == ("met", pytest.approx(0.5))
    fan_d = _target(s, "fan-out of 100", "default-mem")
    assert (fan_d["status"], fan_d["value"]) == ("missed", pytest.approx(2.0))
    comp = _target(s, "compile", "codegen")
    assert (comp["status"], comp["value"]) == ("missed", pytest.approx(30.0))
    assert _target(s, "growth exponent", "native")["status"] == "n/a"


def test_overhead_target_is_the_interpreters_not_the_snapshot_stores() -> None:
    raw = raw_fixture()
    raw["columns"].insert(0, {"name": "default", "kind": "engine", "status": "ok", "reason": ""})
    # the same engine with a SQLite snapshot store: 8 ms for 100 steps, twice the one-commit floor
    raw["cells"].append(_cell("chain-100", "default", "engine", [0.008] * 3))
    s = report.summarize(raw)
    d = _target(s, "overhead per step", "default")
    assert d["status"] == "n/a" and d["cpu_status"] == "n/a"
    assert d["value"] == pytest.approx(79.0)  # (8 ms - 0.1 ms) / 100, still shown
    assert "2.00x the one-commit floor" in d["detail"] and "default-mem" in d["detail"]
    assert _target(s, "overhead per step", "default-mem")["status"] == "missed"


def test_markdown_has_tables_targets_and_skips() -> None:
    md = report.render_markdown(report.summarize(raw_fixture()))
    assert "## Targets" in md and "MISSED" in md and "met" in md
    assert "### chain-100" in md and "### compile-200" in md
    assert "x sqlite-normal" in md and "us/entry" in md
    assert "`dbos` (peer): dbos is not installed" in md
    assert "unsupported: no" in md
    assert "![time against N, log-log](bench.png)" in md


def test_write_reports_files(tmp_path) -> None:
    s = report.summarize(raw_fixture())
    paths = report.write_reports(s, tmp_path / "out")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == "wfbench-bench-1"
    assert {t["status"] for t in data["targets"]} == {"met", "missed", "n/a"}
    assert paths["md"].read_text().startswith("# wfbench bench")
