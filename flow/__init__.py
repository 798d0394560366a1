"""flow: Mastra-syntax workflows in Python, with the default (direct) interpreter.

Build with `create_step` / `create_workflow(...).then(...)...commit()`, run with
`workflow.create_run().start(input_data=...)`. Semantics: ../shared/reference/mastra-semantics.md.
Imports nothing else of wfbench.
"""

from flow import interpreter, mapping
from flow.context import RequestContext, StepContext, StepWriter
from flow.errors import FlowError, NotRecoverableError, RestoredError, ValidationError
from flow.graph import (
    ConditionalEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    SleepUntilEntry,
    StepEntry,
)
from flow.mapping import map_fn, map_init, map_request_context, map_step, map_value
from flow.results import StepResult, WorkflowResult
from flow.run import Run
from flow.step import MappingSpec, Step, clone_step, create_step
from flow.storage import MemorySnapshotStore, RunSnapshot, SnapshotStore, SqliteSnapshotStore
from flow.stream import WorkflowStream
from flow.workflow import Workflow, clone_workflow, create_workflow

__all__ = [
    "ConditionalEntry",
    "Entry",
    "FlowError",
    "ForeachEntry",
    "LoopEntry",
    "MappingSpec",
    "MemorySnapshotStore",
    "NotRecoverableError",
    "ParallelEntry",
    "RequestContext",
    "RestoredError",
    "Run",
    "RunSnapshot",
    "SleepEntry",
    "SleepUntilEntry",
    "SnapshotStore",
    "SqliteSnapshotStore",
    "Step",
    "StepContext",
    "StepEntry",
    "StepResult",
    "StepWriter",
    "ValidationError",
    "Workflow",
    "WorkflowResult",
    "WorkflowStream",
    "clone_step",
    "clone_workflow",
    "create_step",
    "create_workflow",
    "interpreter",
    "map_fn",
    "map_init",
    "map_request_context",
    "map_step",
    "map_value",
    "mapping",
]
