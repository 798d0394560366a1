"""The cell model: one scenario on one engine, its verdict and the evidence behind it.

Owns `Verdict` (ordered by goodness so a baseline comparison can say "worse"), `Cell`
(verdict, duration, diff, reason, exception, generated source) and `ExceptionInfo`.
Cells round-trip through plain JSON dicts (`to_dict` / `from_dict`), which is the form stored
in `reports/matrix.json` (see harness/SCHEMA.md).
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    """The outcome of one cell.

    `goodness` orders verdicts from worst to best: error < fail < unsupported < n/a < pass.
    A cell is *worse* than a baseline cell when its goodness is lower.
    """

    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"
    ERROR = "error"
    NA = "n/a"

    @property
    def goodness(self) -> int:
        return _GOODNESS[self]

    def worse_than(self, other: Verdict) -> bool:
        return self.goodness < other.goodness

    @classmethod
    def parse(cls, text: str) -> Verdict:
        """Parse a verdict's value ("pass", "n/a", ...); a one-line ValueError names a bad value."""
        for verdict in cls:
            if verdict.value == text:
                return verdict
        allowed = ", ".join(v.value for v in cls)
        raise ValueError(f"unknown verdict {text!r}; expected one of: {allowed}")

    def __str__(self) -> str:
        return self.value


_GOODNESS = {
    Verdict.ERROR: 0,
    Verdict.FAIL: 1,
    Verdict.UNSUPPORTED: 2,
    Verdict.NA: 3,
    Verdict.PASS: 4,
}


@dataclass(frozen=True)
class ExceptionInfo:
    """An exception kept as text: its type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ExceptionInfo:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), traceback=tb)

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExceptionInfo:
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
        )


@dataclass
class Cell:
    """One scenario on one engine.

    - `diff`: the differences `scenarios.check.check` found (non-empty exactly when `fail`).
    - `reason`: why the engine refused (`unsupported`) or why the cell does not apply (`n/a`).
    - `exception`: what crashed (`error`).
    - `generated_source`: for codegen engines, the Python source the workflow compiled to.
    """

    engine: str
    scenario: str
    verdict: Verdict
    duration_s: float = 0.0
    diff: list[str] = field(default_factory=list)
    reason: str | None = None
    exception: ExceptionInfo | None = None
    generated_source: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.engine, self.scenario)

    def summary(self) -> str:
        """One line saying what happened, for terminals and JUnit messages."""
        if self.verdict is Verdict.FAIL:
            first = self.diff[0] if self.diff else "(no diff recorded)"
            more = f" (+{len(self.diff) - 1} more)" if len(self.diff) > 1 else ""
            return f"fail: {first}{more}"
        if self.verdict is Verdict.ERROR and self.exception is not None:
            return f"error: {self.exception.type}: {self.exception.message}"
        if self.verdict in (Verdict.UNSUPPORTED, Verdict.NA) and self.reason:
            return f"{self.verdict.value}: {self.reason}"
        return self.verdict.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "scenario": self.scenario,
            "verdict": self.verdict.value,
            "duration_s": round(self.duration_s, 4),
            "diff": list(self.diff),
            "reason": self.reason,
            "exception": self.exception.to_dict() if self.exception else None,
            "generated_source": self.generated_source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        try:
            engine = data["engine"]
            scenario = data["scenario"]
            verdict = Verdict.parse(data["verdict"])
        except KeyError as exc:
            raise ValueError(f"cell record is missing the {exc.args[0]!r} field: {data!r}") from None
        exc_data = data.get("exception")
        return cls(
            engine=str(engine),
            scenario=str(scenario),
            verdict=verdict,
            duration_s=float(data.get("duration_s") or 0.0),
            diff=[str(d) for d in data.get("diff") or []],
            reason=data.get("reason"),
            exception=ExceptionInfo.from_dict(exc_data) if exc_data else None,
            generated_source=data.get("generated_source"),
        )
