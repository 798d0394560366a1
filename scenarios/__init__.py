"""The scenario catalogue: workflow patterns with hand-written expectations.

`all_scenarios()` lists every scenario (catalogue order: family by family); `get_scenario(id)`
finds one (an unknown id raises `UnknownScenario`, a ValueError listing close matches).
The model is in `scenarios.base`, the side-effect recorder in `scenarios.trace`, the comparison
in `scenarios.check`, and the action driver in `scenarios.drive`.

Imports flow (the Mastra-syntax definitions); the native definitions (which import durable)
load lazily through `Scenario.native`.
"""

from __future__ import annotations

import difflib

from scenarios.base import (
    ANY,
    MISSING,
    DurabilitySpec,
    ErrorExpect,
    Expect,
    KillPoint,
    Scenario,
    StepExpect,
    TraceExpect,
    hook_token,
)
from scenarios.check import check

_CATALOGUE_MODULES = ("control", "data", "timing", "hitl", "errors", "durability", "scale")
_scenarios: tuple[Scenario, ...] | None = None


class UnknownScenario(ValueError):
    """No scenario has that id."""


def all_scenarios() -> tuple[Scenario, ...]:
    """Every scenario of the catalogue (ids are unique)."""
    global _scenarios
    if _scenarios is None:
        import importlib

        found: list[Scenario] = []
        for name in _CATALOGUE_MODULES:
            found.extend(importlib.import_module(f"scenarios.catalogue.{name}").SCENARIOS)
        ids = [s.id for s in found]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise RuntimeError(f"duplicate scenario ids in the catalogue: {dupes}")
        _scenarios = tuple(found)
    return _scenarios


def get_scenario(id: str) -> Scenario:
    """The scenario with this id; an unknown id raises `UnknownScenario` naming close matches."""
    for s in all_scenarios():
        if s.id == id:
            return s
    ids = [s.id for s in all_scenarios()]
    close = difflib.get_close_matches(id, ids, n=5, cutoff=0.5)
    close += [i for i in ids if id and id in i and i not in close][:5]
    hint = f"did you mean {', '.join(close)}?" if close else "run `wfbench matrix --help` or see scenarios.all_scenarios()"
    raise UnknownScenario(f"unknown scenario {id!r}; {hint}")


__all__ = [
    "ANY",
    "MISSING",
    "DurabilitySpec",
    "ErrorExpect",
    "Expect",
    "KillPoint",
    "Scenario",
    "StepExpect",
    "TraceExpect",
    "UnknownScenario",
    "all_scenarios",
    "check",
    "get_scenario",
    "hook_token",
]
