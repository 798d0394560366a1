"""Child process for durability cells: one phase of a run that the harness kills and recovers.

    python -m harness.crashrun PHASE ENGINE SCENARIO RUN_ID OUT_JSON [ACTION_JSON]

PHASE is `start` (run the scenario; the harness SIGKILLs this process at the kill point),
`resume` (send one resume action, then exit) or `recover` (ask the engine to recover the run
and wait for its final result). The environment carries `WFBENCH_DB` and `WFBENCH_TRACE_FILE`
(and `WFBENCH_ENGINE_FACTORY` / `WFBENCH_SCENARIO_LOOKUP` = `module:attr` when the harness
runs fakes). The outcome is written to OUT_JSON:
`{"outcome": "result", "result": {...}}`, `{"outcome": "unsupported", "reason": "..."}` or
`{"outcome": "error", "exception": {"type", "message", "traceback"}}`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.cells import ExceptionInfo


def _load(ref: str) -> Any:
    mod, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _ref(fn: Any) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def result_to_dict(result: Any) -> Any:
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(result, dict):
        return result
    return {k: v for k, v in vars(result).items() if not k.startswith("_")}


async def _phase(phase: str, engine: Any, scenario: Any, run_id: str, action: Any) -> Any:
    from scenarios.drive import drive_engine, engine_resume

    native = str(getattr(engine, "name", "")) == "native"
    if phase == "start":
        from harness.drive import engine_session

        # the trace goes to $WFBENCH_TRACE_FILE (record=False: no in-memory recorder)
        async with engine_session(engine):
            out = await drive_engine(scenario, engine, run_id=run_id, native=native,
                                     record=False, target_ref=getattr(scenario, "id", None))
        return out.result
    if phase == "resume":
        return await engine_resume(engine, scenario, run_id, dict(action or {}), native=native)
    if phase == "recover":
        recover = getattr(engine, "recover", None)
        if recover is None:
            from engines import Unsupported

            raise Unsupported(f"engine {getattr(engine, 'name', '?')!r} has no way to recover "
                              "a run whose process died")
        return await recover(scenario, run_id)
    raise SystemExit(f"unknown phase {phase!r}; use start, resume or recover")


def main(argv: list[str]) -> int:
    phase, engine_name, scenario_id, run_id, out = argv[:5]
    action = json.loads(argv[5]) if len(argv) > 5 else None
    factory = os.environ.get("WFBENCH_ENGINE_FACTORY")
    lookup = os.environ.get("WFBENCH_SCENARIO_LOOKUP")
    from harness import runner

    make_engine = _load(factory) if factory else runner.default_engine_factory
    find = _load(lookup) if lookup else runner.default_scenario_lookup
    try:
        engine = make_engine(engine_name)
        scenario = find(scenario_id)
        result = asyncio.run(_phase(phase, engine, scenario, run_id, action))
        data: dict[str, Any] = {"outcome": "result", "result": result_to_dict(result)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        refused = runner.is_unsupported(exc) or (
            phase == "recover" and type(exc).__name__ == "NotRecoverableError")
        if refused:  # the engine's own refusal (flow.NotRecoverableError: cannot recover)
            data = {"outcome": "unsupported", "reason": str(exc) or type(exc).__name__}
        else:
            data = {"outcome": "error", "exception": ExceptionInfo.from_exception(exc).to_dict()}
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(data, default=repr), encoding="utf-8")
    tmp.replace(out)
    if "temporalio.client" in sys.modules:
        # skip interpreter teardown: temporalio's Rust threads can crash it (exit -6/-11,
        # temporalio/sdk-python#300) after the outcome was written
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
