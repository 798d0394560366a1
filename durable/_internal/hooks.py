"""Hooks: durable waits for an external payload, identified by a token.

``class Approval(BaseHook, pydantic.BaseModel)`` (or a ``@dataclass`` subclass of BaseHook)
defines the payload. In a workflow body: ``approval = await Approval.wait(token="t")`` (creates
the hook, waits for the first payload, disposes the hook), or ``async with Approval.wait(token=
"t") as hook: async for approval in hook: ...`` for several payloads. From anywhere (another
process too): ``await Approval(ok=True).resume("t")``.

Payloads sent while the hook exists but before the body awaits it are kept, FIFO (they sit in
the run's inbox, then in the hook's buffer). A payload sent for a token that no live hook holds
raises HookNotFoundError (as in the reference: the hook must have been created) — nothing is
silently dropped. Tokens are unique among live hooks (HookConflictError for a second live hook);
hooks are disposed when the run ends, so tokens can be reused by later runs. A generated token
is ``"<run_id>:hook_<n>"`` — predictable; pass your own unguessable token where that matters.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

from durable._internal.context import current_body
from durable._internal.serialization import decode, encode

if TYPE_CHECKING:
    from durable._internal.driver import Op
    from durable._internal.world import HookRecord, World

H = TypeVar("H", bound="BaseHook")


class HookWait:
    """A hook created by `BaseHook.wait()` in a workflow body: awaitable (first payload, then
    disposed), an async context manager, and an async iterator over payloads."""

    def __init__(self, op: Op) -> None:
        self._op = op

    @property
    def token(self) -> str:
        """The hook's token."""
        return self._op.token

    async def _first(self) -> Any:
        try:
            return await self._next()
        finally:
            self.dispose()

    def _next(self) -> Any:
        body = current_body()
        if body is None:
            raise RuntimeError("a hook can only be awaited inside the workflow body that created it")
        return body.next_payload(self._op)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._first().__await__()

    async def __aenter__(self) -> HookWait:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.dispose()

    def __aiter__(self) -> HookWait:
        return self

    async def __anext__(self) -> Any:
        return await self._next()

    def dispose(self) -> None:
        """Dispose the hook: its token is freed; later resumes raise HookNotFoundError."""
        body = current_body()
        if body is not None:
            body.dispose_hook(self._op)


class BaseHook:
    """Base class of hook payload types (combine with pydantic.BaseModel or use @dataclass)."""

    @classmethod
    def wait(cls, *, token: str | None = None, metadata: Any = None) -> HookWait:
        """Create a hook in the current workflow body and return it (await it for a payload)."""
        body = current_body()
        if body is None:
            raise RuntimeError(
                f"{cls.__name__}.wait() can only be called inside a workflow body; "
                f"from outside, send a payload with `await {cls.__name__}(...).resume(token)`"
            )
        return HookWait(body.create_hook(cls, token, metadata))

    def to_payload(self) -> Any:
        """The JSON payload of this hook instance."""
        dump = getattr(self, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        if dataclasses.is_dataclass(self):
            return decode(encode(dataclasses.asdict(self)))
        return decode(encode(dict(vars(self))))

    async def resume(self, token: str, *, world: World | None = None) -> HookRecord:
        """Send this payload to the live hook with `token` (from any process).

        Raises HookNotFoundError when no live hook has the token."""
        return resume_hook(token, self.to_payload(), world=world)


def resume_hook(token: str, payload: Any, *, world: World | None = None) -> HookRecord:
    """Send a JSON payload to the live hook with `token` (used by BaseHook.resume)."""
    from durable._internal.driver import LOCAL_DRIVERS
    from durable._internal.runs import get_world

    if current_body() is not None:
        raise RuntimeError("resume() cannot be called inside a workflow body: call it from a step")
    if not isinstance(token, str) or not token:
        raise ValueError(f"hook token must be a non-empty string, got {token!r}")
    w = world if world is not None else get_world()
    rec = w.send_hook_payload(token, decode(encode(payload)), time.time())
    drv = LOCAL_DRIVERS.get(rec.run_id)
    if drv is not None and drv.world is w:
        drv.wake()
    return rec
