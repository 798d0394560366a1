"""JSON serialization of values crossing a durable boundary, and of errors.

Values passed to/returned from steps, workflows and hook payloads must be JSON-serialisable.
Extras accepted on encode: pydantic models (``model_dump(mode="json")``), dataclasses
(``asdict``), datetime/date (ISO strings), sets/tuples (lists), bytes (rejected: encode them).
Everything is passed by value: the receiver gets ``json.loads`` of what was stored, identical
in the live process and on replay.

Errors are stored as ``{"type", "module", "message", "args", "fatal"}`` and reconstructed by
this rule: (1) a builtin exception class by name (ValueError, KeyError, ...); (2) a `durable`
error class (FatalError, RetryableError, ...); (3) a class registered with
``durable.register_error(cls)``; (4) otherwise a class importable as ``module:qualname`` that
is an Exception subclass; failing all of these, a ``FatalError("<module>.<Type>: <message>")``
with ``.error_type`` set.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import json.scanner
from datetime import date, datetime
from typing import Any

from durable._internal import errors as _errors

_REGISTERED_ERRORS: dict[str, type[BaseException]] = {}


def register_error(cls: type[BaseException]) -> type[BaseException]:
    """Register an exception class so a step failing with it is rebuilt with its type."""
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise TypeError(f"register_error expects an exception class, got {cls!r}")
    _REGISTERED_ERRORS[f"{cls.__module__}:{cls.__qualname__}"] = cls
    _REGISTERED_ERRORS.setdefault(cls.__qualname__, cls)
    return cls


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(
        f"value of type {type(obj).__name__} is not JSON-serialisable: pass JSON values, "
        "pydantic models or dataclasses across step/workflow boundaries"
    )


_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)
# The C encoder object, built once (json.JSONEncoder.encode builds a new one per call, which
# costs more than encoding a small value). No circular-reference markers: a cycle ends in
# RecursionError, reported below like the other unserialisable values.
_C_ENCODE: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]
)
_JOIN = "".join
_SIMPLE = str


def encode(value: Any) -> str:
    """Encode a value as compact JSON text (raises TypeError naming the bad type)."""
    try:
        if _C_ENCODE is None or isinstance(value, _SIMPLE):
            return _ENCODER.encode(value)
        return _JOIN(_C_ENCODE(value, 0))
    except (ValueError, RecursionError) as exc:  # circular reference
        raise TypeError(f"value cannot be serialised to JSON: {exc}") from None


def encode_call(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str:
    """``encode({"args": args, "kwargs": kwargs})``, built without the wrapper dict."""
    try:
        if _C_ENCODE is None:
            return _ENCODER.encode({"args": args, "kwargs": kwargs})
        if not args:  # (a flow-style step called with keywords only)
            if not kwargs:
                return '{"args":[],"kwargs":{}}'
            return '{"args":[],"kwargs":' + _JOIN(_C_ENCODE(kwargs, 0)) + "}"
        a = _JOIN(_C_ENCODE(args, 0))
        if not kwargs:
            return '{"args":' + a + ',"kwargs":{}}'
        return '{"args":' + a + ',"kwargs":' + _JOIN(_C_ENCODE(kwargs, 0)) + "}"
    except (ValueError, RecursionError) as exc:  # circular reference
        raise TypeError(f"value cannot be serialised to JSON: {exc}") from None


NOT_PLAIN: Any = object()  # what `copy_plain` returns for a value it does not copy
_SCALARS = frozenset((str, int, float, bool, type(None)))


def copy_plain(value: Any) -> Any:
    """What ``decode(encode(value))`` gives, made without JSON for the common flat values: a
    scalar (str, int, float, bool, None: itself), a list or tuple of scalars (a new list), a
    dict of str keys to scalars (a new dict), or a small dict of such values (new, one level
    deep). Exact types only (a bool/int/str subclass or a
    model is encoded differently). Anything else: `NOT_PLAIN` (encode and decode it)."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or type(v) not in _SCALARS:
                return _copy_nested(value)
        return value.copy()
    if t is list or t is tuple:
        for v in value:
            if type(v) not in _SCALARS:
                return NOT_PLAIN
        return list(value)
    return NOT_PLAIN


def _copy_nested(value: dict[str, Any]) -> Any:
    """`copy_plain` of a small dict whose values are scalars or flat values (one level of
    nesting, e.g. ``{"output": {"value": 1}}``); `NOT_PLAIN` for anything else."""
    if len(value) > 8:
        return NOT_PLAIN
    out = {}
    for k, v in value.items():
        if type(k) is not str:
            return NOT_PLAIN
        t = type(v)
        if t in _SCALARS:
            out[k] = v
            continue
        if t is dict:
            for k2, v2 in v.items():
                if type(k2) is not str or type(v2) not in _SCALARS:
                    return NOT_PLAIN
            out[k] = v.copy()
        elif t is list or t is tuple:
            for v2 in v:
                if type(v2) not in _SCALARS:
                    return NOT_PLAIN
            out[k] = list(v)
        else:
            return NOT_PLAIN
    return out


def copy_call(args: tuple[Any, ...], kwargs: dict[str, Any]
              ) -> tuple[list[Any], dict[str, Any]] | None:
    """``(args, kwargs)`` as decoding `encode_call`'s text gives them, when every argument
    is a flat value `copy_plain` copies; else None."""
    out = []
    for a in args:
        c = copy_plain(a)
        if c is NOT_PLAIN:
            return None
        out.append(c)
    if not kwargs:
        return out, {}
    kw = {}
    for k, v in kwargs.items():
        c = copy_plain(v)
        if c is NOT_PLAIN or type(k) is not str:
            return None
        kw[k] = c
    return out, kw


_SCAN: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type,attr-defined]


def decode_own(text: str) -> Any:
    """Decode JSON text that `encode` produced (no surrounding whitespace): the C scanner
    directly, without `json.loads`' whitespace handling."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def decode(text: str | None) -> Any:
    """Decode JSON text produced by `encode` (None stays None)."""
    if text is None:
        return None
    return json.loads(text)


def error_to_dict(exc: BaseException, fatal: bool = False) -> dict[str, Any]:
    """Serialise an exception to a JSON-able dict (type, module, message, args, fatal)."""
    cls = type(exc)
    args: list[Any] | None
    try:
        args = json.loads(encode(list(exc.args)))
    except TypeError:
        args = None
    d: dict[str, Any] = {
        "type": cls.__qualname__,
        "module": cls.__module__,
        "message": str(exc),
        "args": args,
        "fatal": fatal,
    }
    if isinstance(exc, _errors.RetryableError):
        d["retry_after"] = None
    return d


def _find_class(module: str, name: str) -> type[BaseException] | None:
    if module == "builtins":
        return _errors.BUILTIN_ERROR_NAMES.get(name)
    if module.startswith("durable"):
        obj = getattr(_errors, name, None)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
    reg = _REGISTERED_ERRORS.get(f"{module}:{name}")
    if reg is not None:
        return reg
    try:
        mod = importlib.import_module(module)
        obj = mod
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


def error_from_dict(d: dict[str, Any]) -> BaseException:
    """Rebuild an exception from `error_to_dict` output (see module docstring for the rule)."""
    name = str(d.get("type", "Exception"))
    module = str(d.get("module", "builtins"))
    message = str(d.get("message", ""))
    args = d.get("args")
    cls = _find_class(module, name)
    if cls is None:
        exc: BaseException = _errors.FatalError(f"{module}.{name}: {message}")
        exc.error_type = name  # type: ignore[attr-defined]
        return exc
    if cls is _errors.RetryableError:
        return _errors.RetryableError(message)
    for attempt in (args if isinstance(args, list) else None, [message]):
        if attempt is None:
            continue
        try:
            return cls(*attempt)
        except Exception:
            continue
    try:
        exc = cls.__new__(cls)
        exc.args = (message,)
        return exc
    except Exception:
        return _errors.FatalError(f"{module}.{name}: {message}")
