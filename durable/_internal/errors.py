"""Error classes of the durable runtime (re-exported from `durable`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


class FatalError(Exception):
    """Raised by a step to fail it at once: no retry. The workflow body receives it."""


class RetryableError(Exception):
    """Raised by a step to ask for a retry after `retry_after`.

    `retry_after` is seconds (int/float, as in the official Python SDK), a duration string
    ("500ms", "2s"), a `timedelta`, or an absolute `datetime`. Default: 1 second (the reference).
    """

    def __init__(
        self,
        message: str = "",
        retry_after: float | int | str | timedelta | datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NondeterminismError(Exception):
    """The workflow body made a call that does not match its event log at some position.

    The run fails with this error; its message names the position, what the log has and what
    the code called.
    """


class HookNotFoundError(LookupError):
    """No live hook has this token (never created, already disposed, or its run has ended)."""


class HookConflictError(Exception):
    """A hook was created with a token that another live hook already holds."""


class RunNotFoundError(LookupError):
    """No run with this run id exists in the world."""


class WorkflowRunFailedError(Exception):
    """`Run.return_value()` on a failed run. `.cause` is the error that failed it."""

    def __init__(self, run_id: str, cause: BaseException) -> None:
        super().__init__(f"workflow run {run_id} failed: {type(cause).__name__}: {cause}")
        self.run_id = run_id
        self.cause = cause


class WorkflowRunCancelledError(Exception):
    """`Run.return_value()` on a cancelled (terminated) run."""

    def __init__(self, run_id: str, reason: str | None = None) -> None:
        msg = f"workflow run {run_id} was cancelled"
        super().__init__(msg + (f": {reason}" if reason else ""))
        self.run_id = run_id
        self.reason = reason


class WorkflowSandboxError(RuntimeError):
    """A workflow body called something the determinism sandbox refuses (I/O, threads, ...)."""


class WorkflowNotRegisteredError(LookupError):
    """A run's workflow is not registered in this process and could not be imported/loaded."""


class LeaseLostError(Exception):
    """Internal: another process took over the run this driver was holding."""


class WorldError(RuntimeError):
    """A problem with the world's storage (base class; the message names the file)."""


class WorldCorruptError(WorldError):
    """The world's storage file is not a wfbench SQLite database, or it (or one of its
    records) is corrupt."""


class WorldWriteError(WorldError):
    """The world's storage cannot be written (disk full, I/O error, read-only file, path that
    cannot be created). What was committed before is intact; the run stays recoverable."""


BUILTIN_ERROR_NAMES: dict[str, type[BaseException]] = {}


def _init_builtin() -> None:
    import builtins

    for name in dir(builtins):
        obj: Any = getattr(builtins, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            BUILTIN_ERROR_NAMES[name] = obj


_init_builtin()
