"""Bad input on `durable` worlds gives a clear error and loses nothing (issue 3, "Must show":
Bad input; semantics reference sections 1.1 (non-async functions refused), 1.7 (hook tokens:
HookNotFoundError, HookConflictError, tokens freed when a run ends), 3.1 (runs.get on an
unknown id throws)).

In-process tests on MemoryWorld and SqliteWorld (files under tmp_path). After each error the
world (for SQLite: the file, reopened by a fresh SqliteWorld) still works and every other run
is intact.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3

import pydantic
import pytest

import durable
from durable import BaseHook, HookConflictError, HookNotFoundError, Workflows

wf = Workflows()


class Gate(BaseHook, pydantic.BaseModel):
    """Hook payload used below."""

    value: int


@wf.step
async def double(x: int) -> int:
    return 2 * x


@wf.workflow
async def doubler(x: int) -> int:
    return await double(x)


@wf.workflow
async def gated(token: str) -> int:
    gate = await Gate.wait(token=token)
    return await double(gate.value)


@pytest.fixture(params=["memory", "sqlite"])
def world(request, tmp_path):
    """The world under test, installed with set_world(). ``reopen(world)`` gives a fresh view."""
    w = durable.MemoryWorld() if request.param == "memory" else durable.SqliteWorld(tmp_path / "w.db")
    durable.set_world(w)
    return w


def reopen(world):
    """A fresh SqliteWorld on the same file (so the check reads the database, not a cache);
    the same MemoryWorld otherwise."""
    if isinstance(world, durable.SqliteWorld):
        return durable.SqliteWorld(world.path)
    return world


async def wait_for_hook(world, token: str) -> None:
    for _ in range(1000):
        if world.get_hook_by_token(token) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"hook {token!r} never appeared")


async def finished_doubler(x: int) -> str:
    run = await durable.start(doubler, x)
    assert await run.return_value(timeout=30) == 2 * x
    return run.run_id


def assert_intact(world, expected: dict[str, tuple[str, object]]) -> None:
    """Every listed run has the expected (status, output) when read again."""
    fresh = reopen(world)
    for run_id, (status, output) in expected.items():
        rec = fresh.get_run(run_id)
        assert (rec.status, rec.output) == (status, output), rec


def one_line_naming(exc: BaseException, *names: str) -> str:
    text = str(exc)
    assert "\n" not in text.strip(), f"error should be one line: {text!r}"
    for name in names:
        assert name in text, f"error should name {name!r}: {text!r}"
    return text


# -- database files that are not (valid) wfbench SQLite databases --------------------------


def test_file_that_is_not_sqlite_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "junk.db"
    junk = random.Random(7).randbytes(16384)
    path.write_bytes(junk)
    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_runs()
    one_line_naming(info.value, str(path))
    assert path.read_bytes() == junk, "the bad file must be left as it was"
    # the error is about that file only: a good database beside it opens and works
    good = durable.SqliteWorld(tmp_path / "good.db")
    assert good.list_runs() == []


async def make_database_with_runs(path) -> dict[str, tuple[str, object]]:
    world = durable.SqliteWorld(path)
    durable.set_world(world)
    expected = {}
    for x in (1, 2, 3):
        expected[await finished_doubler(x)] = ("completed", 2 * x)
    world.close()
    return expected


@pytest.mark.parametrize("damage", ["truncated", "header-overwritten"])
async def test_corrupt_database_is_refused_naming_the_file(tmp_path, damage):
    path = tmp_path / "runs.db"
    expected = await make_database_with_runs(path)
    conn = sqlite3.connect(path)  # fold the WAL into the main file before copying/damaging it
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    backup = tmp_path / "backup.db"
    shutil.copyfile(path, backup)
    data = path.read_bytes()
    assert len(data) > 4096
    damaged = data[:1024] if damage == "truncated" else b"NOT A DATABASE!!" + data[16:]
    path.write_bytes(damaged)

    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_runs()
    one_line_naming(info.value, str(path))
    assert path.read_bytes() == damaged, "the damaged file must not be rewritten or replaced"

    # nothing was lost that a backup cannot give back: the copy opens and every run is intact
    restored = durable.SqliteWorld(backup)
    assert {r.run_id: (r.status, r.output) for r in restored.list_runs()} == expected


# -- unknown run ids and hook tokens --------------------------------------------------------


async def test_unknown_run_id_gives_clear_error(world):
    kept = {await finished_doubler(5): ("completed", 10)}
    with pytest.raises(Exception) as info:
        world.get_run("wrun_does_not_exist")
    one_line_naming(info.value, "wrun_does_not_exist")
    with pytest.raises(Exception) as info:
        await durable.get_run("wrun_does_not_exist").status()
    one_line_naming(info.value, "wrun_does_not_exist")
    assert_intact(world, kept)


async def test_resuming_unknown_hook_token_raises_hook_not_found(world):
    waiting = await durable.start(gated, "real-token")
    await wait_for_hook(world, "real-token")
    done = {await finished_doubler(4): ("completed", 8)}

    with pytest.raises(HookNotFoundError) as info:
        await Gate(value=1).resume("no-such-token")
    one_line_naming(info.value, "no-such-token")
    with pytest.raises(HookNotFoundError):
        durable.get_hook_by_token("no-such-token")

    # the failed resume touched nothing: the waiting run still waits and then completes
    assert await waiting.status() in ("pending", "running")
    assert world.get_hook_by_token("real-token").run_id == waiting.run_id
    await Gate(value=21).resume("real-token")
    assert await waiting.return_value(timeout=30) == 42
    assert_intact(world, {**done, waiting.run_id: ("completed", 42)})


async def test_second_live_hook_on_token_in_use_raises_hook_conflict(world):
    first = await durable.start(gated, "shared-token")
    await wait_for_hook(world, "shared-token")

    second = await durable.start(gated, "shared-token")
    with pytest.raises(Exception) as info:
        await second.return_value(timeout=30)
    cause = getattr(info.value, "cause", info.value)
    assert isinstance(cause, HookConflictError), repr(info.value)
    one_line_naming(cause, "shared-token")
    record = reopen(world).get_run(second.run_id)
    assert record.status == "failed"
    assert record.error["type"] == "HookConflictError"

    # the first run keeps its hook and completes with the payload
    assert world.get_hook_by_token("shared-token").run_id == first.run_id
    assert await first.status() in ("pending", "running")
    await Gate(value=5).resume("shared-token")
    assert await first.return_value(timeout=30) == 10

    # a run's hooks are disposed when it ends, so the token can be used again
    third = await durable.start(gated, "shared-token")
    await wait_for_hook(world, "shared-token")
    await Gate(value=7).resume("shared-token")
    assert await third.return_value(timeout=30) == 14
    assert_intact(world, {first.run_id: ("completed", 10), third.run_id: ("completed", 14)})
    assert reopen(world).get_run(second.run_id).status == "failed"


# -- functions that are not async ----------------------------------------------------------


def plain_step(x):
    return x


def plain_workflow(x):
    return x


@pytest.mark.parametrize(
    "decorate",
    [
        pytest.param(lambda r, f: r.step(f), id="step"),
        pytest.param(lambda r, f: r.step(max_retries=2)(f), id="step(max_retries)"),
        pytest.param(lambda r, f: r.step(name="explicit-step")(f), id="step(name)"),
        pytest.param(lambda r, f: r.workflow(f), id="workflow"),
        pytest.param(lambda r, f: r.workflow(name="explicit-wf")(f), id="workflow(name)"),
        pytest.param(lambda r, f: r.register_step(f, name="reg-step"), id="register_step"),
        pytest.param(lambda r, f: r.register_workflow(f, name="reg-wf"), id="register_workflow"),
    ],
)
def test_function_that_is_not_async_is_refused_at_decoration(decorate):
    registry = Workflows(namespace="badinput")
    with pytest.raises(TypeError) as info:
        decorate(registry, plain_step)
    one_line_naming(info.value, "plain_step", "async")
