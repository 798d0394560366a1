"""Run results: `StepResult` (one record per step id) and `WorkflowResult` (what a run returns).

Records follow reference section 3.2: a record is replaced (never mutated) when its step runs
again, by copying the previous record of the same id and overriding the changed fields (the merge
rule). Errors are kept as exception objects; `to_dict()` gives `{"name", "message"}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flow.errors import error_from_dict, error_to_dict

StepStatus = Literal["success", "failed", "suspended", "running", "waiting", "canceled"]
RunStatus = Literal["success", "failed", "suspended", "canceled"]

_OPTIONAL_FIELDS = (
    "started_at",
    "ended_at",
    "suspend_payload",
    "resume_payload",
    "suspended_at",
    "resumed_at",
    "metadata",
)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for `value`: pydantic models are dumped, tuples become lists."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, BaseException):
        return error_to_dict(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


@dataclass(slots=True)
class StepResult:
    """The record of one step id: status, input (`payload`), output or error, and timestamps.

    Timestamps are epoch seconds (floats). `metadata` holds e.g. `{"iteration_count": n}` for loops.
    """

    status: StepStatus
    output: Any = None
    payload: Any = None
    error: BaseException | None = None
    started_at: float | None = None
    ended_at: float | None = None
    suspend_payload: Any = None
    resume_payload: Any = None
    suspended_at: float | None = None
    resumed_at: float | None = None
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form; absent optional fields are left out, `output` only for `success`."""
        out: dict[str, Any] = {"status": self.status, "payload": to_jsonable(self.payload)}
        if self.status == "success":
            out["output"] = to_jsonable(self.output)
        if self.error is not None:
            out["error"] = error_to_dict(self.error)
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = to_jsonable(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        """Inverse of `to_dict` (errors come back as `flow.errors.RestoredError`)."""
        return cls(
            status=data["status"],
            output=data.get("output"),
            payload=data.get("payload"),
            error=error_from_dict(data.get("error")),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            suspend_payload=data.get("suspend_payload"),
            resume_payload=data.get("resume_payload"),
            suspended_at=data.get("suspended_at"),
            resumed_at=data.get("resumed_at"),
            metadata=data.get("metadata"),
        )


@dataclass
class WorkflowResult:
    """What `Run.start` / `Run.resume` return.

    - `status`: success | failed | suspended | canceled;
    - `result`: the last entry's output (success only);
    - `error`: the exception object (failed only);
    - `steps`: step id -> `StepResult` (the workflow input is the `input` field, not a step);
    - `suspended`: paths of suspended steps, e.g. `[["outer", "inner", "step"]]` (suspended only);
    - `state`: the run state at the end; `run_id`: the run's id.
    """

    status: RunStatus
    result: Any = None
    error: BaseException | None = None
    steps: dict[str, StepResult] = field(default_factory=dict)
    input: Any = None
    suspended: list[list[str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `result` for success, `error` ({"name","message"}) for failed,
        `suspended` for suspended; always `status, steps, input, state, run_id`."""
        out: dict[str, Any] = {
            "status": self.status,
            "run_id": self.run_id,
            "input": to_jsonable(self.input),
            "steps": {k: v.to_dict() for k, v in self.steps.items()},
            "state": to_jsonable(self.state),
        }
        if self.status == "success":
            out["result"] = to_jsonable(self.result)
        elif self.status == "failed":
            out["error"] = error_to_dict(self.error)
        elif self.status == "suspended":
            out["suspended"] = [list(p) for p in self.suspended]
        return out
