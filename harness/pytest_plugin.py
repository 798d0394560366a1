"""The wfbench pytest plugin (entry point `pytest11`): run your own workflows on every engine.

A test that takes the `wf_engine` fixture runs once per engine; the fixture is the engine
(`engines.get_engine(name)`), with its runs stored in a fresh SQLite file under the test's own
`tmp_path` (`$WFBENCH_DB`). If the engine refuses the workflow (`engines.Unsupported`, e.g.
`codegen-strict` and a branch condition), the test is *skipped* with the engine's reason.

    # test_my_flows.py
    from my_flows import order_flow

    @pytest.mark.asyncio          # or asyncio_mode = "auto" (pytest-asyncio)
    async def test_order_flow(wf_engine):
        result = await wf_engine.run(order_flow, input_data={"order": 7})
        assert result.status == "success"
        assert result.result == {"total": 21}

Choose the engines with `pytest --wf-engine codegen --wf-engine default` or the ini option
`wf_engines = default codegen` (default: default, codegen, codegen-strict, stepmode — the engines
that run Mastra-syntax workflows without a server). `wf_engine_name` gives the name alone.
`--wf-engine temporal` adds Temporal: each test gets a task queue of its own, on the server in
`$WFBENCH_TEMPORAL_ADDRESS` (else the engine starts one local dev server per test process).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

DEFAULT_ENGINES = ("default", "codegen", "codegen-strict", "stepmode")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wfbench")
    group.addoption("--wf-engine", action="append", default=None, dest="wf_engines",
                    metavar="ENGINE",
                    help="engine for tests using the wf_engine fixture (repeatable; "
                         f"default: {' '.join(DEFAULT_ENGINES)})")
    parser.addini("wf_engines", type="args", default=list(DEFAULT_ENGINES),
                  help="engines the wf_engine fixture runs on")


def _selected(config: pytest.Config) -> list[str]:
    chosen = config.getoption("wf_engines") or config.getini("wf_engines")
    names = [n for item in chosen for n in str(item).replace(",", " ").split()]
    from harness.runner import engine_names

    known = engine_names()
    bad = [n for n in names if n not in known]
    if bad:
        raise pytest.UsageError(f"unknown wfbench engine {bad[0]!r} in --wf-engine/wf_engines; "
                                f"choose from {', '.join(known)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wf_engine_name" in metafunc.fixturenames:
        metafunc.parametrize("wf_engine_name", _selected(metafunc.config), indirect=True)


@pytest.fixture
def wf_engine_name(request: pytest.FixtureRequest) -> str:
    """The engine name this test instance runs on (parametrized by the plugin)."""
    return str(request.param)


@pytest.fixture
def wf_engine(wf_engine_name: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An `engines.Engine` (one test instance per engine), storing runs under tmp_path."""
    from harness.runner import cell_env, default_engine_factory, reset_process_worlds

    monkeypatch.setenv("WFBENCH_DB", str(tmp_path / "wfbench-runs.db"))
    for key, value in cell_env(wf_engine_name).items():  # temporal: a task queue of its own
        monkeypatch.setenv(key, value)
    reset_process_worlds()  # a durable world opened by an earlier test is on another file
    try:
        yield default_engine_factory(wf_engine_name)
    finally:
        monkeypatch.delenv("WFBENCH_DB")
        reset_process_worlds()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except Exception as exc:
        if "wf_engine_name" not in getattr(item, "fixturenames", ()):
            raise
        from engines import Unsupported

        if isinstance(exc, Unsupported):
            name = item.funcargs.get("wf_engine_name", "?") if hasattr(item, "funcargs") else "?"
            pytest.skip(f"engine {name} does not support this workflow: {exc}")
        raise
