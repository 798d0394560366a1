"""Steps: the unit of work of a flow graph, and the `create_step` / `clone_step` factories.

A `Step` is plain data plus one callable (`execute`). Mapping steps made by `Workflow.map()`
carry their mapping in `map_config` so that engines (codegen) can read it without calling it.
A committed `flow.Workflow` is also usable wherever a `Step` is expected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from flow.context import StepContext

ExecuteFn = Callable[["StepContext"], Any | Awaitable[Any]]
"""A step body: a sync or async callable taking one `StepContext`."""

Component = Literal["STEP", "MAPPING", "WORKFLOW"]


@dataclass(frozen=True, eq=False)
class MappingSpec:
    """One key of a mapping object passed to `Workflow.map({...})`.

    Exactly one source is set:
    - `value` (with `has_value=True`): a constant;
    - `step` (a step, a step id, or a list of them: the first with a truthy result) + `path`;
    - `init_data=True` + `path`: from the workflow input;
    - `request_context_path`: `ctx.request_context.get(key)` (a key, not a dotted path);
    - `fn`: a callable taking the step context (a dynamic mapping).
    `path == "."` means the whole value; otherwise a dotted walk.
    """

    value: Any = None
    has_value: bool = False
    step: Any = None
    init_data: bool = False
    path: str = "."
    request_context_path: str | None = None
    fn: Callable[..., Any] | None = None
    schema: Any = None


@dataclass(frozen=True, eq=False)
class Step:
    """A step: an id, optional pydantic schemas, a retry override and an `execute` callable."""

    id: str
    execute: ExecuteFn
    description: str | None = None
    input_schema: Any = None
    output_schema: Any = None
    resume_schema: Any = None
    suspend_schema: Any = None
    state_schema: Any = None
    retries: int | None = None
    component: Component = "STEP"
    # For mapping steps: the mapping object (key -> MappingSpec) or the map function.
    map_config: Mapping[str, MappingSpec] | Callable[..., Any] | None = field(default=None)

    def __repr__(self) -> str:
        return f"Step(id={self.id!r}, component={self.component!r})"


def create_step(
    id: str,
    execute: ExecuteFn,
    input_schema: Any = None,
    output_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    state_schema: Any = None,
    retries: int | None = None,
    description: str | None = None,
) -> Step:
    """Create a step. `execute` receives one `StepContext` and may be sync or async."""
    if not isinstance(id, str) or not id:
        raise ValueError(f"create_step: id must be a non-empty string, got {id!r}")
    if not callable(execute):
        raise TypeError(f"create_step({id!r}): execute must be callable, got {type(execute).__name__}")
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise ValueError(f"create_step({id!r}): retries must be a non-negative int, got {retries!r}")
    return Step(
        id=id,
        execute=execute,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        resume_schema=resume_schema,
        suspend_schema=suspend_schema,
        state_schema=state_schema,
        retries=retries,
    )


def clone_step(step: Step, id: str) -> Step:
    """A copy of `step` under a new id (same schemas, body and retries)."""
    return replace(step, id=id)
