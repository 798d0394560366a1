"""The graph model: the entries a workflow is built from, as plain frozen data.

`Workflow.graph` is a tuple of entries. Callables (conditions, sleep functions, map functions)
are kept on the entries; `serialize_graph` gives the JSON form without them. Engines walk this
tree (the default interpreter, the codegen compiler); nothing here executes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from flow.step import Step

Condition = Callable[..., Any]
"""A branch or loop condition: takes a context, returns (or awaits) a truthy value."""


@dataclass(frozen=True, eq=False)
class StepEntry:
    """`then(step)` (also `map(...)`, whose step has component `MAPPING`)."""

    step: Step
    type: Literal["step"] = "step"


@dataclass(frozen=True, eq=False)
class ParallelEntry:
    """`parallel([s1, s2, ...])`: every child runs concurrently on the same input."""

    steps: tuple[StepEntry, ...]
    type: Literal["parallel"] = "parallel"


@dataclass(frozen=True, eq=False)
class ConditionalEntry:
    """`branch([(cond, step), ...])`: every true branch runs, concurrently."""

    steps: tuple[StepEntry, ...]
    conditions: tuple[Condition, ...]
    type: Literal["conditional"] = "conditional"


@dataclass(frozen=True, eq=False)
class LoopEntry:
    """`dowhile(step, cond)` / `dountil(step, cond)`: the body runs at least once."""

    step: Step
    condition: Condition
    loop_type: Literal["dowhile", "dountil"]
    type: Literal["loop"] = "loop"


@dataclass(frozen=True, eq=False)
class ForeachEntry:
    """`foreach(step, concurrency=n)`: the step runs once per item of the input list."""

    step: Step
    concurrency: int = 1
    type: Literal["foreach"] = "foreach"


@dataclass(frozen=True, eq=False)
class SleepEntry:
    """`sleep(seconds | fn)`: exactly one of `duration` (seconds) and `fn` is set."""

    id: str
    duration: float | None = None
    fn: Callable[..., Any] | None = None
    type: Literal["sleep"] = "sleep"


@dataclass(frozen=True, eq=False)
class SleepUntilEntry:
    """`sleep_until(datetime | fn)`: exactly one of `date` and `fn` is set."""

    id: str
    date: datetime | None = None
    fn: Callable[..., Any] | None = None
    type: Literal["sleep_until"] = "sleep_until"


Entry = StepEntry | ParallelEntry | ConditionalEntry | LoopEntry | ForeachEntry | SleepEntry | SleepUntilEntry
"""One element of a flow graph."""

Graph = tuple[Entry, ...]
