"""A failed codegen run keeps its error classes when read back from the world (the run's JSON)
and when a step's failure crosses the durable log (another process saw it)."""

from __future__ import annotations

import pytest

import durable
import engines.codegen.runtime as runtime
from durable._internal.serialization import error_from_dict, error_to_dict
from engines import get_engine
from engines.codegen.engine import result_from_json
from engines.codegen.errors import StepFailed, error_json, original_error, restore_error
from flow import create_step, create_workflow
from flow.errors import RestoredError


class RegisteredBoom(Exception):
    """Registered with durable, so it is rebuilt as itself."""


durable.register_error(RegisteredBoom)


def _local_error_class() -> type[Exception]:
    class BrokenThing(Exception):  # qualname has <locals>: not importable anywhere
        pass

    return BrokenThing


BrokenThing = _local_error_class()


def _raiser(exc: BaseException):
    def body(ctx):
        raise exc
    return body


def _wf(wid: str, exc: BaseException, retries: int | None = None):
    ok = create_step("ok", lambda c: {"value": 1})
    boom = create_step("boom", _raiser(exc), retries=retries)
    return create_workflow(id=wid).then(ok).then(boom).commit()


@pytest.fixture
def world():
    return durable.MemoryWorld()


@pytest.mark.parametrize(("exc", "name", "cls"), [
    (RuntimeError("broken branch"), "RuntimeError", RuntimeError),
    (KeyError("missing"), "KeyError", KeyError),
    (RegisteredBoom("registered"), "RegisteredBoom", RegisteredBoom),
    (BrokenThing("local class"), "BrokenThing", RestoredError),
])
async def test_finished_failed_run_read_back_keeps_the_class(world, exc, name, cls):
    wf = _wf(f"fails_{name}", exc)
    live = await get_engine("codegen", world=world).run(wf, input_data={}, run_id=f"r-{name}")
    assert live.status == "failed"
    assert live.error is exc  # in the process that ran it: the very object

    # read back (another engine object; the run ended, nothing of it is live in this process)
    assert runtime.live_run(f"r-{name}") is None
    back = await get_engine("codegen", world=world).recover(wf, f"r-{name}")
    assert back.status == "failed"
    assert type(back.error).__name__ == name
    assert isinstance(back.error, cls)
    assert str(back.error) == str(exc)
    assert type(back.steps["boom"].error).__name__ == name
    assert back.steps["boom"].status == "failed"
    assert back.steps["ok"].error is None
    # and from the stored record alone
    rec = world.get_run(f"r-{name}")
    again = result_from_json(rec.output)
    assert type(again.error).__name__ == name
    assert again.to_dict()["error"] == {"name": name, "message": str(exc)}


def test_unknown_class_becomes_a_named_restored_error():
    err = restore_error({"name": "Gone", "message": "m", "type": "Gone", "module": "no.such.module"})
    assert type(err).__name__ == "Gone"
    assert isinstance(err, RestoredError) and err.name == "Gone" and str(err) == "m"
    assert repr(err) == "Gone('m')"
    assert type(restore_error({"name": "Gone", "message": "other"})) is not RestoredError
    # flow's old {"name","message"} form: builtins by name, others a named RestoredError
    assert type(restore_error({"name": "ValueError", "message": "v"})) is ValueError
    legacy = restore_error({"name": "FlowThing", "message": "x"})
    assert type(legacy).__name__ == "FlowThing" and isinstance(legacy, RestoredError)
    # a restored error written again keeps its name
    assert error_json(err)["name"] == "Gone"
    assert restore_error(None) is None


def test_step_failed_survives_the_durable_log():
    sf = StepFailed.of(KeyError("k"))
    assert isinstance(sf, durable.FatalError)  # the runtime must not retry it
    rebuilt = error_from_dict(error_to_dict(sf, fatal=True))
    assert type(rebuilt) is StepFailed
    orig = original_error(rebuilt)
    assert type(orig) is KeyError and orig.args == ("k",)
    assert original_error(ValueError("v")).args == ("v",)


class _Forgetful(dict):
    """Stands for a process that did not run the step: nothing is kept in memory."""

    def __setitem__(self, key, value):
        pass


@pytest.mark.parametrize("retries", [None, 1])
async def test_step_error_seen_only_through_the_log_keeps_its_class(world, monkeypatch, retries):
    monkeypatch.setattr(runtime, "_ERRORS", _Forgetful())
    wf = _wf(f"log_only_{retries}", ValueError("bad value"), retries=retries)
    res = await get_engine("codegen", world=world).run(wf, input_data={})
    assert res.status == "failed"
    assert type(res.error) is ValueError
    assert str(res.error) == "bad value"
    assert type(res.steps["boom"].error) is ValueError


async def test_native_failed_run_keeps_an_unimportable_class_name(world):
    wf = durable.Workflows()

    @wf.workflow(name="errors-native-broken")
    async def broken(x):
        raise BrokenThing("native local class")

    res = await get_engine("native", world=world).run(broken, input_data=1)
    assert res.status == "failed"
    assert type(res.error).__name__ == "BrokenThing"
    assert str(res.error) == "native local class"
