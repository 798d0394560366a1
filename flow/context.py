"""What a step body (and a condition, sleep or map function) receives: `StepContext`.

Also `RequestContext` (a dict-like dependency container shared by the whole run and persisted
with its snapshot) and `StepWriter` (`await ctx.writer.write(x)` emits a `workflow-step-output`
event on the run's stream).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flow.validation import validate

if TYPE_CHECKING:
    from flow.interpreter import Execution


class _Done:
    """An awaitable that is already complete: `suspend()` works with or without `await`."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover - makes this a generator that finishes at once


_DONE = _Done()
_MISSING = object()


class RequestContext:
    """A dict-like container (`get/set/has/delete`, `[]`, `in`, iteration) shared by a run."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def has(self, key: str) -> bool:
        return key in self._data

    def delete(self, key: str) -> bool:
        return self._data.pop(key, _MISSING) is not _MISSING

    def keys(self) -> list[str]:
        return list(self._data)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._data.items())

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"RequestContext({self._data!r})"


def as_request_context(value: RequestContext | Mapping[str, Any] | None) -> RequestContext:
    """Accept a `RequestContext`, a plain mapping or None."""
    if isinstance(value, RequestContext):
        return value
    if value is None:
        return RequestContext()
    if isinstance(value, Mapping):
        return RequestContext(value)
    raise TypeError(f"request_context must be a RequestContext or a dict, got {type(value).__name__}")


class StepWriter:
    """`await writer.write(x)` emits `{type: "workflow-step-output", from: "USER",
    payload: {output: x, run_id, step_name}}`; `custom(chunk)` emits `chunk` unchanged."""

    __slots__ = ("_emit", "_run_id", "_step_name")

    def __init__(self, emit: Callable[[dict[str, Any]], None] | None, run_id: str, step_name: str):
        self._emit = emit
        self._run_id = run_id
        self._step_name = step_name

    async def write(self, output: Any) -> None:
        if self._emit is not None:
            self._emit({
                "type": "workflow-step-output",
                "run_id": self._run_id,
                "from": "USER",
                "payload": {"output": output, "run_id": self._run_id, "step_name": self._step_name},
            })

    async def custom(self, chunk: dict[str, Any]) -> None:
        if self._emit is not None:
            self._emit(chunk)


_META = "__workflow_meta"  # flow.interpreter.META: a nested run's path, kept out of validation


def _validate_suspend(schema: Any, payload: Any) -> Any:
    """The suspend payload validated against the step's `suspend_schema` (defaults applied);
    raises `flow.ValidationError` ("Step suspend data validation failed: ..."), which fails the
    step like any error its body raises (reference 3.14, Δ1.x)."""
    prefix = "Step suspend data validation failed:"
    if isinstance(payload, dict) and _META in payload:
        body = validate(schema, {k: v for k, v in payload.items() if k != _META}, prefix)
        if isinstance(body, dict):
            return {**body, _META: payload[_META]}
        return body
    return validate(schema, payload, prefix)


class StepContext:
    """The single argument of a step's `execute` (and of conditions, sleep and map functions).

    Fields: `input_data, run_id, workflow_id, state, resume_data, retry_count, iteration_count,
    request_context, writer`; methods `set_state, suspend, bail, abort, get_init_data,
    get_step_result`. In conditions `retry_count == -1` and `suspend`/`bail` do nothing.
    """

    __slots__ = (
        "input_data",
        "run_id",
        "workflow_id",
        "state",
        "resume_data",
        "retry_count",
        "iteration_count",
        "request_context",
        "_execution",
        "_step_id",
        "_is_step",
        "_writer",
        "_new_state",
        "_suspended",
        "_suspend_payload",
        "_resume_label",
        "_bailed",
        "_bail_result",
        "_resume",
        "_path",
        "_suspend_schema",
        "_foreach_index",
    )

    def __init__(
        self,
        execution: Execution,
        step_id: str,
        input_data: Any,
        *,
        is_step: bool = True,
        resume_data: Any = None,
        retry_count: int = -1,
        iteration_count: int | None = None,
        state: dict[str, Any] | None = None,
        resume: Any = None,
        path: tuple[int, ...] = (),
    ) -> None:
        self._execution = execution
        self._step_id = step_id
        self._is_step = is_step
        self.input_data = input_data
        self.run_id = execution.run_id
        self.workflow_id = execution.workflow_id
        self.state = execution.state if state is None else state
        self.resume_data = resume_data
        self.retry_count = retry_count
        self.iteration_count = iteration_count
        self.request_context = execution.request_context
        self._writer: StepWriter | None = None
        self._new_state: dict[str, Any] | None = None
        self._suspended = False
        self._suspend_payload: Any = None
        self._resume_label: Any = None
        self._bailed = False
        self._bail_result: Any = None
        self._resume = resume
        self._path = path
        self._suspend_schema: Any = None  # set by the interpreter from the step's suspend_schema
        self._foreach_index: int | None = None  # the item, when run as the body of a foreach

    @property
    def writer(self) -> StepWriter:
        if self._writer is None:
            self._writer = StepWriter(self._execution.emit, self.run_id, self._step_id)
        return self._writer

    def set_state(self, new_state: Mapping[str, Any]) -> _Done:
        """Merge `new_state` into the run state when this step returns (awaitable or not)."""
        if not isinstance(new_state, Mapping):
            raise TypeError(f"set_state expects a dict, got {type(new_state).__name__}")
        if self._new_state is None:
            self._new_state = dict(new_state)
        else:
            self._new_state.update(new_state)
        return _DONE

    def suspend(self, payload: Any = None, resume_label: str | list[str] | None = None) -> _Done:
        """Mark this step suspended (it keeps running until it returns; its return value is
        ignored). `resume_label` names it for `run.resume(label=...)`."""
        if self._is_step:
            schema = self._suspend_schema
            if schema is not None and payload is not None and self._execution.validate_inputs:
                payload = _validate_suspend(schema, payload)
            self._suspended = True
            self._suspend_payload = payload
            self._resume_label = resume_label
        return _DONE

    def bail(self, result: Any = None) -> _Done:
        """End the step successfully with `result`; at top level the run ends with it."""
        if self._is_step:
            self._bailed = True
            self._bail_result = result
        return _DONE

    def abort(self) -> None:
        """Cancel the run (same as `run.cancel()`)."""
        self._execution.abort()

    @property
    def is_aborted(self) -> bool:
        """True once the run was canceled (a long step can watch this)."""
        return self._execution.aborted

    def get_init_data(self) -> Any:
        """The workflow input (after validation)."""
        return self._execution.input

    def get_step_result(self, step_or_id: Any) -> Any:
        """The output of that step if its record is `success`, else None."""
        sid = step_or_id if isinstance(step_or_id, str) else getattr(step_or_id, "id", None)
        if sid is None:
            return None
        rec = self._execution.step_results.get(sid)
        if rec is not None and rec.status == "success":
            return rec.output
        return None
