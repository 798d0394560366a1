"""tests/bench runs only when selected with `-m bench` (tox -e bench); otherwise skipped."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "bench" in (config.getoption("markexpr", "") or "").replace("not bench", ""):
        return
    skip = pytest.mark.skip(reason="benchmarks run with `tox -e bench` (pytest -m bench)")
    for item in items:
        if "bench" in item.keywords:
            item.add_marker(skip)
