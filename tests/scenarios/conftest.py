"""Scenario tests: make the checkout's packages win over the same-named test directories.

With the editable install the project's packages are found by a meta-path finder that runs
after sys.path, and pytest puts tests/ on sys.path, so `import scenarios` / `import flow` would
otherwise find the namespace packages tests/scenarios/ and tests/flow/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path[:1]:
    sys.path.insert(0, ROOT)
for _name in ("flow", "durable", "scenarios"):
    _mod = sys.modules.get(_name)
    if _mod is not None and getattr(_mod, "__file__", None) is None:
        del sys.modules[_name]  # a namespace package picked up from tests/ before this ran
