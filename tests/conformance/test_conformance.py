"""Conformance: every scenario on every local engine against the committed reports/matrix.json.

One test per cell of the baseline (engines default, codegen, codegen-strict, stepmode, native;
the `temporal` column needs a server and is checked by `wfbench matrix --engine temporal`).
Each cell runs in its own tmp_path with its own SQLite file, as in `wfbench matrix`:

- a verdict worse than the committed one fails, naming the scenario, the engine and the diff;
- a verdict better than the committed one fails too: reports/matrix.json is stale;
- only verdicts are compared (never durations, diff texts or messages).

A scenario or engine the baseline does not know (or a scenario it has that no longer exists)
also fails as staleness. Regenerate with `wfbench matrix` and commit reports/.
"""

from __future__ import annotations

import pytest

from harness.conformance import (
    DEFAULT_BASELINE,
    STALE,
    assert_conforms,
    baseline_params,
    coverage_problems,
    load_baseline,
)

try:
    from engines import LOCAL_ENGINE_NAMES as _LOCAL
except ImportError:  # engines without the constant: the five that need no server
    _LOCAL = ("default", "codegen", "codegen-strict", "stepmode", "native")

LOCAL_ENGINES: tuple[str, ...] = tuple(_LOCAL)

# Families whose cells start, SIGKILL and recover child processes.
SUBPROCESS_FAMILIES = {"durability", "determinism"}


def _params() -> list[object]:
    families = {s.id: s.family for s in load_baseline(DEFAULT_BASELINE).scenarios}
    out: list[object] = []
    for engine, scenario, verdict in baseline_params(DEFAULT_BASELINE, engines=LOCAL_ENGINES):
        marks = [pytest.mark.slow] if families.get(scenario) in SUBPROCESS_FAMILIES else []
        out.append(pytest.param(engine, scenario, verdict, marks=marks,
                                id=f"{scenario}[{engine}]"))
    return out


@pytest.mark.parametrize("engine,scenario,expected", _params())
def test_cell_conforms_to_the_committed_matrix(engine: str, scenario: str, expected: str,
                                               tmp_path) -> None:
    assert_conforms(engine, scenario, expected, workdir=tmp_path)


def test_the_baseline_covers_every_scenario_on_every_local_engine() -> None:
    from scenarios import all_scenarios

    problems = coverage_problems(DEFAULT_BASELINE, LOCAL_ENGINES,
                                 [s.id for s in all_scenarios()])
    assert not problems, f"{STALE}:\n" + "\n".join(problems)
