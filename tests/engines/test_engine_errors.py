"""Bad use of an engine raises a precise `EngineError` subclass with a one-line message, before
anything runs: `BadTarget` (not a workflow, uncommitted), `RunNotFound` (unknown run id),
`NotResumable` (run completed / failed / canceled, step not suspended). Nothing is lost: a
refused resume leaves the suspended run resumable."""

from __future__ import annotations

import pydantic
import pytest

import durable
from engines import (
    BadTarget,
    EngineError,
    NotResumable,
    RunNotFound,
    Unsupported,
    get_engine,
)
from flow import FlowError, MemorySnapshotStore, create_step, create_workflow

FLOW_ENGINES = ("default", "codegen", "stepmode")


class Num(pydantic.BaseModel):
    value: int


async def _ask(ctx):
    if ctx.resume_data is None:
        await ctx.suspend({"q": 1})
        return None
    return {"value": ctx.input_data["value"] + ctx.resume_data["add"]}


inc = create_step("inc", lambda c: {"value": c.input_data["value"] + 1})
ask = create_step("ask", _ask)
boom = create_step("boom", lambda c: (_ for _ in ()).throw(RuntimeError("boom")))
asking = create_workflow(id="asking").then(inc).then(ask).commit()
done_wf = create_workflow(id="plain", input_schema=Num).then(inc).commit()
failing = create_workflow(id="failing").then(boom).commit()
uncommitted = create_workflow(id="unc", input_schema=Num).then(inc)  # no .commit()


def _engine(name: str, world, store):
    if name.startswith("codegen") or name == "native":
        return get_engine(name, world=world)
    return get_engine(name, store=store)


@pytest.fixture
def world():
    return durable.MemoryWorld()


@pytest.fixture
def store():
    return MemorySnapshotStore()


@pytest.mark.parametrize("name", [*FLOW_ENGINES, "codegen-strict", "native"])
async def test_not_a_workflow(name, world, store):
    with pytest.raises(BadTarget) as info:
        await _engine(name, world, store).run(42, input_data={"value": 1})
    err = info.value
    assert isinstance(err, EngineError) and isinstance(err, ValueError)
    assert not isinstance(err, Unsupported)
    assert err.subject == "int 42" and err.target == 42 and err.engine == name
    assert str(err).startswith("int 42 is not a workflow; engine ")
    assert "\n" not in str(err)


@pytest.mark.parametrize("name", [*FLOW_ENGINES, "codegen-strict"])
async def test_uncommitted_workflow_is_refused_before_the_input_is_validated(name, world, store):
    with pytest.raises(BadTarget) as info:
        await _engine(name, world, store).run(uncommitted, input_data={"value": "not an int"})
    assert str(info.value) == ("workflow 'unc' is not committed; call .commit() on it "
                               "(create_workflow(...)...commit()) before running it")
    assert world.list_runs() == []


@pytest.mark.parametrize("name", FLOW_ENGINES)
async def test_resume_of_an_unknown_run(name, world, store):
    with pytest.raises(RunNotFound) as info:
        await _engine(name, world, store).resume(asking, "nosuchrun", step="ask",
                                                 resume_data={"add": 1})
    assert info.value.run_id == "nosuchrun"
    assert str(info.value).startswith("no run 'nosuchrun' in ")
    assert isinstance(info.value, FlowError)  # still a flow error for older callers


async def test_unknown_run_names_the_sqlite_file(tmp_path):
    world = durable.SqliteWorld(str(tmp_path / "runs.db"))
    with pytest.raises(RunNotFound, match=r"^no run 'nosuchrun' in .*runs\.db$"):
        await get_engine("codegen", world=world).resume(asking, "nosuchrun", step="ask")
    with pytest.raises(RunNotFound, match=r"^no run 'nosuchrun' in .*runs\.db$"):
        await get_engine("native", world=world).resume(lambda: None, "nosuchrun", step="t")


@pytest.mark.parametrize("name", FLOW_ENGINES)
async def test_resume_of_a_completed_run(name, world, store):
    eng = _engine(name, world, store)
    res = await eng.run(done_wf, input_data={"value": 1}, run_id="keep-done")
    assert res.status == "success"
    with pytest.raises(NotResumable) as info:
        await eng.resume(done_wf, "keep-done")
    assert str(info.value) == ("run 'keep-done' has already completed; only a suspended run "
                               "can be resumed")
    assert info.value.status == "success"


@pytest.mark.parametrize("name", FLOW_ENGINES)
async def test_resume_of_a_failed_run(name, world, store):
    eng = _engine(name, world, store)
    res = await eng.run(failing, input_data={}, run_id="keep-failed")
    assert res.status == "failed"
    with pytest.raises(NotResumable) as info:
        await eng.resume(failing, "keep-failed", step="boom")
    assert str(info.value) == ("run 'keep-failed' has already failed; only a suspended run can "
                               "be resumed (asked to resume 'boom')")
    assert info.value.status == "failed"


@pytest.mark.parametrize("name", FLOW_ENGINES)
async def test_unknown_step_then_a_real_resume_then_resuming_twice(name, world, store):
    eng = _engine(name, world, store)
    first = await eng.run(asking, input_data={"value": 1}, run_id="keep-susp")
    assert first.status == "suspended"
    with pytest.raises(NotResumable) as info:
        await eng.resume(asking, "keep-susp", step="nosuchstep", resume_data={"add": 1})
    assert str(info.value) == ('This workflow step "nosuchstep" was not suspended. Available '
                               "suspended steps: [ask]")
    assert info.value.status == "suspended"
    # nothing was lost: the run is still suspended and resumes
    done = await eng.resume(asking, "keep-susp", step="ask", resume_data={"add": 10})
    assert (done.status, done.result) == ("success", {"value": 12})
    with pytest.raises(NotResumable, match="^run 'keep-susp' has already completed; only a "
                                           "suspended run can be resumed"):
        await eng.resume(asking, "keep-susp", step="ask", resume_data={"add": 10})


@pytest.mark.parametrize("name", ["default", "codegen"])
async def test_resume_of_a_canceled_run(name, world, store):
    eng = _engine(name, world, store)
    first = await eng.run(asking, input_data={"value": 1}, run_id="keep-cancel")
    assert first.status == "suspended"
    await eng.cancel(asking, "keep-cancel")
    with pytest.raises(NotResumable, match="^run 'keep-cancel' was canceled; only a suspended"):
        await eng.resume(asking, "keep-cancel", step="ask", resume_data={"add": 1})


async def test_codegen_resume_with_the_wrong_target(world):
    eng = get_engine("codegen", world=world)
    await eng.run(asking, input_data={"value": 1}, run_id="r-asking")
    with pytest.raises(BadTarget, match="^workflow 'plain' is not the workflow of run 'r-asking'"):
        await eng.resume(done_wf, "r-asking", step="ask", resume_data={"add": 1})


async def test_native_resume_of_a_finished_run(world):
    wf = durable.Workflows()

    @wf.workflow(name="errors-native-hello")
    async def hello(x):
        return x

    eng = get_engine("native", world=world)
    res = await eng.run(hello, input_data=3, run_id="n-done")
    assert (res.status, res.result) == ("success", 3)
    with pytest.raises(NotResumable) as info:
        await eng.resume(hello, "n-done", step="order-42", resume_data={})
    assert str(info.value) == ("run 'n-done' has already completed; only a suspended run can be "
                               "resumed (asked to resume 'order-42')")


@pytest.mark.parametrize("name", FLOW_ENGINES)
async def test_db_option_keeps_runs_in_that_file(name, tmp_path):
    """`get_engine(name, db=path)` on every engine: a run suspended by one engine object is
    resumed by another one built on the same file (and unknown there under another file)."""
    db = tmp_path / f"{name}.db"
    first = await get_engine(name, db=db).run(asking, input_data={"value": 1}, run_id="db-1")
    assert first.status == "suspended"
    assert db.exists()
    done = await get_engine(name, db=db).resume(asking, "db-1", step="ask", resume_data={"add": 5})
    assert (done.status, done.result) == ("success", {"value": 7})
    with pytest.raises(RunNotFound, match=r"^no run 'db-1' in .*other\.db"):
        await get_engine(name, db=tmp_path / "other.db").resume(asking, "db-1", step="ask")


async def test_native_db_option(tmp_path):
    wf = durable.Workflows()

    @wf.workflow(name="errors-native-db")
    async def hello(x):
        return x + 1

    res = await get_engine("native", db=tmp_path / "n.db").run(hello, input_data=1, run_id="n1")
    assert (res.status, res.result) == ("success", 2)
    assert durable.SqliteWorld(str(tmp_path / "n.db")).get_run("n1").status == "completed"
