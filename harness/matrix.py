"""The matrix: cells arranged as scenarios x engines, plus the rows derived from them.

Owns:
- `ScenarioInfo` / `EngineInfo`: the metadata a report needs, read from scenario and engine
  objects (so a matrix can be rebuilt from JSON without importing them);
- the comparison rows (sequential, parallel, ..., durability, nondeterminism detection): each is
  *derived* from the verdicts of the scenarios its selector picks, never typed in;
- the WCP score per engine (`+` direct, `+/-` workaround, `-` not expressible or failing);
- the JSON form (`to_json` / `from_json`, schema in harness/SCHEMA.md) and `check_against`,
  the baseline comparison behind `wfbench matrix --check`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cells import Cell, Verdict

SCHEMA_ID = "wfbench-matrix/1"


@dataclass(frozen=True)
class ScenarioInfo:
    """What the matrix shows about a scenario."""

    id: str
    title: str = ""
    family: str = ""
    wcp: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    workaround: str | None = None

    @classmethod
    def of(cls, scenario: Any) -> ScenarioInfo:
        wcp = getattr(scenario, "wcp", None) or ()
        if isinstance(wcp, str):
            wcp = tuple(w.strip() for w in re.split(r"[,/ ]+", wcp) if w.strip())
        features = getattr(scenario, "features", None) or ()
        if isinstance(features, str):
            features = (features,)
        workaround = getattr(scenario, "workaround", None)
        notes = str(getattr(scenario, "notes", "") or "")
        if not workaround and re.search(r"workaround \(\+/-\)", notes, re.IGNORECASE):
            workaround = notes  # the catalogue marks a Mastra-syntax workaround this way
        return cls(
            id=str(scenario.id),
            title=str(getattr(scenario, "title", "") or ""),
            family=str(getattr(scenario, "family", "") or ""),
            wcp=tuple(_normalise_wcp(w) for w in wcp),
            features=tuple(str(f) for f in features),
            workaround=str(workaround) if workaround else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "family": self.family,
                "wcp": list(self.wcp), "features": list(self.features),
                "workaround": self.workaround}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScenarioInfo:
        return cls(id=str(d["id"]), title=str(d.get("title") or ""),
                   family=str(d.get("family") or ""), wcp=tuple(d.get("wcp") or ()),
                   features=tuple(d.get("features") or ()), workaround=d.get("workaround"))


def _normalise_wcp(w: Any) -> str:
    text = str(w).strip().upper()
    if text.isdigit():
        return f"WCP-{int(text)}"
    m = re.fullmatch(r"WCP-?(\d+)", text)
    return f"WCP-{int(m.group(1))}" if m else text


# What each engine is authored as and executed by: a description of the engine (DESIGN.md),
# used only when the engine object does not say it itself (attributes `authored_as`,
# `executed_by`). These two rows are descriptions, not measurements.
_ENGINE_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "default": ("Mastra syntax", "flow interpreter"),
    "codegen": ("Mastra syntax", "generated Python on durable"),
    "codegen-strict": ("Mastra syntax", "generated Python on durable (no closures)"),
    "stepmode": ("Mastra syntax + durable steps", "flow interpreter calling durable steps"),
    "native": ("@wf.workflow Python", "durable runtime"),
    "temporal": ("Mastra syntax", "generated Temporal workflow"),
}


@dataclass(frozen=True)
class EngineInfo:
    name: str
    authored_as: str = ""
    executed_by: str = ""
    native: bool = False

    @classmethod
    def of(cls, name: str, engine: Any = None) -> EngineInfo:
        authored, executed = _ENGINE_DESCRIPTIONS.get(name, ("", ""))
        authored = str(getattr(engine, "authored_as", None) or authored)
        executed = str(getattr(engine, "executed_by", None) or executed)
        native = bool(getattr(engine, "native", None) or name == "native")
        return cls(name=name, authored_as=authored, executed_by=executed, native=native)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "authored_as": self.authored_as,
                "executed_by": self.executed_by, "native": self.native}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineInfo:
        return cls(name=str(d["name"]), authored_as=str(d.get("authored_as") or ""),
                   executed_by=str(d.get("executed_by") or ""), native=bool(d.get("native")))


# ---------------------------------------------------------------------------------------------
# Comparison rows: each selects scenarios; its value per engine is computed from their verdicts.

Selector = Callable[[ScenarioInfo], bool]


def _by_feature_or(feature: str, fallback: Selector) -> Selector:
    def select(s: ScenarioInfo) -> bool:
        if s.features:
            return feature in s.features
        return fallback(s)

    return select


def _wcp_in(*ids: str) -> Selector:
    wanted = set(ids)
    return lambda s: bool(wanted.intersection(s.wcp))


def _family(name: str) -> Selector:
    return lambda s: s.family.lower().replace("-", " ").replace("_", " ") == name


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str
    select: Selector


COMPARISON_ROWS: tuple[RowSpec, ...] = (
    RowSpec("sequential", "sequential", _by_feature_or("sequential", _wcp_in("WCP-1"))),
    RowSpec("parallel", "parallel", _by_feature_or("parallel", _wcp_in("WCP-2", "WCP-3"))),
    RowSpec("conditional", "conditional",
            _by_feature_or("conditional", _wcp_in("WCP-4", "WCP-5", "WCP-6", "WCP-7"))),
    RowSpec("loops", "loops", _by_feature_or("loops", _wcp_in("WCP-21"))),
    RowSpec("foreach", "foreach", _by_feature_or("foreach", _wcp_in("WCP-14"))),
    RowSpec("dynamic_sleep", "dynamic sleep",
            _by_feature_or("dynamic_sleep", lambda s: bool(re.search(r"sleep", s.id))
                           and bool(re.search(r"dyn(amic)?", s.id)))),
    RowSpec("sandbox", "sandboxed workflow code",
            _by_feature_or("sandbox", lambda s: _family("determinism")(s)
                           and not re.search(r"nondet|chang", s.id))),
    RowSpec("durability", "durability", _by_feature_or("durability", _family("durability"))),
    RowSpec("nondeterminism", "nondeterminism detection",
            _by_feature_or("nondeterminism", lambda s: _family("determinism")(s)
                           and bool(re.search(r"nondet|chang", s.id)))),
)


@dataclass
class RowValue:
    """A comparison row's value for one engine, and the count behind it."""

    value: str  # "yes" | "partial" | "no" | "broken" | "n/a"
    passed: int
    total: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "passed": self.passed, "total": self.total,
                "detail": self.detail}

    @property
    def text(self) -> str:
        if self.value in ("n/a",):
            return "n/a"
        return f"{self.value} ({self.passed}/{self.total})"


def row_value(cells: Sequence[Cell]) -> RowValue:
    """Derive a comparison row's value from the verdicts of its scenarios on one engine.

    - every cell passes -> `yes`;
    - some pass, the others are refused (`unsupported`/`n/a`) -> `partial`;
    - none pass and all are refused -> `no` (the first refusal's reason is the detail);
    - any cell fails or errors -> `broken` (what broke is the detail).
    """
    counted = [c for c in cells if c.verdict is not Verdict.NA]
    if not counted:
        return RowValue("n/a", 0, 0, "no scenario measures this")
    passed = sum(1 for c in counted if c.verdict is Verdict.PASS)
    bad = [c for c in counted if c.verdict in (Verdict.FAIL, Verdict.ERROR)]
    refused = [c for c in counted if c.verdict is Verdict.UNSUPPORTED]
    total = len(counted)
    if bad:
        names = ", ".join(f"{c.scenario}: {c.verdict}" for c in bad)
        return RowValue("broken", passed, total, names)
    if passed == total:
        return RowValue("yes", passed, total, "all pass")
    if passed == 0:
        return RowValue("no", passed, total, refused[0].reason or "unsupported")
    names = ", ".join(c.scenario for c in refused)
    return RowValue("partial", passed, total, f"unsupported: {names}")


# ---------------------------------------------------------------------------------------------
# WCP scores


def wcp_score(cells: Sequence[Cell], workaround: bool) -> str:
    """The WCP rating of one engine for one pattern, from the verdicts of its scenarios:

    - `+`: every scenario passes, with a first-class construct;
    - `+/-`: every scenario passes but only through a workaround, or some pass and the others
      are refused (`unsupported`: partial support);
    - `-`: none passes (not expressible), or one fails or errors.
    """
    counted = [c for c in cells if c.verdict is not Verdict.NA]
    passed = [c for c in counted if c.verdict is Verdict.PASS]
    if not passed or any(c.verdict in (Verdict.FAIL, Verdict.ERROR) for c in counted):
        return "-"
    if len(passed) < len(counted) or workaround:
        return "+/-"
    return "+"


# Families whose scenarios measure durability, not expressiveness: they carry a WCP id for the
# pattern they crash inside, but the WCP score rates expressiveness only (the durability row
# and the scenario rows show them).
WCP_EXCLUDED_FAMILIES = frozenset({"durability", "determinism"})


@dataclass
class Matrix:
    engines: list[EngineInfo]
    scenarios: list[ScenarioInfo]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, engines: Iterable[EngineInfo], scenarios: Iterable[ScenarioInfo],
              cells: Iterable[Cell]) -> Matrix:
        m = cls(engines=list(engines), scenarios=list(scenarios))
        for c in cells:
            m.cells[c.key] = c
        return m

    @property
    def engine_names(self) -> list[str]:
        return [e.name for e in self.engines]

    def cell(self, engine: str, scenario: str) -> Cell | None:
        return self.cells.get((engine, scenario))

    # -- derived rows ---------------------------------------------------------------------
    def comparison(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        rows.append({"key": "authored_as", "label": "authored as", "basis": [], "derived": False,
                     "values": {e.name: {"value": e.authored_as, "detail": "engine description"}
                                for e in self.engines}})
        rows.append({"key": "executed_by", "label": "executed through", "basis": [],
                     "derived": False,
                     "values": {e.name: {"value": e.executed_by, "detail": "engine description"}
                                for e in self.engines}})
        for spec in COMPARISON_ROWS:
            basis = [s.id for s in self.scenarios if spec.select(s)]
            values = {}
            for e in self.engines:
                cells = [c for sid in basis if (c := self.cell(e.name, sid)) is not None]
                values[e.name] = row_value(cells).to_dict()
            rows.append({"key": spec.key, "label": spec.label, "basis": basis, "derived": True,
                         "values": values})
        return rows

    def wcp(self) -> dict[str, Any]:
        patterns: dict[str, list[ScenarioInfo]] = {}
        for s in self.scenarios:
            if s.family in WCP_EXCLUDED_FAMILIES:
                continue
            for w in s.wcp:
                patterns.setdefault(w, []).append(s)
        out: list[dict[str, Any]] = []
        totals = {e.name: {"+": 0, "+/-": 0, "-": 0} for e in self.engines}
        for w in sorted(patterns, key=_wcp_sort_key):
            scen = patterns[w]
            scores: dict[str, str] = {}
            for e in self.engines:
                cells = [c for s in scen if (c := self.cell(e.name, s.id)) is not None]
                if not cells:
                    continue
                workaround = (not e.native) and any(s.workaround for s in scen)
                score = wcp_score(cells, workaround)
                scores[e.name] = score
                totals[e.name][score] += 1
            out.append({"wcp": w, "scenarios": [s.id for s in scen],
                        "workaround": next((s.workaround for s in scen if s.workaround), None),
                        "scores": scores})
        return {"patterns": out, "totals": totals}

    # -- JSON -----------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        cells = []
        for s in self.scenarios:
            for e in self.engines:
                c = self.cell(e.name, s.id)
                if c is not None:
                    cells.append(c.to_dict())
        return {
            "schema": SCHEMA_ID,
            "engines": [e.to_dict() for e in self.engines],
            "scenarios": [s.to_dict() for s in self.scenarios],
            "cells": cells,
            "comparison": self.comparison(),
            "wcp": self.wcp(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Matrix:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_ID:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a wfbench matrix: schema is {found!r}, expected {SCHEMA_ID!r}")
        return cls.build(
            engines=[EngineInfo.from_dict(e) for e in data.get("engines", [])],
            scenarios=[ScenarioInfo.from_dict(s) for s in data.get("scenarios", [])],
            cells=[Cell.from_dict(c) for c in data.get("cells", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> Matrix:
        return cls.from_json_dict(json.loads(text))


def _wcp_sort_key(w: str) -> tuple[int, str]:
    m = re.fullmatch(r"WCP-(\d+)", w)
    return (int(m.group(1)), w) if m else (10_000, w)


# ---------------------------------------------------------------------------------------------
# Baseline comparison


@dataclass(frozen=True)
class Regression:
    engine: str
    scenario: str
    baseline: Verdict
    current: Verdict
    detail: str

    def __str__(self) -> str:
        return (f"{self.scenario} on {self.engine}: {self.baseline} -> {self.current}"
                + (f" ({self.detail})" if self.detail else ""))


def check_against(baseline: Matrix, current: Matrix) -> list[Regression]:
    """Every cell of `current` worse than the same cell of `baseline` (durations ignored).

    Only cells present in both are compared: a narrowed run (`--engine`/`--scenario`) checks
    the cells it ran. A cell missing from the current run is not a regression.
    """
    worse: list[Regression] = []
    for key, now in current.cells.items():
        before = baseline.cells.get(key)
        if before is None:
            continue
        if now.verdict.worse_than(before.verdict):
            worse.append(Regression(now.engine, now.scenario, before.verdict, now.verdict,
                                    now.summary()))
    order = {s.id: i for i, s in enumerate(current.scenarios)}
    worse.sort(key=lambda r: (order.get(r.scenario, 1_000_000), r.scenario, r.engine))
    return worse


def changes(baseline: Matrix, current: Matrix) -> list[str]:
    """Every verdict that differs between the two matrices, and cells only one of them has
    (durations, diffs and messages ignored): non-empty means the baseline is stale."""
    out: list[str] = []
    for key in sorted(set(baseline.cells) | set(current.cells), key=lambda k: (k[1], k[0])):
        engine, scenario = key
        before, now = baseline.cells.get(key), current.cells.get(key)
        if before is None:
            out.append(f"{scenario} on {engine}: new cell ({now.verdict if now else '?'})")
        elif now is None:
            out.append(f"{scenario} on {engine}: cell no longer measured (was {before.verdict})")
        elif before.verdict is not now.verdict:
            out.append(f"{scenario} on {engine}: {before.verdict} -> {now.verdict}")
    return out
