"""Errors raised by `flow` itself (build-time mistakes, bad input, resume misuse).

Errors raised by a step body are never wrapped: they are kept as the original exception objects.
"""

from __future__ import annotations


class FlowError(ValueError):
    """Base class of every error `flow` raises about how it is used (a `ValueError`)."""


class ValidationError(FlowError):
    """Input, state or resume data did not match its pydantic schema.

    `issues` lists `(field_path, message)` pairs, one per bad field.
    """

    def __init__(self, message: str, issues: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.issues: list[tuple[str, str]] = list(issues or [])


class NotRecoverableError(FlowError):
    """A run was left `running` by a process that stopped: the default engine cannot recover it."""


class RestoredError(Exception):
    """A step or workflow error read back from a persisted snapshot (JSON keeps name and message)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    def __repr__(self) -> str:
        return f"RestoredError({self.name!r}, {str(self)!r})"


def error_name(error: BaseException) -> str:
    """The error's class name (or the name kept by a `RestoredError`)."""
    if isinstance(error, RestoredError):
        return error.name
    return type(error).__name__


def error_to_dict(error: BaseException | None) -> dict[str, str] | None:
    """The JSON form of an error: `{"name", "message"}`."""
    if error is None:
        return None
    return {"name": error_name(error), "message": str(error)}


def error_from_dict(data: object) -> BaseException | None:
    """Inverse of `error_to_dict` for snapshots read from storage."""
    if data is None:
        return None
    if isinstance(data, dict):
        return RestoredError(str(data.get("name", "Error")), str(data.get("message", "")))
    return RestoredError("Error", str(data))
