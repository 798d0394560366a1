"""The one `Engine` interface, the `Unsupported` refusal, target resolution and `get_engine`.

A *target* is a committed flow workflow, a hand-written durable workflow function (for `native`),
or an object carrying both as `.workflow` (flow) and `.native` (durable workflow function), e.g.
a scenario. Each engine takes the definition it runs from the target.
"""

from __future__ import annotations

import abc
from typing import Any


class Unsupported(Exception):  # noqa: N818 - the name is the contract
    """An engine cannot run this pattern; raised before anything runs. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EngineError(ValueError):
    """Bad use of an engine (unknown engine name, a target of the wrong kind, unknown run)."""


ENGINE_NAMES: tuple[str, ...] = ("default", "codegen", "codegen-strict", "stepmode", "native")


def is_flow_workflow(obj: Any) -> bool:
    """True for a committed `flow.Workflow`."""
    try:
        from flow import Workflow  # type: ignore[attr-defined]
    except ImportError:
        return False
    return isinstance(obj, Workflow)


def flow_workflow_of(target: Any, engine: str) -> Any:
    """The Mastra-syntax workflow of a target (the target itself or its `.workflow`)."""
    if is_flow_workflow(target):
        return target
    wf = getattr(target, "workflow", None)
    if wf is not None and is_flow_workflow(wf):
        return wf
    if wf is None and callable(target):
        raise Unsupported(f"engine {engine!r} runs Mastra-syntax workflows; "
                          f"{_name(target)} is a durable workflow function (use engine 'native')")
    raise Unsupported(f"engine {engine!r} needs a committed flow workflow (or a target with "
                      f"`.workflow`), got {_name(target)}")


def native_workflow_of(target: Any) -> Any:
    """The hand-written durable workflow function of a target (the target or its `.native`)."""
    native = getattr(target, "native", None)
    if native is not None:
        return native
    if is_flow_workflow(target) or getattr(target, "workflow", None) is not None:
        raise Unsupported(f"engine 'native' runs hand-written durable workflows; {_name(target)} "
                          "has no `.native` definition")
    if callable(target):
        return target
    raise Unsupported(f"engine 'native' needs a durable workflow function, got {_name(target)}")


def _name(target: Any) -> str:
    tid = getattr(target, "id", None)
    if isinstance(tid, str):
        return f"{type(target).__name__} {tid!r}"
    qual = getattr(target, "__qualname__", None)
    if isinstance(qual, str):
        return f"function {qual!r}"
    return repr(target)


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
    """The engine called `name` (one of `ENGINE_NAMES`), built with `options`.

    Options: `world=` (codegen, codegen-strict, native: a durable world; default the current one),
    `store=` (default: a flow snapshot store).
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
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
