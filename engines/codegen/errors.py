"""Errors of codegen runs across the JSON boundary, with their class kept.

A codegen run keeps its flow result as JSON in the durable world (the body's return value), and
a step's failure crosses the durable step boundary as JSON too. flow's own JSON form of an error
is `{"name", "message"}`, which loses the class (`flow.errors.RestoredError`). Here:

- `error_json(exc)` is flow's form plus durable's `type`, `module` and `args`
  (`{"name", "message", "type", "module", "args"}`), so both readers understand it;
- `restore_error(data)` rebuilds the exception with durable's rule (a builtin by name, a durable
  error, a class registered with `durable.register_error`, an importable `module:qualname`);
  when none applies it returns an instance of a subclass of `RestoredError` *named after the
  original class* (`type(e).__name__ == "BrokenThing"`, `e.name == "BrokenThing"`);
- `StepFailed` is the `durable.FatalError` a flow step raises when flow's retries are used up
  (the runtime must not retry it any more); it carries the original class, and
  `original_error(exc)` turns it (or a copy of it rebuilt from the log) back into that class.
"""

from __future__ import annotations

from typing import Any

from flow.errors import RestoredError, error_name

_RESTORED: dict[tuple[str, str | None], type[RestoredError]] = {}


def restored_class(name: str, module: str | None = None) -> type[RestoredError]:
    """A `RestoredError` subclass whose `__name__` is `name` (one per name and module)."""
    key = (name, module)
    cls = _RESTORED.get(key)
    if cls is None:

        def _repr(self: RestoredError) -> str:
            return f"{type(self).__name__}({str(self)!r})"

        cls = type(name, (RestoredError,), {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"An error of class {name!r}"
                       + (f" (module {module!r})" if module else "")
                       + " read back from a codegen run; the class itself is not importable here.",
            "__repr__": _repr,
            "original_module": module,
        })
        _RESTORED[key] = cls
    return cls


def restored(name: str, message: str, module: str | None = None) -> RestoredError:
    """An instance of `restored_class(name, module)`."""
    return restored_class(name, module)(name, message)


def error_json(exc: BaseException) -> dict[str, Any]:
    """flow's `{"name", "message"}` plus durable's `type`, `module`, `args` (JSON values)."""
    out: dict[str, Any] = {"name": error_name(exc), "message": str(exc)}
    if isinstance(exc, RestoredError):
        module = getattr(exc, "original_module", None)
        if module:
            out.update(type=exc.name, module=module, args=[str(exc)])
        return out
    if isinstance(exc, StepFailed):
        out.update(name=exc.original_type, type=exc.original_type, module=exc.original_module,
                   args=exc.original_args, message=exc.original_message)
        return out
    from durable._internal.serialization import error_to_dict

    d = error_to_dict(exc)
    out.update(type=d["type"], module=d["module"], args=d["args"])
    return out


def restore_error(data: Any) -> BaseException | None:
    """The exception described by `error_json` (or flow's / durable's JSON form of an error)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return RestoredError("Error", str(data))
    message = str(data.get("message", ""))
    qualname = data.get("type")
    module = data.get("module")
    name = str(data.get("name") or (qualname.rsplit(".", 1)[-1] if isinstance(qualname, str)
                                    else "") or "Error")
    if isinstance(qualname, str) and isinstance(module, str):
        from durable._internal.serialization import error_from_dict

        try:
            exc = error_from_dict({"type": qualname, "module": module, "message": message,
                                   "args": data.get("args")})
        except Exception:  # a class whose constructor cannot take the stored args
            exc = None
        if exc is not None and type(exc).__qualname__ == qualname and str(exc) == message:
            return original_error(exc)
        if exc is not None and type(exc).__qualname__ == qualname:
            try:
                exc.args = (message,)
                return exc
            except Exception:  # noqa: S110 - fall back to the named RestoredError below
                pass
        return restored(name, message, module)
    from durable._internal.errors import BUILTIN_ERROR_NAMES

    builtin = BUILTIN_ERROR_NAMES.get(name)
    if builtin is not None and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except Exception:  # noqa: S110 - e.g. UnicodeDecodeError needs 5 args
            pass
    return restored(name, message)


def _fatal_base() -> type[Exception]:
    from durable import FatalError

    return FatalError  # type: ignore[no-any-return]


class StepFailed(_fatal_base()):  # type: ignore[misc]
    """A flow step failed and flow's retries are used up: a `durable.FatalError` (no more
    retries) that keeps the original error's class. `args` are JSON values, so the durable log
    rebuilds it exactly (importable as `engines.codegen.errors:StepFailed`)."""

    def __init__(self, original_type: str, original_module: str, original_message: str,
                 original_args: Any = None) -> None:
        super().__init__(original_type, original_module, original_message, original_args)
        self.original_type = original_type
        self.original_module = original_module
        self.original_message = original_message
        self.original_args = original_args

    @classmethod
    def of(cls, exc: BaseException) -> StepFailed:
        d = error_json(exc)
        return cls(str(d.get("type") or d["name"]), str(d.get("module") or ""), d["message"],
                   d.get("args"))

    def __str__(self) -> str:
        return f"{self.original_type}: {self.original_message}"


def original_error(exc: BaseException) -> BaseException:
    """`exc`, or for a `StepFailed` the error it stands for (rebuilt with its class)."""
    if isinstance(exc, StepFailed):
        rebuilt = restore_error({"name": exc.original_type, "type": exc.original_type,
                                 "module": exc.original_module or None,
                                 "message": exc.original_message, "args": exc.original_args})
        return rebuilt if rebuilt is not None else exc
    return exc


__all__ = ["StepFailed", "error_json", "original_error", "restore_error", "restored",
           "restored_class"]
