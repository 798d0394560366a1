"""`AbortSignal`: the cancel flag of a run, shared with its nested runs; sleeps wait on it."""

from __future__ import annotations

import asyncio
import contextlib


class AbortSignal:
    """Set once by `Run.cancel()` or `ctx.abort()`; `sleep()` returns early when it is set."""

    __slots__ = ("aborted", "_event")

    def __init__(self) -> None:
        self.aborted = False
        self._event: asyncio.Event | None = None

    def abort(self) -> None:
        self.aborted = True
        if self._event is not None:
            self._event.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep `seconds` unless aborted first; return True if the signal is (or became) set."""
        if self.aborted:
            return True
        if seconds <= 0:
            await asyncio.sleep(0)
            return self.aborted
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        return self.aborted
