"""A committed matrix with a server column (`temporal`) still checks the local engines cleanly:
the coverage check and `wfbench matrix --check` look at the local cells only, and a fresh local
run lacking the temporal column is neither a regression nor a coverage problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from harness.conformance import DEFAULT_BASELINE, baseline_params, coverage_problems
from harness.matrix import Matrix, check_against

LOCAL = ("default", "codegen", "codegen-strict", "stepmode", "native")


def _local_baseline() -> dict[str, Any]:
    """The committed matrix with only its local columns (whatever else it has)."""
    data: dict[str, Any] = json.loads(DEFAULT_BASELINE.read_text(encoding="utf-8"))
    data["engines"] = [e for e in data["engines"] if e["name"] in LOCAL]
    data["cells"] = [c for c in data["cells"] if c["engine"] in LOCAL]
    return data


def _with_temporal(data: dict[str, Any]) -> dict[str, Any]:
    """`data` plus a temporal column: one cell per scenario, the first failing, the second
    unsupported (a server column's verdicts must not matter to a local check)."""
    out = json.loads(json.dumps(data))
    out["engines"].append({"name": "temporal", "authored_as": "Mastra syntax",
                           "executed_by": "Temporal", "native": False})
    for i, s in enumerate(out["scenarios"]):
        verdict = ("fail", "unsupported")[i] if i < 2 else "pass"
        out["cells"].append({"engine": "temporal", "scenario": s["id"], "verdict": verdict,
                             "duration_s": 1.0, "diff": [], "reason": "x" if i < 2 else None,
                             "exception": None, "generated_source": None})
    return out


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_coverage_and_params_ignore_the_temporal_column(tmp_path: Path) -> None:
    local = _local_baseline()
    ids = [s["id"] for s in local["scenarios"]]
    with_t = _write(tmp_path, "with.json", _with_temporal(local))
    without = _write(tmp_path, "without.json", local)
    assert coverage_problems(with_t, LOCAL, ids) == []
    params = baseline_params(with_t, engines=LOCAL)
    assert {e for e, _, _ in params} == set(LOCAL)
    assert len(params) == len(ids) * len(LOCAL)
    # the unfiltered baseline does have the temporal cells
    assert sum(e == "temporal" for e, _, _ in baseline_params(with_t)) == len(ids)
    # and a baseline without it is missing them when temporal is asked for (the check can fail)
    missing = coverage_problems(without, ("temporal",), ids)
    assert len(missing) == len(ids) and missing[0] == f"{ids[0]} on temporal: no verdict in " \
        "the baseline (new scenario or engine)"


def test_check_against_a_baseline_with_temporal_ignores_the_missing_column(tmp_path: Path) -> None:
    local = _local_baseline()
    base = Matrix.from_json(json.dumps(_with_temporal(local)))
    now = Matrix.from_json(json.dumps(local))
    assert "temporal" in base.engine_names and "temporal" not in now.engine_names
    assert check_against(base, now) == []


def test_matrix_check_cli_passes_with_a_temporal_baseline(tmp_path: Path) -> None:
    from harness.cli import main

    local = _local_baseline()
    sid = local["scenarios"][0]["id"]
    verdict = next(c["verdict"] for c in local["cells"]
                   if c["engine"] == "default" and c["scenario"] == sid)
    base = _write(tmp_path, "matrix.json", _with_temporal(local))
    res = CliRunner().invoke(main, ["matrix", "-e", "default", "-s", sid, "--no-progress",
                                    "--check", str(base), "--output", str(tmp_path / "out")])
    assert verdict == "pass"
    assert res.exit_code == 0, res.output
    assert f"no cell is worse than {base}" in res.output
