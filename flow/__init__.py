"""flow: Mastra-syntax workflows in Python, with the default (direct) interpreter.

Imports nothing else of wfbench.
"""

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
from flow.step import MappingSpec, Step, clone_step, create_step

__all__ = [
    "ConditionalEntry",
    "Entry",
    "ForeachEntry",
    "LoopEntry",
    "MappingSpec",
    "ParallelEntry",
    "SleepEntry",
    "SleepUntilEntry",
    "Step",
    "StepEntry",
    "clone_step",
    "create_step",
]
