"""Harness tests: the fakes module (harness_fakes.py) and shared helpers beside the tests are
importable by name (the suite runs with --import-mode=importlib, which adds no test directory to
sys.path), and so are the fakes in the child processes the runner starts (via PYTHONPATH)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
