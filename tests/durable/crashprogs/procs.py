"""Parent-side helpers for the durable subprocess tests: spawn ``driver.py``, follow its JSON
lines, poll side-effect files, SIGKILL a child.

The test modules import this file by path (it is not a package), so it works whatever the
import mode pytest uses for ``tests/``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CRASHPROGS = Path(__file__).resolve().parent
REPO_ROOT = CRASHPROGS.parents[2]
DRIVER = CRASHPROGS / "driver.py"

#: Upper bound for any single wait on a child; a hang fails the test instead of blocking CI.
TIMEOUT = 60.0


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child: crashprogs and the repo on PYTHONPATH, no inherited WFBENCH_DB."""
    env = dict(os.environ)
    env.pop("WFBENCH_DB", None)
    parts = [str(CRASHPROGS), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Child:
    """One ``driver.py`` process; stdout is read line by line (JSON), stderr goes to a file."""

    _counter = 0

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        Child._counter += 1
        self.args = args
        self.stderr_path = workdir / f"child{Child._counter}-{args[0]}.stderr"
        self._stderr = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=child_env(env),
            cwd=workdir,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            raw = raw.strip()
            if raw:
                try:
                    self.lines.put(json.loads(raw))
                except ValueError:
                    self.lines.put({"raw": raw})
        self.lines.put(None)

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8")

    def describe(self) -> str:
        return (
            f"driver {' '.join(self.args)} (exit {self.proc.poll()})\n"
            f"stdout so far: {self.seen}\nstderr:\n{self.stderr()[-4000:]}"
        )

    def expect(self, key: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Wait for the next stdout JSON line that has ``key``; fail if the child ends first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key!r} line within {timeout}s from " + self.describe())
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                self.proc.wait(timeout=TIMEOUT)
                raise AssertionError(f"child ended before printing {key!r}: " + self.describe())
            self.seen.append(item)
            if key in item:
                return item

    def kill(self) -> None:
        """SIGKILL the child (no cleanup handlers run) and reap it. A child that has already
        exited cannot be killed mid-work: that fails the test with its output."""
        if self.proc.poll() is not None:
            raise AssertionError("child exited before it could be killed: " + self.describe())
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)
        self._stderr.close()

    def finish(self, timeout: float = TIMEOUT) -> int:
        """Wait for a normal exit; return the exit code (a hang beyond ``timeout`` fails)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"child did not exit within {timeout}s: " + self.describe()
            ) from exc
        self._reader.join(timeout=TIMEOUT)
        while not self.lines.empty():
            item = self.lines.get_nowait()
            if item is not None:
                self.seen.append(item)
        self._stderr.close()
        return rc

    def ensure_dead(self) -> None:
        """Cleanup for test teardown: kill the child if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()


def run_to_end(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Child:
    """Run a driver command to completion; fail with its stderr unless it exits 0."""
    child = Child(workdir, *args, env=env)
    rc = child.finish()
    assert rc == 0, child.describe()
    return child


def read_lines(path: Path) -> list[str]:
    """The side-effect file's lines (empty list if it does not exist yet)."""
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").splitlines()


def wait_for_lines(path: Path, count: int, child: Child, timeout: float = TIMEOUT) -> list[str]:
    """Poll the side-effect file until it has at least ``count`` lines."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(path)
        if len(lines) >= count:
            return lines
        if child.proc.poll() is not None:
            raise AssertionError(
                f"child ended with {len(lines)} side-effect lines (< {count}): " + child.describe()
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"side-effect file has {lines} after {timeout}s")
        time.sleep(0.01)
