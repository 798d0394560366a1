"""The determinism sandbox of workflow bodies.

Installed once (the first time a body runs), as wrappers around stdlib functions. A wrapper
acts only when the current task is inside a workflow body (``CURRENT_BODY`` is set); everywhere
else — steps, the host program, other threads — it calls the real function.

Inside a body:
- deterministic, run-derived, identical on replay: ``time.time/time_ns/monotonic/monotonic_ns/
  perf_counter/perf_counter_ns`` (the run's logical clock), ``datetime.datetime.now/utcnow/
  today`` (while the body runs, ``datetime.datetime`` — in the datetime module and in the
  workflow's module globals — is a look-alike class whose ``now`` reads the logical clock),
  ``random.*`` module functions and ``uuid.uuid4``/``os.urandom`` (a PRNG seeded by the run id).
- refused with WorkflowSandboxError naming the rule and saying to put it in a step: ``open``
  (builtins/io), ``socket`` connections and lookups, ``subprocess``/``os.system``/``os.popen``,
  ``threading.Thread.start``, ``time.sleep``, ``uuid.uuid1``, asyncio timers.

The logical clock is the run's creation time until the first result is delivered, then the
recorded time of the last delivered event (step result, wait completion, hook payload).
Limits: names imported before the sandbox was installed (``from time import time``) keep the
real function; `date.today()` is not patched.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _datetime_mod
import io
import os
import random as _random_mod
import socket
import subprocess
import threading
import time as _time_mod
import uuid as _uuid_mod
from collections.abc import Callable, Iterator
from typing import Any

from durable._internal.context import CURRENT_BODY
from durable._internal.errors import WorkflowSandboxError

_REAL_DT = _datetime_mod.datetime
_installed = False


def refuse(what: str, rule: str) -> WorkflowSandboxError:
    """The sandbox error for a refused call."""
    return WorkflowSandboxError(
        f"{what} is not allowed inside a workflow body (rule: {rule}): put it in a step"
    )


class _DTMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _REAL_DT)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL_DT)


class SandboxDatetime(_REAL_DT, metaclass=_DTMeta):
    """Stands in for datetime.datetime while a body runs; instances are real datetimes."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        return _REAL_DT(*args, **kwargs)

    @classmethod
    def now(cls, tz: _datetime_mod.tzinfo | None = None) -> Any:  # type: ignore[override]
        body = CURRENT_BODY.get()
        if body is None:
            return _REAL_DT.now(tz)
        return _REAL_DT.fromtimestamp(body.clock, tz)

    @classmethod
    def utcnow(cls) -> Any:  # type: ignore[override]
        body = CURRENT_BODY.get()
        if body is None:
            return _REAL_DT.utcnow()
        return _REAL_DT.fromtimestamp(body.clock, _datetime_mod.UTC).replace(tzinfo=None)

    @classmethod
    def today(cls) -> Any:  # type: ignore[override]
        return cls.now()


def _wrap(mod: Any, name: str, body_impl: Callable[..., Any]) -> None:
    real = getattr(mod, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        body = CURRENT_BODY.get()
        if body is None:
            return real(*args, **kwargs)
        return body_impl(body, *args, **kwargs)

    wrapper.__name__ = getattr(real, "__name__", name)
    wrapper.__doc__ = getattr(real, "__doc__", None)
    wrapper.__wrapped__ = real  # type: ignore[attr-defined]
    setattr(mod, name, wrapper)


def _refuser(what: str, rule: str) -> Callable[..., Any]:
    def impl(body: Any, *args: Any, **kwargs: Any) -> Any:
        raise refuse(what, rule)
    return impl


def _wrap_method(cls: type, name: str, what: str, rule: str) -> None:
    real = getattr(cls, name)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if CURRENT_BODY.get() is not None:
            raise refuse(what, rule)
        return real(self, *args, **kwargs)

    method.__name__ = name
    method.__wrapped__ = real  # type: ignore[attr-defined]
    setattr(cls, name, method)


_RANDOM_FUNCS = (
    "random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample",
    "getrandbits", "gauss", "normalvariate", "triangular", "betavariate", "expovariate",
    "randbytes",
)


def install() -> None:
    """Install the wrappers (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    clock_s: Callable[..., Any] = lambda body: body.clock  # noqa: E731
    clock_ns: Callable[..., Any] = lambda body: int(body.clock * 1e9)  # noqa: E731
    for name in ("time", "monotonic", "perf_counter"):
        _wrap(_time_mod, name, clock_s)
    for name in ("time_ns", "monotonic_ns", "perf_counter_ns"):
        _wrap(_time_mod, name, clock_ns)
    _wrap(_time_mod, "sleep", _refuser("time.sleep()", "no blocking sleeps in workflows; use "
                                       "`await durable.sleep(...)`"))
    for fname in _RANDOM_FUNCS:
        if hasattr(_random_mod, fname):
            _wrap(_random_mod, fname,
                  lambda body, *a, _f=fname, **k: getattr(body.rng, _f)(*a, **k))
    _wrap(_uuid_mod, "uuid4", lambda body: body.uuid4())
    _wrap(_uuid_mod, "uuid1", _refuser("uuid.uuid1()", "no host identity in workflows; use uuid4()"))
    _wrap(os, "urandom", lambda body, n: body.rng.randbytes(n))
    io_rule = "no I/O in workflows"
    _wrap(builtins, "open", _refuser("open()", io_rule))
    io.open = builtins.open
    _wrap(os, "system", _refuser("os.system()", "no subprocesses in workflows"))
    _wrap(os, "popen", _refuser("os.popen()", "no subprocesses in workflows"))
    _wrap_method(subprocess.Popen, "__init__", "subprocess", "no subprocesses in workflows")
    _wrap_method(socket.socket, "__init__", "socket", "no network I/O in workflows")
    for fname in ("create_connection", "getaddrinfo", "gethostbyname"):
        _wrap(socket, fname, _refuser(f"socket.{fname}()", "no network I/O in workflows"))
    _wrap_method(threading.Thread, "start", "threading.Thread.start()", "no threads in workflows")


def datetime_bindings(module_globals: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The (globals, name) pairs bound to the real datetime class (computed once per driver)."""
    return [(g, k) for g in module_globals for k, v in list(g.items()) if v is _REAL_DT]


def swap_datetime(bindings: list[tuple[dict[str, Any], str]]) -> None:
    """Make ``datetime.datetime`` (module attribute and the given bindings) SandboxDatetime;
    undo with `restore_datetime` (the pair is `datetime_swapped` without a generator)."""
    _datetime_mod.datetime = SandboxDatetime  # type: ignore[misc]
    for g, k in bindings:
        g[k] = SandboxDatetime


def restore_datetime(bindings: list[tuple[dict[str, Any], str]]) -> None:
    """Put the real ``datetime.datetime`` back (see `swap_datetime`)."""
    _datetime_mod.datetime = _REAL_DT  # type: ignore[misc]
    for g, k in bindings:
        g[k] = _REAL_DT


@contextlib.contextmanager
def datetime_swapped(bindings: list[tuple[dict[str, Any], str]]) -> Iterator[None]:
    """While active, ``datetime.datetime`` (module attribute and the given global bindings of
    the real class) is SandboxDatetime."""
    _datetime_mod.datetime = SandboxDatetime  # type: ignore[misc]
    for g, k in bindings:
        g[k] = SandboxDatetime
    try:
        yield
    finally:
        _datetime_mod.datetime = _REAL_DT  # type: ignore[misc]
        for g, k in bindings:
            g[k] = _REAL_DT
