"""Lease owner ids and dead-owner detection.

An owner id is ``"<host>:<pid>:<token>"``. A lease is taken over when it has expired, or at
once when its owner is on this host and its process is gone (or, for this process, the driver
that took it is no longer alive).
"""

from __future__ import annotations

import os
import socket
import uuid

HOST = socket.gethostname().replace(":", "_")
LIVE_TOKENS: set[str] = set()


def new_owner() -> str:
    """A fresh owner id for one driver; registered as alive in this process."""
    token = uuid.uuid4().hex[:12]
    LIVE_TOKENS.add(token)
    return f"{HOST}:{os.getpid()}:{token}"


def retire_owner(owner: str) -> None:
    """Mark a driver's owner id as no longer alive."""
    LIVE_TOKENS.discard(owner.rsplit(":", 1)[-1])


def owner_is_dead(owner: str) -> bool:
    """True when the owner is on this host and certainly no longer running."""
    try:
        host, pid_s, token = owner.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != HOST:
        return False
    if pid == os.getpid():
        return token not in LIVE_TOKENS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return data.rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
