"""Fake engines and scenarios for the harness tests (no dependency on engines/ or scenarios/).

FakeScenario.expect is written by hand per test; the fake engine computes its result from the
scenario's `program` (a list of integers to add), so a verdict depends on running it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from engines import Unsupported


@dataclass
class FakeScenario:
    id: str
    title: str = ""
    family: str = "control flow"
    wcp: tuple[str, ...] = ()
    program: tuple[int, ...] = (1, 2, 3)
    input_data: Any = 0
    expect: dict[str, Any] = field(default_factory=dict)
    actions: tuple[Any, ...] = ()
    uses: tuple[str, ...] = ()  # constructs ("branch", "sleep_fn", ...) engines may refuse
    workaround: str | None = None
    behaviour: str = "normal"  # "normal" | "raise" | "die" | "slow" | "stubborn" | "block"
    initial_state: Any = None
    request_context: Any = None

    def fresh_input(self) -> Any:
        return self.input_data

    def native_kwargs(self) -> dict[str, Any]:
        return {"input_data": self.input_data}


@dataclass
class FakeEngine:
    name: str
    refuses: frozenset[str] = frozenset()

    async def run(self, scenario: FakeScenario, input_data: Any = None, run_id: str | None = None,
                  **options: Any):
        refused = sorted(self.refuses.intersection(scenario.uses))
        if refused:
            raise Unsupported(f"{self.name} cannot run {refused[0]}")
        if scenario.behaviour == "raise":
            raise RuntimeError(f"boom in {scenario.id}")
        if scenario.behaviour == "slow":
            import asyncio

            await asyncio.sleep(5)
        if scenario.behaviour == "stubborn":  # ignores cancellation for 60 s
            import asyncio

            for _ in range(600):
                try:
                    await asyncio.sleep(0.1)
                except asyncio.CancelledError:
                    pass
        if scenario.behaviour == "block":  # blocks the event loop for 60 s
            import time

            for _ in range(600):
                time.sleep(0.1)
        if scenario.behaviour == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        total = input_data or 0
        for x in scenario.program:
            total += x
        # the db path the runner gives each cell; recorded to prove it is per-cell
        return SimpleNamespace(status="success", result=total, run_id=run_id,
                               db=os.environ.get("WFBENCH_DB"))

    async def resume(self, scenario, run_id, step=None, resume_data=None):
        return SimpleNamespace(status="success", result=resume_data, run_id=run_id,
                               db=os.environ.get("WFBENCH_DB"))


def fake_check(scenario: FakeScenario, result: Any, trace: Any) -> list[str]:
    diffs = []
    for key, want in scenario.expect.items():
        got = result.get(key) if isinstance(result, dict) else getattr(result, key, None)
        if got != want:
            diffs.append(f"{key}: expected {want!r}, got {got!r}")
    return diffs


# A registry the forked worker processes inherit.
SCENARIOS: dict[str, FakeScenario] = {}
ENGINES: dict[str, FakeEngine] = {}


def lookup_scenario(scenario_id: str) -> FakeScenario:
    return SCENARIOS[scenario_id]


def make_engine(name: str) -> FakeEngine:
    return ENGINES[name]


def install(scenarios: list[FakeScenario], engines: list[FakeEngine]) -> None:
    SCENARIOS.clear()
    SCENARIOS.update({s.id: s for s in scenarios})
    ENGINES.clear()
    ENGINES.update({e.name: e for e in engines})


# ---------------------------------------------------------------------------------------------
# Durability fakes: used in child processes (python -m harness.crashrun), so they are defined at
# import time, not installed at run time.

class FakeDurableEngine:
    """Runs 5 traced steps, journaling each finished step to $WFBENCH_DB (a text file here).
    `recover` continues after the last journaled step; `volatile` engines cannot recover."""

    def __init__(self, name: str, volatile: bool = False) -> None:
        self.name = name
        self.volatile = volatile

    async def _steps(self, start: int) -> list[int]:
        import asyncio

        from scenarios.trace import span

        done = []
        for i in range(start, 6):
            with span(f"step{i}"):
                await asyncio.sleep(0.05)
            with open(os.environ["WFBENCH_DB"], "a") as f:
                f.write(f"{i}\n")
            done.append(i)
        return done

    async def run(self, scenario: Any, input_data: Any = None, run_id: str | None = None,
                  **options: Any):
        done = await self._steps(1)
        return {"status": "success", "result": done}

    async def resume(self, scenario, run_id, step=None, resume_data=None):
        raise AssertionError("not used")

    async def recover(self, scenario: Any, run_id: str):
        if self.volatile:
            raise Unsupported(f"{self.name} keeps runs in memory; it cannot recover {run_id}")
        try:
            with open(os.environ["WFBENCH_DB"]) as f:
                last = max(int(x) for x in f.read().split())
        except FileNotFoundError:
            last = 0
        done = await self._steps(last + 1)
        return {"status": "success", "result": done}


def _durable_scenarios() -> dict[str, Any]:
    from scenarios.base import DurabilitySpec, KillPoint

    kill = DurabilitySpec(kind="mid-chain", kill=KillPoint("step2", "end"))
    never = DurabilitySpec(kind="mid-chain", kill=KillPoint("step9", "end"))
    out = {}
    for sid, spec in (("kill-mid-chain", kill), ("kill-never", never)):
        s = FakeScenario(sid, family="durability", expect={"status": "success", "result": [3, 4, 5]})
        s.durability = spec  # type: ignore[attr-defined]
        out[sid] = s
    return out


DURABLE_ENGINES = {"journal": FakeDurableEngine("journal"),
                   "volatile": FakeDurableEngine("volatile", volatile=True)}


def make_durable_engine(name: str) -> Any:
    return DURABLE_ENGINES[name]


def lookup_durable_scenario(scenario_id: str) -> Any:
    return _durable_scenarios()[scenario_id]


# ---------------------------------------------------------------------------------------------
# An engine that reports the environment its cell ran with (the temporal wiring: task queue,
# heartbeat, server address), and a check that turns it into the cell's diff.

ENV_KEYS = ("WFBENCH_TEMPORAL_TASK_QUEUE", "WFBENCH_TEMPORAL_HEARTBEAT",
            "WFBENCH_TEMPORAL_ADDRESS")


@dataclass
class EnvEngine:
    name: str

    async def run(self, scenario: Any, input_data: Any = None, run_id: str | None = None,
                  **options: Any):
        return SimpleNamespace(status="success", run_id=run_id,
                               result={k: os.environ.get(k) for k in ENV_KEYS})


def make_env_engine(name: str) -> EnvEngine:
    return EnvEngine(name)


def lookup_any_scenario(scenario_id: str) -> FakeScenario:
    return FakeScenario(scenario_id)


def env_check(scenario: Any, result: Any, trace: Any, **_: Any) -> list[str]:
    return [f"{k}={v}" for k, v in result.result.items()]


class SessionEngine(FakeEngine):
    """An engine that is an async context manager (as temporal is): the harness must run the
    whole cell inside `async with engine:`; `result` says whether each call was inside."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.depth = 0
        self.entered = 0

    async def __aenter__(self) -> SessionEngine:
        self.depth += 1
        self.entered += 1
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.depth -= 1

    async def run(self, scenario: Any, input_data: Any = None, run_id: str | None = None,
                  **options: Any):
        return SimpleNamespace(status="success", run_id=run_id,
                               result={"inside": self.depth == 1, "entered": self.entered})


def make_session_engine(name: str) -> SessionEngine:
    return SessionEngine(name)


def result_check(scenario: Any, result: Any, trace: Any, **_: Any) -> list[str]:
    return [f"{k}={v}" for k, v in result.result.items()]
