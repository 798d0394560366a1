"""engines: the one Engine interface and the engines behind it; where flow and durable meet.

`get_engine(name, **options)` for the names in `ENGINE_NAMES` (the local engines) and
`SERVER_ENGINE_NAMES` (`temporal`, opt-in: it needs a Temporal server); every engine's `run` / `resume`
returns a `flow.WorkflowResult`. `Unsupported(reason)` is raised before anything runs when an
engine cannot run a pattern (e.g. `codegen-strict` and a branch condition).

Bad use raises a subclass of `EngineError` (a ValueError) with a one-line message:
`BadTarget` (not a workflow, uncommitted, wrong kind for the engine; checked before the input),
`RunNotFound` (resume of an unknown run id), `NotResumable` (resume of a run that completed,
failed or was canceled, or of a step that is not suspended).
"""

from engines.base import (
    ENGINE_NAMES,
    LOCAL_ENGINE_NAMES,
    SERVER_ENGINE_NAMES,
    BadTarget,
    Engine,
    EngineError,
    NotResumable,
    RunNotFound,
    Unsupported,
    get_engine,
)

__all__ = ["ENGINE_NAMES", "LOCAL_ENGINE_NAMES", "SERVER_ENGINE_NAMES", "BadTarget", "Engine", "EngineError", "NotResumable", "RunNotFound",
           "Unsupported", "get_engine"]
