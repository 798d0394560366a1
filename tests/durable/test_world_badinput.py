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
import re
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
    yield w
    durable.set_world(None)


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


def test_sqlite_database_of_another_application_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada')")
    conn.commit()
    conn.close()
    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_runs()
    one_line_naming(info.value, str(path))
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    rows = conn.execute("SELECT name FROM users").fetchall()
    conn.close()
    assert tables == ["users"], "the world must not add its tables to another database"
    assert rows == [("ada",)]


def test_directory_as_database_path_is_refused_naming_it(tmp_path):
    path = tmp_path / "a-directory"
    path.mkdir()
    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_runs()
    one_line_naming(info.value, str(path))


def test_database_path_under_a_regular_file_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a directory\n")
    path = blocker / "runs.db"
    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_runs()
    one_line_naming(info.value, str(path))
    assert blocker.read_text() == "not a directory\n"


def test_wfbench_db_pointing_at_junk_is_refused_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "junk-from-env.db"
    path.write_bytes(b"\x00garbage" * 512)
    monkeypatch.setenv("WFBENCH_DB", str(path))
    with pytest.raises(Exception) as info:
        durable.SqliteWorld().list_runs()
    one_line_naming(info.value, str(path))


async def make_database_with_runs(path) -> dict[str, tuple[str, object]]:
    world = durable.SqliteWorld(path)
    durable.set_world(world)
    expected = {}
    for x in (1, 2, 3):
        expected[await finished_doubler(x)] = ("completed", 2 * x)
    durable.set_world(None)
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


def test_corrupt_run_record_names_the_run_and_blocks_no_other_run(tmp_path):
    """A valid SQLite file with one damaged record (invalid JSON in a run's input): reading that
    run is a clear error naming it and the file; a Worker still recovers every other run."""
    path = tmp_path / "runs.db"
    world = durable.SqliteWorld(path)
    # created with no event loop running: both runs stay pending for a worker
    damaged = durable.start_run(doubler, args=(1,), world=world).run_id
    healthy = durable.start_run(doubler, args=(2,), world=world).run_id
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET input = '{not json' WHERE run_id = ?", (damaged,))
    conn.commit()
    conn.close()

    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).get_run(damaged)
    one_line_naming(info.value, damaged, str(path))
    assert durable.SqliteWorld(path).get_run(healthy).status == "pending"

    asyncio.run(durable.Worker(durable.SqliteWorld(path)).run(until_idle=True))
    rec = durable.SqliteWorld(path).get_run(healthy)
    assert (rec.status, rec.output) == ("completed", 4)


def test_damaged_event_fails_only_its_run_with_a_clear_error(tmp_path):
    """A valid SQLite file with one damaged event (invalid JSON in the log of one run): reading
    that log is a one-line error naming the run and the file; recovery fails that run with a
    clear error (reference 2.6 [N]: a corrupted log ends the run failed, CORRUPTED_EVENT_LOG)
    and still completes the other run."""
    path = tmp_path / "runs.db"
    world = durable.SqliteWorld(path)
    damaged = durable.start_run(doubler, args=(1,), world=world).run_id
    healthy = durable.start_run(doubler, args=(2,), world=world).run_id
    conn = sqlite3.connect(path)
    conn.execute("UPDATE events SET data = '{not json' WHERE run_id = ?", (damaged,))
    conn.commit()
    conn.close()

    with pytest.raises(Exception) as info:
        durable.SqliteWorld(path).list_events(damaged)
    one_line_naming(info.value, damaged, str(path))

    asyncio.run(durable.Worker(durable.SqliteWorld(path)).run(until_idle=True))
    fresh = durable.SqliteWorld(path)
    rec = fresh.get_run(healthy)
    assert (rec.status, rec.output) == ("completed", 4)
    rec = fresh.get_run(damaged)
    assert rec.status == "failed", rec
    message = rec.error["message"]
    assert str(path) in message and re.search("damaged|corrupt", message, re.I), rec.error


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


@wf.workflow
async def double_booked(token: str) -> dict:
    """Holds a live hook on ``token`` and tries to create a second one on the same token."""
    async with Gate.wait(token=token) as hook:
        try:
            await Gate.wait(token=token)
        except HookConflictError as exc:
            conflict = str(exc)
        else:
            conflict = ""
        async for gate in hook:
            return {"conflict": conflict, "value": gate.value}
    return {}


async def test_second_hook_on_same_token_in_one_run_is_catchable_hook_conflict(world):
    run = await durable.start(double_booked, "one-run-token")
    await wait_for_hook(world, "one-run-token")
    await Gate(value=3).resume("one-run-token")
    out = await run.return_value(timeout=30)
    assert out["value"] == 3
    assert "one-run-token" in out["conflict"], out
    assert world.get_hook_by_token("one-run-token") is None  # disposed when the run ended


async def test_duplicate_explicit_run_id_is_refused_and_first_run_kept(world):
    first = durable.start_run(doubler, args=(6,), run_id="my-run-1")
    assert await first.return_value(timeout=30) == 12
    with pytest.raises(Exception) as info:
        durable.start_run(doubler, args=(7,), run_id="my-run-1")
    one_line_naming(info.value, "my-run-1")
    assert_intact(world, {"my-run-1": ("completed", 12)})
    assert reopen(world).get_run("my-run-1").input["args"] == [6]


# -- functions that are not async ----------------------------------------------------------


def plain_step(x):
    return x


def plain_workflow(x):
    return x


@pytest.mark.parametrize(
    ("decorate", "fn"),
    [
        pytest.param(lambda r, f: r.step(f), plain_step, id="step"),
        pytest.param(lambda r, f: r.step(max_retries=2)(f), plain_step, id="step(max_retries)"),
        pytest.param(lambda r, f: r.step(name="explicit-step")(f), plain_step, id="step(name)"),
        pytest.param(lambda r, f: r.register_step(f, name="reg-step"), plain_step,
                     id="register_step"),
        pytest.param(lambda r, f: r.workflow(f), plain_workflow, id="workflow"),
        pytest.param(lambda r, f: r.workflow(name="explicit-wf")(f), plain_workflow,
                     id="workflow(name)"),
        pytest.param(lambda r, f: r.register_workflow(f, name="reg-wf"), plain_workflow,
                     id="register_workflow"),
    ],
)
def test_function_that_is_not_async_is_refused_at_decoration(decorate, fn):
    registry = Workflows(namespace="badinput")
    with pytest.raises(TypeError) as info:
        decorate(registry, fn)
    one_line_naming(info.value, fn.__name__, "async")
