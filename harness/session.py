"""Glue between the runner, the matrix and the files in reports/ (used by the CLI and tests).

`run_plan` runs cells, `build_matrix` attaches scenario/engine metadata from the real
`scenarios`/`engines` packages, `write_reports` writes matrix.md/.json/.html (and .xml),
`temporal_server` provides the one Temporal dev server a session with the `temporal` column
runs against.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from harness.cells import Cell
from harness.matrix import EngineInfo, Matrix, ScenarioInfo
from harness.render import render
from harness.runner import RunPlan, run_matrix_cells


def run_plan(plan: RunPlan, *, progress: bool = True) -> list[Cell]:
    return run_matrix_cells(plan, progress=progress)


def build_matrix(engines: Sequence[str], scenario_ids: Sequence[str],
                 cells: Iterable[Cell]) -> Matrix:
    from harness.runner import make_engine
    from scenarios import get_scenario

    infos = []
    for name in engines:
        try:
            eng = make_engine(name)
        except Exception:  # noqa: BLE001 - the description falls back to the name's
            eng = None
        infos.append(EngineInfo.of(name, eng))
    scen = [ScenarioInfo.of(get_scenario(sid)) for sid in scenario_ids]
    return Matrix.build(infos, scen, cells)


def write_reports(matrix: Matrix, out_dir: Path, *, junit: bool = False) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in (("markdown", "matrix.md"), ("json", "matrix.json"),
                      ("html", "matrix.html")) + ((("junit", "matrix.xml"),) if junit else ()):
        path = out_dir / name
        path.write_text(render(matrix, fmt), encoding="utf-8")
        written.append(path)
    return written


@contextlib.contextmanager
def temporal_server(engines: Sequence[str]) -> Iterator[str | None]:
    """One Temporal dev server for a whole session whose engines include `temporal`.

    Yields its address (exported as `$WFBENCH_TEMPORAL_ADDRESS` for the cells and their child
    processes, which inherit it), or None when no engine needs a server. A server the user
    already names in `$WFBENCH_TEMPORAL_ADDRESS` is used as it is and not started or stopped.
    Every cell gets its own task queue (`harness.runner.cell_env`).
    """
    from harness.runner import TEMPORAL

    if TEMPORAL not in engines:
        yield None
        return
    given = os.environ.get("WFBENCH_TEMPORAL_ADDRESS")
    if given:
        yield given
        return
    from engines.temporal.devserver import DevServer

    server = DevServer.start()
    os.environ["WFBENCH_TEMPORAL_ADDRESS"] = server.address
    try:
        yield server.address
    finally:
        os.environ.pop("WFBENCH_TEMPORAL_ADDRESS", None)
        server.stop()
