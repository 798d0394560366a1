"""The cheap per-step path keeps the runtime's semantics (issue 6 tuning):

- flat values are copied without a JSON round trip, and the copy is what the round trip gives;
- a step still gets its own copy of its arguments as they were at the call, and the body its own
  copy of the result;
- on SqliteWorld a step costs ONE SQL statement, whose guard (run held by this owner and
  running) and sequence numbers make it write nothing when it must not;
- `last_steps` gives what folding every step record gives, reading only the chosen steps;
- a wfbench-durable-2 database is migrated on open; WAL checkpoints run in the background.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable import Workflows
from durable._internal import sqlite_world as sw
from durable._internal.errors import LeaseLostError
from durable._internal.serialization import (
    NOT_PLAIN,
    copy_call,
    copy_plain,
    decode_own,
    encode,
    encode_call,
)
from durable._internal.world import Batch, NewEvent, RunRecord, fold_last_steps, last_steps

wf = Workflows()

# ----------------------------------------------------------------------------- plain copies

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                    st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(values)
def test_copy_plain_is_what_a_json_round_trip_gives(value: Any) -> None:
    copied = copy_plain(value)
    if copied is NOT_PLAIN:
        return
    round_trip = decode_own(encode(value))
    assert copied == round_trip and type(copied) is type(round_trip)
    if isinstance(value, dict | list | tuple):
        assert copied is not value


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [
    {"a": {"b": {"c": 1}}}, [[1]], [{"a": 1}], {1: "int key"}, Color.RED, {"a": {1: "x"}},
    Name("x"), {"k": Name("x")}, {"a": {"k": Name("x")}}, {"a": [Color.RED]}, [Color.RED],
    Point(1), {"p": Point(1)}, {"a": {"p": Point(1)}}, {1, 2}, b"bytes",
    {f"k{i}": {"v": i} for i in range(9)},  # more than a few nested values: decoded instead
])
def test_values_that_json_changes_are_not_copied_plainly(value: Any) -> None:
    assert copy_plain(value) is NOT_PLAIN


def test_a_dict_of_flat_values_is_copied_one_level_deep() -> None:
    # the shape of a codegen step result: {"output": {...}}
    value = {"output": {"value": 5, "s": "x"}, "items": (1, "a"), "n": None}
    copied = copy_plain(value)
    assert copied == {"output": {"value": 5, "s": "x"}, "items": [1, "a"], "n": None}
    assert copied == decode_own(encode(value))
    assert copied is not value and copied["output"] is not value["output"]
    assert type(copied["items"]) is list


def test_flat_values_are_copied_as_json_would_give_them() -> None:
    assert copy_plain({"value": 5, "s": "x", "f": 1.5, "n": None, "b": False}) == {
        "value": 5, "s": "x", "f": 1.5, "n": None, "b": False}
    assert copy_plain((1, "a")) == [1, "a"]
    assert copy_call(({"v": 1}, 2), {"k": [3]}) == ([{"v": 1}, 2], {"k": [3]})
    assert copy_call(({"v": {"deep": {"er": 1}}},), {}) is None
    got = copy_call(({"v": {"deep": 1}},), {})
    assert got == ([{"v": {"deep": 1}}], {})
    assert encode_call(({"v": 1}, 2), {"k": [3]}) == encode({"args": [{"v": 1}, 2],
                                                             "kwargs": {"k": [3]}})
    assert encode_call((), {}) == '{"args":[],"kwargs":{}}'
    # keywords only (how codegen calls its flow steps): the same text as the wrapper dict's
    assert encode_call((), {"input_data": {"v": [1, "a"]}, "iteration": 2}) == (
        '{"args":[],"kwargs":{"input_data":{"v":[1,"a"]},"iteration":2}}')
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(TypeError, match="serialised"):
        encode_call((), {"x": loop})


KEPT: list[dict[str, Any]] = []
GOT: list[Any] = []


@wf.step
async def keep_and_mutate(d: dict[str, Any]) -> dict[str, Any]:
    GOT.append(dict(d))
    d["step_touched"] = True  # the step's own copy: the body's object does not change
    out = {"value": d["value"] + 1}
    KEPT.append(out)  # the step keeps its result object...
    return out


@wf.workflow
async def by_value_body() -> list[Any]:
    arg = {"value": 1}
    fut = keep_and_mutate(arg)
    arg["value"] = 100  # changed after the call, before the step ran: the step sees 1
    first = await fut
    KEPT[-1]["value"] = -1  # ...and changes it after returning: the body's copy does not change
    second = await keep_and_mutate(first)
    return [arg, first, second]


async def test_flat_arguments_and_results_are_still_passed_by_value(world: durable.World) -> None:
    KEPT.clear()
    GOT.clear()
    run = await durable.start(by_value_body)
    assert await run.return_value(timeout=10) == [{"value": 100}, {"value": 2}, {"value": 3}]
    assert GOT == [{"value": 1}, {"value": 2}]
    created = [e.data["input"] for e in world.list_events(run.run_id) if e.type == "step_created"]
    assert created == [{"args": [{"value": 1}], "kwargs": {}}, {"args": [{"value": 2}], "kwargs": {}}]


ATTEMPT_ARGS: list[Any] = []


@wf.step(max_retries=1, retry_delay=0)
async def mutate_then_fail(d: dict[str, Any]) -> int:
    ATTEMPT_ARGS.append(dict(d))
    d["v"] += 10
    if len(ATTEMPT_ARGS) == 1:
        raise ValueError("first attempt fails")
    return int(d["v"])


@wf.workflow
async def retry_body() -> int:
    return await mutate_then_fail({"v": 1})


async def test_a_retry_gets_a_fresh_copy_of_its_arguments(world: durable.World) -> None:
    ATTEMPT_ARGS.clear()
    run = await durable.start(retry_body)
    assert await run.return_value(timeout=10) == 11
    assert ATTEMPT_ARGS == [{"v": 1}, {"v": 1}]


# ----------------------------------------------------------------------------- SqliteWorld SQL


@wf.step
async def bump(d: dict[str, Any]) -> dict[str, Any]:
    return {"value": d["value"] + 1}


@wf.workflow
async def chain(n: int) -> dict[str, Any]:
    v = {"value": 0}
    for _ in range(n):
        v = await bump(v)
    return v


def _statements(w: durable.SqliteWorld, log: list[str]) -> None:
    w._conn.set_trace_callback(log.append)


async def test_a_step_costs_one_sql_statement(tmp_path: Path) -> None:
    w = durable.SqliteWorld(tmp_path / "s.db")
    counts = []
    for n in (20, 60):
        log: list[str] = []
        _statements(w, log)
        run = durable.start_run(chain, (n,), world=w)
        assert await run.return_value(timeout=30) == {"value": n}
        w._conn.set_trace_callback(None)
        counts.append(len(log))
        evs = w.list_events(run.run_id)
        assert len(evs) == 3 * n + 3
        assert [e.seq for e in evs] == list(range(1, 3 * n + 4))  # per run, contiguous
    assert counts[1] - counts[0] == 40  # 40 more steps: 40 more statements
    w.close()


def _held_run(w: durable.SqliteWorld, run_id: str = "r1", owner: str = "me") -> None:
    now = time.time()
    w.create_run(RunRecord(run_id, "wf", "m:wf", "pending", {"args": [], "kwargs": {}},
                           created_at=now), owner, 30.0)
    w.commit(run_id, owner, Batch(events=[NewEvent("run_started", None, {}, now)],
                                  run_update={"status": "running", "started_at": now}), 30.0)


def _step_events(k: int) -> Batch:
    now = time.time()
    return Batch(events=[NewEvent("step_created", f"step_{k}", None, now,
                                  '{"step_name":"s","input":{"args":[],"kwargs":{}}}'),
                         NewEvent("step_started", f"step_{k}", None, now, '{"attempt":1}')])


def test_the_one_statement_guard_refuses_a_run_held_by_another_owner(tmp_path: Path) -> None:
    w = durable.SqliteWorld(tmp_path / "g.db")
    _held_run(w)
    log: list[str] = []
    _statements(w, log)
    w.commit("r1", "me", _step_events(1), 30.0)
    assert len(log) == 1 and log[0].startswith("INSERT INTO events")  # the fast path ran
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("UPDATE runs SET lease_owner='thief' WHERE run_id='r1'")
    with pytest.raises(LeaseLostError, match="thief"):
        w.commit("r1", "me", _step_events(2), 30.0)
    assert [e.correlation_id for e in w.list_events("r1") if e.type == "step_created"] == ["step_1"]
    other.close()
    w.close()


def test_the_one_statement_guard_refuses_a_cancelled_run(tmp_path: Path) -> None:
    w = durable.SqliteWorld(tmp_path / "c.db")
    _held_run(w)
    w.commit("r1", "me", _step_events(1), 30.0)
    other = durable.SqliteWorld(tmp_path / "c.db")
    assert other.cancel_run("r1", "stop", time.time())
    res = w.commit("r1", "me", _step_events(2), 30.0)
    assert res.status == "cancelled"
    types = [e.type for e in w.list_events("r1")]
    assert types[-1] == "run_cancelled" and types.count("step_created") == 1
    other.close()
    w.close()


def test_a_stale_sequence_guess_writes_nothing_and_the_full_commit_appends(tmp_path: Path) -> None:
    w = durable.SqliteWorld(tmp_path / "q.db")
    _held_run(w)
    w.commit("r1", "me", _step_events(1), 30.0)
    w._next_seq["r1"] -= 2  # as if another writer had appended since this connection's last write
    w.commit("r1", "me", _step_events(2), 30.0)
    evs = w.list_events("r1")
    assert [(e.seq, e.type, e.correlation_id) for e in evs] == [
        (1, "run_created", None), (2, "run_started", None), (3, "step_created", "step_1"),
        (4, "step_started", "step_1"), (5, "step_created", "step_2"), (6, "step_started", "step_2")]
    log: list[str] = []
    _statements(w, log)
    w.commit("r1", "me", _step_events(3), 30.0)  # the full commit left a good guess behind
    assert len(log) == 1
    assert [e.seq for e in w.list_events("r1")][-2:] == [7, 8]
    w.close()


def test_a_v2_database_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema', 'wfbench-durable-2');
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL,
          entrypoint TEXT NOT NULL, status TEXT NOT NULL, input TEXT, output TEXT, error TEXT,
          attributes TEXT, created_at REAL, started_at REAL, completed_at REAL, updated_at REAL,
          lease_owner TEXT, lease_expires_at REAL, next_due_at REAL, cancel_reason TEXT);
        CREATE TABLE events (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, type TEXT NOT NULL,
          correlation_id TEXT, data TEXT, created_at REAL);
        CREATE INDEX events_run ON events(run_id, seq);
        INSERT INTO runs(run_id, workflow_name, entrypoint, status, input, attributes, created_at)
          VALUES ('a', 'wf', 'm:wf', 'completed', '{"args":[],"kwargs":{}}', '{}', 1.0);
        INSERT INTO events VALUES (1, 'a', 'run_created', NULL, '{}', 1.0);
        INSERT INTO events VALUES (2, 'b', 'run_created', NULL, '{}', 1.0);
        INSERT INTO events VALUES (3, 'a', 'run_completed', NULL, '{"output":7}', 2.0);
    """)
    con.close()
    w = durable.SqliteWorld(path)
    assert [(e.seq, e.type, e.data) for e in w.list_events("a")] == [
        (1, "run_created", {}), (3, "run_completed", {"output": 7})]
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == sw.SCHEMA_ID
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "events_v2" not in names and "events_run" not in names
    con.close()
    w.close()


def test_another_schema_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                      "INSERT INTO meta VALUES ('schema', 'wfbench-durable-99');")
    con.close()
    with pytest.raises(durable.WorldCorruptError, match="wfbench-durable-99"):
        durable.SqliteWorld(path)


async def test_wal_checkpoints_run_in_the_background(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sw, "CHECKPOINT_EVERY", 5)
    w = durable.SqliteWorld(tmp_path / "k.db")
    run = durable.start_run(chain, (12,), world=w)
    assert await run.return_value(timeout=30) == {"value": 12}
    ck = w._checkpointer
    for _ in range(200):
        if ck.runs >= 1:
            break
        await asyncio.sleep(0.01)
    assert ck.runs >= 1 and ck.thread is not None and ck.thread.name == "durable-wal-checkpoint"
    w.close()
    assert not ck.thread.is_alive()


def test_the_checkpointer_never_creates_a_database(tmp_path: Path) -> None:
    ck = sw._Checkpointer(str(tmp_path / "gone.db"))
    ck.kick()
    assert ck.thread is not None
    ck.thread.join(timeout=10)
    assert not (tmp_path / "gone.db").exists()


# ----------------------------------------------------------------------------- last_steps


@wf.step(max_retries=0)
async def explode(x: int) -> int:
    raise ValueError(f"boom {x}")


@wf.step
async def other_bump(d: dict[str, Any]) -> dict[str, Any]:
    return {"value": d["value"] * 10}


@wf.workflow
async def mixed() -> int:
    a = await bump({"value": 1})
    b = await other_bump(a)
    a = await bump(b)
    try:
        await explode(1)
    except ValueError:
        pass
    c = await bump(a)
    return int(c["value"])


def _short(name: str) -> str:
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


async def test_last_steps_is_the_fold_of_every_step_record(world: durable.World,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    run = await durable.start(mixed)
    assert await run.return_value(timeout=10) == 22
    every = world.list_steps(run.run_id)
    got = last_steps(world, run.run_id)
    assert got == fold_last_steps(every)
    # by hand: bump's last call (step_5), other_bump's only call, explode's failure, in
    # order of each name's first call
    assert [(_short(s.step_name), s.correlation_id, s.status) for s in got] == [
        ("bump", "step_5", "completed"), ("other_bump", "step_2", "completed"),
        ("explode", "step_4", "failed")]
    assert got[0].input == {"args": [{"value": 21}], "kwargs": {}} and got[0].output == {"value": 22}
    # a key grouping several names: the last call among them, at the first one's place
    same = last_steps(world, run.run_id, key=lambda name: "b" if "bump" in name else name)
    assert [(s.correlation_id) for s in same] == ["step_5", "step_4"]
    assert same == fold_last_steps(every, lambda name: "b" if "bump" in name else name)


async def test_sqlite_last_steps_decodes_only_the_chosen_steps(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    w = durable.SqliteWorld(tmp_path / "l.db")
    run = durable.start_run(chain, (40,), world=w)
    assert await run.return_value(timeout=30) == {"value": 40}
    decoded: list[str] = []

    def counting(text: str) -> Any:
        decoded.append(text)
        return json.loads(text)

    monkeypatch.setattr(sw, "decode_own", counting)
    (last,) = w.list_last_steps(run.run_id)
    assert (last.correlation_id, last.output, last.attempt) == ("step_40", {"value": 40}, 1)
    # the run row (input, attributes) and the last step's 3 events, not the 120 of the chain
    assert len([t for t in decoded if t.startswith('{"step_name"') or t.startswith('{"result"')
                or t == '{"attempt":1}']) == 3
    w.close()


def test_last_steps_with_a_damaged_event_names_it(tmp_path: Path) -> None:
    w = durable.SqliteWorld(tmp_path / "d.db")
    _held_run(w)
    w.commit("r1", "me", _step_events(1), 30.0)
    con = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    con.execute("UPDATE events SET data='{not json' WHERE type='step_created'")
    con.close()
    with pytest.raises(durable.WorldCorruptError, match="r1"):
        w.list_last_steps("r1")
    w.close()
