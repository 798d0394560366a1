"""Bench workloads: the same trivial step body in every shape, as flow workflows (Mastra syntax,
for `default`, `stepmode`, `codegen`, `codegen-strict`), as hand-written `durable` workflows (for
`native`), and as plain async Python (the floor).

Owns: `Workload` (kind + size), `KINDS`, the step body `bump`, the builders `flow_workflow`,
`flow_input`, `native_call`, `plain_run` and `compile_graph` (the 200-entry graph the codegen
compile-time workload compiles). Every step adds 1 to `{"value": int}`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import durable
from flow import create_step, create_workflow

KINDS: tuple[str, ...] = ("chain", "fanout", "foreach", "dountil", "suspend", "compile")

FOREACH_CONCURRENCY = 10
RESUME_VALUE = 7


@dataclass(frozen=True, order=True)
class Workload:
    """One workload: `kind` (one of `KINDS`) and `size` (N steps, K branches, items, iterations,
    round trips, or graph entries)."""

    kind: str
    size: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown workload kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"workload {self.kind!r}: size must be an int >= 1, got {self.size!r}")

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.size}"

    @property
    def units(self) -> int:
        """What the time is divided by: step executions (a round trip counts as 1 step, a graph
        entry as 1 unit for `compile`)."""
        return self.size

    @property
    def unit(self) -> str:
        return "entry" if self.kind == "compile" else "step"

    @property
    def expected_status(self) -> str:
        return "success"

    def expected_result(self) -> Any:
        """The workflow result every engine must return (written from the shapes' semantics)."""
        n = self.size
        if self.kind == "chain":
            return {"value": n}
        if self.kind == "fanout":
            return {f"s{i}": {"value": 1} for i in range(n)}
        if self.kind == "foreach":
            return [{"value": i + 1} for i in range(n)]
        if self.kind == "dountil":
            return {"value": n}
        if self.kind == "suspend":
            return {"value": RESUME_VALUE}
        return None


def parse_workload(text: str) -> Workload:
    """`chain-100` -> Workload("chain", 100); a clear error otherwise."""
    kind, sep, size = text.rpartition("-")
    if not sep or not size.isdigit():
        raise ValueError(f"bad workload {text!r}: expected KIND-SIZE, e.g. chain-100")
    return Workload(kind, int(size))


# ----------------------------------------------------------------------------- step bodies


async def bump(value: dict[str, Any]) -> dict[str, Any]:
    """The one trivial step body: add 1."""
    return {"value": value["value"] + 1}


def _bump_ctx(ctx: Any) -> dict[str, Any]:
    return {"value": ctx.input_data["value"] + 1}


def _ask_ctx(ctx: Any) -> Any:
    if ctx.resume_data is None:
        return ctx.suspend({"ask": "value"})
    return {"value": ctx.resume_data["value"]}


def _until(limit: int) -> Callable[[Any], bool]:
    def done(ctx: Any) -> bool:
        return bool(ctx.input_data["value"] >= limit)

    return done


# ----------------------------------------------------------------------------- flow (Mastra syntax)


@functools.lru_cache(maxsize=64)
def flow_workflow(w: Workload) -> Any:
    """The committed flow workflow of a workload (cached: engines compile it once)."""
    n = w.size
    if w.kind == "chain":
        wf = create_workflow(id=f"bench-chain-{n}")
        for i in range(n):
            wf = wf.then(create_step(id=f"s{i}", execute=_bump_ctx))
        return wf.commit()
    if w.kind == "fanout":
        steps = [create_step(id=f"s{i}", execute=_bump_ctx) for i in range(n)]
        return create_workflow(id=f"bench-fanout-{n}").parallel(steps).commit()
    if w.kind == "foreach":
        step = create_step(id="s", execute=_bump_ctx)
        return (create_workflow(id=f"bench-foreach-{n}")
                .foreach(step, concurrency=FOREACH_CONCURRENCY).commit())
    if w.kind == "dountil":
        step = create_step(id="s", execute=_bump_ctx)
        return create_workflow(id=f"bench-dountil-{n}").dountil(step, _until(n)).commit()
    if w.kind == "suspend":
        return create_workflow(id="bench-suspend").then(create_step(id="ask", execute=_ask_ctx)).commit()
    return compile_graph(n)


def flow_input(w: Workload) -> Any:
    """The input data of the flow workflow (and of the plain floor)."""
    if w.kind == "foreach":
        return [{"value": i} for i in range(w.size)]
    return {"value": 0}


def compile_graph(entries: int) -> Any:
    """A committed flow workflow with exactly `entries` top-level graph entries, cycling through
    then, parallel (3 steps), object map, foreach, sleep (fixed), nested workflow — constructs
    both `codegen` and `codegen-strict` accept (no closures), so both compile the same graph."""
    inner = (create_workflow(id="bench-compile-inner")
             .then(create_step(id="inner-a", execute=_bump_ctx))
             .then(create_step(id="inner-b", execute=_bump_ctx)).commit())
    wf = create_workflow(id=f"bench-compile-{entries}")
    for i in range(entries):
        k = i % 6
        if k == 0:
            wf = wf.then(create_step(id=f"t{i}", execute=_bump_ctx))
        elif k == 1:
            wf = wf.parallel([create_step(id=f"p{i}-{j}", execute=_bump_ctx) for j in range(3)])
        elif k == 2:
            wf = wf.map({"value": {"step": f"p{i - 1}-0", "path": "value"}}, id=f"m{i}")
        elif k == 3:
            wf = wf.map({"value": {"step": f"t{i - 3}", "path": "value"},
                         "tag": {"value": i}}, id=f"r{i}")
        elif k == 4:
            wf = wf.sleep(0)
        else:
            wf = wf.then(inner)
    return wf.commit()


# ----------------------------------------------------------------------------- native (durable)

registry = durable.Workflows()


@registry.step
async def native_bump(value: dict[str, Any]) -> dict[str, Any]:
    return {"value": value["value"] + 1}


@registry.workflow
async def native_chain(value: dict[str, Any], n: int) -> dict[str, Any]:
    for _ in range(n):
        value = await native_bump(value)
    return value


@registry.workflow
async def native_fanout(value: dict[str, Any], k: int) -> dict[str, Any]:
    outs = await asyncio.gather(*(native_bump(value) for _ in range(k)))
    return {f"s{i}": out for i, out in enumerate(outs)}


@registry.workflow
async def native_foreach(items: list[dict[str, Any]], concurrency: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(items), concurrency):
        out.extend(await asyncio.gather(*(native_bump(x) for x in items[start:start + concurrency])))
    return out


@registry.workflow
async def native_dountil(value: dict[str, Any], limit: int) -> dict[str, Any]:
    while True:
        value = await native_bump(value)
        if value["value"] >= limit:
            return value


@dataclass
class Answer(durable.BaseHook):
    """The hook payload that resumes `native_suspend`."""

    value: int = 0


def suspend_token(run_id: str) -> str:
    return f"bench-ask:{run_id}"


@registry.workflow
async def native_suspend(value: dict[str, Any]) -> dict[str, Any]:
    run_id = durable.get_workflow_metadata().run_id
    answer = await Answer.wait(token=suspend_token(run_id))
    return {"value": answer.value}


def native_call(w: Workload) -> tuple[Any, tuple[Any, ...]]:
    """(durable workflow function, positional args) of a workload."""
    if w.kind == "chain":
        return native_chain, ({"value": 0}, w.size)
    if w.kind == "fanout":
        return native_fanout, ({"value": 0}, w.size)
    if w.kind == "foreach":
        return native_foreach, (flow_input(w), FOREACH_CONCURRENCY)
    if w.kind == "dountil":
        return native_dountil, ({"value": 0}, w.size)
    if w.kind == "suspend":
        return native_suspend, ({"value": 0},)
    raise ValueError(f"workload {w.name} has no native definition")


# ----------------------------------------------------------------------------- plain floor


async def plain_run(w: Workload, resume: Callable[[], Awaitable[None]] | None = None) -> Any:
    """The same step bodies as plain async calls in the same shape (no engine)."""
    n = w.size
    if w.kind == "chain":
        value: dict[str, Any] = {"value": 0}
        for _ in range(n):
            value = await bump(value)
        return value
    if w.kind == "fanout":
        start = {"value": 0}
        outs = await asyncio.gather(*(bump(start) for _ in range(n)))
        return {f"s{i}": out for i, out in enumerate(outs)}
    if w.kind == "foreach":
        items = flow_input(w)
        res: list[Any] = []
        for s in range(0, n, FOREACH_CONCURRENCY):
            res.extend(await asyncio.gather(*(bump(x) for x in items[s:s + FOREACH_CONCURRENCY])))
        return res
    if w.kind == "dountil":
        value = {"value": 0}
        while True:
            value = await bump(value)
            if value["value"] >= n:
                return value
    if w.kind == "suspend":
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, {"value": RESUME_VALUE})
        answer = await fut
        return {"value": answer["value"]}
    raise ValueError(f"workload {w.name} has no plain form")
