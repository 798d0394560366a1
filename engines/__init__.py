"""engines: the one Engine interface and the engines behind it; where flow and durable meet.

`get_engine(name, **options)` for the names in `ENGINE_NAMES`; every engine's `run` / `resume`
returns a `flow.WorkflowResult`. `Unsupported(reason)` is raised before anything runs when an
engine cannot run a pattern (e.g. `codegen-strict` and a branch condition).
"""

from engines.base import ENGINE_NAMES, Engine, EngineError, Unsupported, get_engine

__all__ = ["ENGINE_NAMES", "Engine", "EngineError", "Unsupported", "get_engine"]
