"""tests/engines: make the real packages and this directory's helper modules importable in any
pytest import mode (tests/ on sys.path must not shadow `engines` or `durable`)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for p in (str(HERE), str(ROOT)):
    if p in sys.path:
        sys.path.remove(p)
    sys.path.insert(0, p)

import durable  # noqa: E402,F401  (the runtime, before anything can shadow it)
import engines  # noqa: E402,F401
