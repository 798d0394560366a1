"""Context variables: which workflow body or step the current task belongs to, plus the
metadata records returned by get_step_metadata()/get_workflow_metadata()."""

from __future__ import annotations

import contextvars
import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from durable._internal.driver import BodyContext

CURRENT_BODY: contextvars.ContextVar[BodyContext | None] = contextvars.ContextVar(
    "durable_current_body", default=None
)


@dataclass(frozen=True)
class StepMetadata:
    """What `get_step_metadata()` returns inside a step.

    ``step_id`` is the step's correlation id, stable across retries and recovery: use it as the
    idempotency key of external side effects (steps are at-least-once). ``attempt`` is 1-based.
    ``step_started_at`` is the first start, not reset per attempt.
    """

    run_id: str
    step_id: str
    step_name: str
    attempt: int
    step_started_at: datetime
    workflow_name: str = ""


@dataclass(frozen=True)
class WorkflowMetadata:
    """What `get_workflow_metadata()` returns inside a workflow body or one of its steps."""

    run_id: str
    workflow_name: str
    started_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)


class LazyStepMetadata(tuple):  # type: ignore[type-arg]
    """What the driver puts in CURRENT_STEP: the StepMetadata fields ``(run_id, step_id,
    step_name, attempt, started_at, workflow_name)``, made into the (frozen) record only when a
    step asks for it (most steps never do). A tuple subclass: made in C, one per step. Its plain
    fields are readable as attributes too (`get_step_info`), without making the record."""

    run_id = property(operator.itemgetter(0))
    step_id = property(operator.itemgetter(1))
    step_name = property(operator.itemgetter(2))
    attempt = property(operator.itemgetter(3))
    workflow_name = property(operator.itemgetter(5))

    def get(self) -> StepMetadata:
        made: StepMetadata | None = self.__dict__.get("made")
        if made is None:
            made = self.__dict__["made"] = StepMetadata(
                self[0], self[1], self[2], self[3], datetime.fromtimestamp(self[4], UTC), self[5])
        return made


CURRENT_STEP: contextvars.ContextVar[StepMetadata | LazyStepMetadata | None] = (
    contextvars.ContextVar("durable_current_step", default=None))
CURRENT_STEP_WORKFLOW: contextvars.ContextVar[WorkflowMetadata | None] = contextvars.ContextVar(
    "durable_current_step_workflow", default=None
)


class StepInfo(Protocol):
    """What `get_step_info()` returns: the plain fields of the step's metadata."""

    @property
    def run_id(self) -> str: ...

    @property
    def step_id(self) -> str: ...

    @property
    def step_name(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def workflow_name(self) -> str: ...


def current_body() -> BodyContext | None:
    """The workflow body context of the running task, or None outside workflow bodies."""
    return CURRENT_BODY.get()
