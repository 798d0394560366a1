"""The one `Engine` interface, the `Unsupported` refusal, the engine errors, target resolution,
the resume pre-checks shared by the flow-interpreter engines, and `get_engine`.

A *target* is a committed flow workflow, a hand-written durable workflow function (for `native`),
or an object carrying both as `.workflow` (flow) and `.native` (durable workflow function), e.g.
a scenario. Each engine takes the definition it runs from the target.

`Unsupported`: this engine cannot run this pattern / the target has no definition for it (a
matrix cell `unsupported`). `EngineError` and its subclasses: bad use, one-line messages —
`BadTarget` (not a workflow, uncommitted, wrong kind for the engine), `RunNotFound`,
`NotResumable` (the run ended, or the step named is not suspended).
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any

from flow.errors import FlowError


class Unsupported(Exception):  # noqa: N818 - the name is the contract
    """An engine cannot run this pattern; raised before anything runs. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EngineError(ValueError):
    """Bad use of an engine (unknown engine name, a target of the wrong kind, unknown run).

    The CLI reports every `EngineError` as bad input (one line, exit 2). Subclasses:
    `BadTarget`, `RunNotFound`, `NotResumable`."""


class BadTarget(EngineError):
    """The target is not something this engine runs: not a workflow at all, an uncommitted
    workflow, a Mastra-syntax workflow given to `native` or a durable function given to a
    Mastra-syntax engine. Raised before anything runs (nothing is validated or stored).

    `str(e)` is `f"{subject} {reason}"`; `subject` describes the object (e.g. "int 42",
    "workflow 'unc'"), `reason` the rest ("is not a workflow ...; point ... at ..."), so a
    caller that knows the target's text (a CLI) can say `f"{text} {e.reason}"`; `target` is the
    object, `engine` the engine's name."""

    def __init__(self, subject: str, reason: str, *, target: Any = None, engine: str = "") -> None:
        super().__init__(f"{subject} {reason}")
        self.subject = subject
        self.reason = reason
        self.target = target
        self.engine = engine


class RunNotFound(EngineError, FlowError):
    """No run with this id exists where the engine keeps its runs. `run_id`, `where` (the
    world / snapshot store, e.g. the SQLite file)."""

    def __init__(self, run_id: str, where: str, engine: str = "") -> None:
        super().__init__(f"no run {run_id!r} in {where}")
        self.run_id = run_id
        self.where = where
        self.engine = engine


class NotResumable(EngineError, FlowError):
    """The run exists but cannot be resumed as asked: it has already completed / failed / was
    canceled (`status` is the flow-level status: success|failed|canceled), or the step named is
    not suspended (`status` "suspended" or "running"; the message lists the suspended steps).
    `run_id`, `step` (what was asked for, or None)."""

    def __init__(self, message: str, *, run_id: str, status: str | None = None,
                 step: Any = None, engine: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.status = status
        self.step = step
        self.engine = engine

    @classmethod
    def finished(cls, run_id: str, status: str, step: Any = None,
                 engine: str = "") -> NotResumable:
        """The run ended (`status`: success | failed | canceled)."""
        what = {"success": "has already completed", "failed": "has already failed",
                "canceled": "was canceled"}.get(status, f"is {status}")
        asked = f" (asked to resume {_step_text(step)})" if step is not None else ""
        return cls(f"run {run_id!r} {what}; only a suspended run can be resumed{asked}",
                   run_id=run_id, status=status, step=step, engine=engine)


def _step_text(step: Any) -> str:
    if isinstance(step, str):
        return repr(step)
    if isinstance(step, list | tuple):
        return repr(".".join(_step_text(s).strip("'") for s in step))
    sid = getattr(step, "id", None)
    return repr(sid) if isinstance(sid, str) else repr(step)


ENGINE_NAMES: tuple[str, ...] = ("default", "codegen", "codegen-strict", "stepmode", "native")
"""The engines that need no server: the matrix and the benchmark run these by default."""

LOCAL_ENGINE_NAMES = ENGINE_NAMES
SERVER_ENGINE_NAMES: tuple[str, ...] = ("temporal",)
"""Engines that need a server (started for them when no address is given); opt-in everywhere."""

MASTRA_ENGINES = "default, codegen, codegen-strict or stepmode"


def is_flow_workflow(obj: Any) -> bool:
    """True for a `flow.Workflow` (committed or not)."""
    try:
        from flow import Workflow  # type: ignore[attr-defined]
    except ImportError:
        return False
    return isinstance(obj, Workflow)


def _check_committed(wf: Any, engine: str) -> Any:
    if not getattr(wf, "committed", True):
        raise BadTarget(f"workflow {wf.id!r}",
                        "is not committed; call .commit() on it (create_workflow(...)...commit()) "
                        "before running it", target=wf, engine=engine)
    return wf


def flow_workflow_of(target: Any, engine: str) -> Any:
    """The committed Mastra-syntax workflow of a target (the target itself or its `.workflow`).

    Raises `BadTarget` for a target of the wrong kind (checked before anything else, e.g.
    before input validation) and `Unsupported` for a target (a scenario) that carries no
    Mastra-syntax definition."""
    if is_flow_workflow(target):
        return _check_committed(target, engine)
    if hasattr(target, "workflow") and not is_flow_workflow(target):
        wf = target.workflow
        if wf is not None and is_flow_workflow(wf):
            return _check_committed(wf, engine)
        if wf is None:
            why = getattr(target, "workflow_reason", None)
            raise Unsupported(f"{_name(target)} has no Mastra-syntax definition"
                              + (f": {str(why).rstrip('. ')}" if why else "")
                              + f"; engine {engine!r} runs Mastra-syntax workflows")
        raise BadTarget(f"the .workflow of {_name(target)}",
                        f"is not a workflow (got {_describe(wf)}); engine {engine!r} runs a "
                        "committed create_workflow(...).commit()", target=target, engine=engine)
    if _is_durable_function(target):
        raise BadTarget(_name(target),
                        f"is a durable workflow function; engine {engine!r} runs Mastra-syntax "
                        "workflows (use engine 'native')", target=target, engine=engine)
    raise BadTarget(_describe(target),
                    f"is not a workflow; engine {engine!r} runs a committed "
                    "create_workflow(...).commit(): point the target at one",
                    target=target, engine=engine)


def native_workflow_of(target: Any) -> Any:
    """The hand-written durable workflow function of a target (the target or its `.native`)."""
    if is_flow_workflow(target):
        raise BadTarget(_name(target),
                        "is a Mastra-syntax workflow; engine 'native' runs hand-written durable "
                        f"@wf.workflow functions (use engine {MASTRA_ENGINES})",
                        target=target, engine="native")
    if hasattr(target, "native"):
        native = target.native
        if native is not None:
            return native
        why = getattr(target, "native_reason", None)
        raise Unsupported(f"engine 'native' runs hand-written durable workflows; {_name(target)} "
                          "has no `.native` definition" + (f": {str(why).rstrip('. ')}" if why else ""))
    if getattr(target, "workflow", None) is not None:
        raise Unsupported(f"engine 'native' runs hand-written durable workflows; {_name(target)} "
                          "has no `.native` definition")
    if callable(target) and not isinstance(target, type):
        return target
    raise BadTarget(_describe(target),
                    "is not a workflow; engine 'native' runs a durable @wf.workflow function",
                    target=target, engine="native")


def _is_durable_function(obj: Any) -> bool:
    """A function (or registered durable workflow) rather than a flow object."""
    return callable(obj) and not isinstance(obj, type) and not hasattr(obj, "graph")


def _describe(obj: Any) -> str:
    """`int 42`, `str 'x'`, `NoneType None` (the repr cut to 60 characters)."""
    text = repr(obj)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(obj).__name__} {text}"


def _name(target: Any) -> str:
    tid = getattr(target, "id", None)
    if isinstance(tid, str):
        kind = "workflow" if is_flow_workflow(target) else type(target).__name__
        return f"{kind} {tid!r}"
    qual = getattr(target, "__qualname__", None)
    if isinstance(qual, str):
        return f"function {qual!r}"
    return _describe(target)


_DB_WORLDS: dict[str, Any] = {}


def world_for_db(db: str | os.PathLike[str]) -> Any:
    """The durable world for the SQLite file `db` (the `db=` option of codegen and native): the
    process's current world when it is a SqliteWorld on that file, else one `SqliteWorld(db)`
    per file in this process."""
    import durable

    path = str(Path(db).resolve())
    env = os.environ.get("WFBENCH_DB")
    if env and str(Path(env).resolve()) == path:
        current = durable.get_world()
        cur_path = getattr(current, "path", None)
        if cur_path is not None and str(Path(cur_path).resolve()) == path:
            return current
    world = _DB_WORLDS.get(path)
    if world is None:
        world = _DB_WORLDS[path] = durable.SqliteWorld(path)
    return world


def where_runs_are(keeper: Any) -> str:
    """Where an engine keeps its runs, for messages: the SQLite file of a world / snapshot store,
    else a description of the in-memory keeper."""
    if keeper is None:
        return "this process (runs kept in memory; pass db= or $WFBENCH_DB to keep them in a file)"
    path = getattr(keeper, "path", None)
    if path:
        return str(path)
    return f"the {type(keeper).__name__} of this process"


def flow_resume_check(run: Any, wf: Any, run_id: str, store: Any, step: Any, engine: str) -> None:
    """Before a flow-interpreter resume (default, stepmode): `RunNotFound` for an unknown run,
    `NotResumable` for a run that ended or a step that is not suspended."""
    snap = store.load(wf.id, run_id) if store is not None else run._snapshot()
    if snap is None or snap.status == "pending":
        raise RunNotFound(run_id, where_runs_are(store), engine)
    if snap.status in ("success", "failed", "canceled"):
        raise NotResumable.finished(run_id, snap.status, step, engine)
    if step is None or snap.status != "suspended":
        return
    ids = _step_ids(step)
    suspended = [sid for sid in snap.suspended_paths
                 if getattr(snap.steps.get(sid), "status", None) == "suspended"]
    if ids and ids[0] not in suspended:
        listed = ", ".join(f"[{sid}]" for sid in suspended)
        raise NotResumable(f'This workflow step "{ids[0]}" was not suspended. Available suspended '
                           f"steps: {listed}", run_id=run_id, status="suspended", step=step,
                           engine=engine)


def _step_ids(step: Any) -> list[str]:
    if isinstance(step, str):
        return [step]
    if isinstance(step, list | tuple):
        return [i for s in step for i in _step_ids(s)]
    sid = getattr(step, "id", None)
    return [sid] if isinstance(sid, str) else []


class Engine(abc.ABC):
    """One way to execute a workflow. Every method returns a `flow.WorkflowResult`."""

    name: str = ""

    @abc.abstractmethod
    async def run(self, target: Any, input_data: Any = None, run_id: str | None = None,
                  **options: Any) -> Any:
        """Run `target` with `input_data` to its end (or its first suspension)."""

    @abc.abstractmethod
    async def resume(self, target: Any, run_id: str, step: Any = None,
                     resume_data: Any = None, **options: Any) -> Any:
        """Resume a suspended run of `target`."""

    def check(self, target: Any) -> None:  # noqa: B027 - optional hook
        """Raise `Unsupported` if this engine cannot run `target` (nothing is run)."""

    async def recover(self, target: Any, run_id: str) -> Any:
        """Finish a run whose process died. Engines without a durable log cannot."""
        raise Unsupported(f"engine {self.name!r} keeps no durable log of its runs; it cannot "
                          f"recover run {run_id!r} after its process stopped (use codegen or native)")


def get_engine(name: str, **options: Any) -> Engine:
    """The engine called `name` (one of `ENGINE_NAMES`, or `temporal`), built with `options`.

    Options: `world=` (codegen, codegen-strict, native: a durable world; default the current one),
    `store=` (default, stepmode: a flow snapshot store), `db=` (every engine: a SQLite file; a
    `flow.SqliteSnapshotStore` for default/stepmode, a `durable.SqliteWorld` for codegen/native).
    """
    if name == "default":
        from engines.default import DefaultEngine

        return DefaultEngine(**options)
    if name in ("codegen", "codegen-strict"):
        from engines.codegen.engine import CodegenEngine

        return CodegenEngine(strict=name == "codegen-strict", **options)
    if name == "stepmode":
        from engines.stepmode import StepmodeEngine

        return StepmodeEngine(**options)
    if name == "native":
        from engines.native import NativeEngine

        return NativeEngine(**options)
    if name == "temporal":
        from engines.temporal.engine import TemporalEngine

        return TemporalEngine(**options)
    known = ", ".join((*ENGINE_NAMES, *SERVER_ENGINE_NAMES))
    raise EngineError(f"unknown engine {name!r}; choose one of {known}")
