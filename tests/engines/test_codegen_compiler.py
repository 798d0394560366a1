"""The codegen compiler on graphs built directly from flow.graph entries (no builder needed):
generated source, compilation and linecache, strictness, stable closure ids, injection safety."""

from __future__ import annotations

import ast
import datetime as dt
import linecache
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines import Unsupported
from engines.codegen.compiler import (
    CompileError,
    compile_workflow,
    generate_source,
    graph_hash,
)
from engines.codegen.writer import CodeWriter, literal
from flow.graph import (
    ConditionalEntry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    SleepUntilEntry,
    StepEntry,
)
from flow.step import MappingSpec, Step, create_step


@dataclass(eq=False)
class GraphOnly:
    """A committed-workflow stand-in: just an id and a graph (what the compiler reads)."""

    id: str
    graph: tuple


def step(sid: str) -> Step:
    return create_step(sid, lambda ctx: ctx.input_data)


def mapping(sid: str, config) -> Step:
    return Step(id=sid, execute=lambda ctx: None, component="MAPPING", map_config=config)


def test_writer_indents_and_refuses_multiline():
    w = CodeWriter()
    w.writeline("def f():")
    w.indent()
    w.writeline("return 1")
    w.outdent()
    assert w.getvalue() == "def f():\n    return 1\n"
    with pytest.raises(ValueError):
        w.writeline("a\nb")
    with pytest.raises(ValueError):
        w.outdent()


@pytest.mark.parametrize("value", ['x"); import os', "a'b\\c\n\t", {"k": [1, 2.5, None, True]}, (1,), ()])
def test_literal_round_trips(value):
    assert ast.literal_eval(literal(value)) == value


def test_sequential_source_and_compile():
    wf = GraphOnly("seq", (StepEntry(step("a")), StepEntry(step("b"))))
    src = generate_source(wf)
    lines = src.splitlines()
    assert "async def workflow_seq(run, input_data):" in lines
    # a middle entry hands its result on (next_input ends the run when it did not succeed) ...
    assert "    prev = next_input(await use_step('a')(prev))" in lines
    # ... the last one is returned, with no dead stop-check
    assert lines[-3:] == ["    r = await use_step('b')(prev)", "", "    return run.end(r)"]
    assert src.count("return run.end(r)") == 1
    assert src.count("next_input(") == 2  # the alias and entry 1
    compiled = compile_workflow(wf)
    assert compiled.entry.__name__ == "workflow_seq"
    assert compiled.entry.__code__.co_filename == compiled.filename
    assert compiled.filename.startswith("<wfbench-codegen seq ")
    assert linecache.getline(compiled.filename, 1).startswith("# wfbench codegen of workflow 'seq'")
    assert compiled.closures == {}


def test_compilation_is_cached_per_graph():
    wf = GraphOnly("cached", (StepEntry(step("a")),))
    assert compile_workflow(wf) is compile_workflow(wf)
    assert compile_workflow(wf, strict=True) is not compile_workflow(wf)


def test_parallel_branch_loop_foreach_sleep_shapes():
    inner = GraphOnly("inner", (StepEntry(step("i1")),))
    wf = GraphOnly("shapes", (
        ParallelEntry((StepEntry(step("p1")), StepEntry(step("p2")))),
        ConditionalEntry((StepEntry(step("b1")), StepEntry(inner)), (lambda c: True, lambda c: False)),
        LoopEntry(step("inc"), lambda c: True, "dowhile"),
        ForeachEntry(step("each"), concurrency=3),
        SleepEntry("sleep_5", duration=dt.timedelta(seconds=2)),
        SleepEntry("sleep_6", fn=lambda c: 1),
        SleepUntilEntry("sleep_7", date=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    ))
    src = generate_source(wf)
    assert "chosen = await asyncio.gather(" in src
    assert "r = run.block(['p1', 'p2'], await run.gather(" in src
    assert "r = run.block(['b1', 'inner'], await run.gather(*calls))" in src
    assert "r = run.foreach_end('each', prev, await run.gather(" in src
    assert "use_closure('shapes/entry2/branch1/condition')(prev)," in src
    assert "use_closure('shapes/entry2/branch2/condition')(prev)," in src
    assert "        if not await use_closure('shapes/entry3/loop/condition')(prev, iteration=iteration):" in src
    assert "    pool = asyncio.Semaphore(3)" in src
    assert "            return await use_step('each').item(index, item, pool)" in src
    assert "    await sleep(2.0)" in src
    assert "    prev = next_input(run.sleep_end('sleep_5', prev))" in src
    assert "    r = run.sleep_end('sleep_7', prev)" in src  # the last entry
    assert "    await sleep(run.seconds(await use_closure('shapes/entry6/sleep/duration')(prev)))" in src
    assert "    await sleep(run.until('2030-01-02T03:04:05+00:00'))" in src
    assert "async def workflow_inner(run, input_data):" in src
    compiled = compile_workflow(wf)
    assert sorted(compiled.closures) == [
        "shapes/entry2/branch1/condition", "shapes/entry2/branch2/condition",
        "shapes/entry3/loop/condition", "shapes/entry6/sleep/duration"]
    assert compiled.workflows["shapes"].steps["inner"].nested == "workflow_inner"
    assert set(compiled.workflows) == {"shapes", "inner"}


def test_static_mapping_is_inlined_and_fn_key_is_lifted():
    cfg = {
        "total": MappingSpec(step="sum", path="a.b"),
        "first": MappingSpec(step=["x", "y"], path="."),
        "const": MappingSpec(value={"n": 1}, has_value=True),
        "obj": MappingSpec(value=dt.date(2020, 1, 1), has_value=True),
        "user": MappingSpec(init_data=True, path="user"),
        "tenant": {"request_context_path": "tenant"},
        "dyn": MappingSpec(fn=lambda c: 1),
    }
    wf = GraphOnly("m", (StepEntry(mapping("mapping_1", cfg)),))
    src = generate_source(wf)
    lines = src.splitlines()
    start = lines.index("    r = await run.mapping('mapping_1', prev, {")
    assert lines[start + 1:start + 9] == [
        "        'total': run.from_step(['sum'], 'a.b'),",
        "        'first': run.from_step(['x', 'y'], '.'),",
        "        'const': {'n': 1},",
        "        'obj': run.constant('m/entry1/map/obj'),",
        "        'user': run.from_init('user'),",
        "        'tenant': run.from_request_context('tenant'),",
        "        'dyn': use_closure('m/entry1/map/dyn'),",
        "    })",
    ]
    assert "async def" not in src.replace("async def workflow_m(", "")  # no nested function
    compiled = compile_workflow(wf)
    assert compiled.constants == {"m/entry1/map/obj": dt.date(2020, 1, 1)}
    assert compiled.closures["m/entry1/map/dyn"].record_id == "mapping_1"


def test_function_map_is_a_lifted_step():
    fn_map = mapping("mapping_2", lambda ctx: {"v": 1})
    wf = GraphOnly("fm", (StepEntry(step("a")), StepEntry(fn_map)))
    compiled = compile_workflow(wf)
    assert "    r = await use_step('mapping_2')(prev)" in compiled.source  # the last entry
    assert compiled.workflows["fm"].steps["mapping_2"].durable_name == "fm/entry2/map"
    assert compiled.closures["fm/entry2/map"].kind == "map_function"


def test_closure_ids_are_stable_across_compilations():
    def build():
        return GraphOnly("stable", (
            StepEntry(step("a")),
            ConditionalEntry((StepEntry(step("b")),), (lambda c: True,)),
            LoopEntry(step("c"), lambda c: True, "dountil"),
        ))

    one, two = compile_workflow(build()), compile_workflow(build())
    assert one is not two
    assert one.source == two.source
    assert list(one.closures) == list(two.closures) == [
        "stable/entry2/branch1/condition", "stable/entry3/loop/condition"]
    assert graph_hash(build()) == one.graph_hash


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (ConditionalEntry((StepEntry(step("a")), StepEntry(step("b"))), (lambda c: 1, lambda c: 0)),
         "branch condition 1 of entry 2 is a Python callable"),
        (LoopEntry(step("a"), lambda c: True, "dountil"), "dountil condition of entry 2 is a Python callable"),
        (LoopEntry(step("a"), lambda c: True, "dowhile"), "dowhile condition of entry 2 is a Python callable"),
        (SleepEntry("sleep_2", fn=lambda c: 1), "sleep duration function of entry 2 is a Python callable"),
        (SleepUntilEntry("sleep_2", fn=lambda c: None), "sleep_until date function of entry 2 is a Python callable"),
        (StepEntry(mapping("mapping_2", lambda c: 1)), "map function of entry 2 is a Python callable"),
        (StepEntry(mapping("mapping_2", {"k": MappingSpec(fn=lambda c: 1)})),
         "dynamic mapping fn for key 'k' of entry 2 is a Python callable"),
    ],
)
def test_strict_refuses_closures_naming_construct_and_position(entry, message):
    wf = GraphOnly("strict", (StepEntry(step("first")), entry))
    with pytest.raises(Unsupported) as err:
        compile_workflow(wf, strict=True)
    assert str(err.value) == (
        message + "; codegen-strict compiles only then/parallel/foreach/static sleep/static map")
    compile_workflow(wf)  # plain codegen lifts it


def test_strict_names_nested_workflow_position():
    inner = GraphOnly("inner", (StepEntry(step("x")), LoopEntry(step("y"), lambda c: 1, "dountil")))
    wf = GraphOnly("outer", (StepEntry(inner),))
    with pytest.raises(Unsupported, match=r"^dountil condition of entry 2 of nested workflow 'inner' is"):
        compile_workflow(wf, strict=True)


def test_strict_compiles_static_patterns():
    inner = GraphOnly("inner", (StepEntry(step("x")),))
    wf = GraphOnly("ok", (
        StepEntry(step("a")),
        ParallelEntry((StepEntry(step("b")), StepEntry(step("c")))),
        ForeachEntry(step("d"), 2),
        SleepEntry("sleep_4", duration=1),
        StepEntry(mapping("mapping_5", {"v": MappingSpec(step="a", path=".")})),
        StepEntry(inner),
    ))
    compiled = compile_workflow(wf, strict=True)
    assert compiled.closures == {}


def test_two_different_steps_with_one_id_is_a_compile_error():
    wf = GraphOnly("dup", (StepEntry(step("a")), StepEntry(step("a"))))
    with pytest.raises(CompileError, match="two different steps with the id 'a'"):
        compile_workflow(wf)


INJECTION = 'x"); import os; os.system("echo pwned'


def test_injected_ids_stay_literals(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = f"x\"); import os; os.system(\"touch {marker}\"); ('"
    evil_wf = f"w\nimport os\nos.system('touch {marker}')\n"
    s = step(INJECTION)
    wf = GraphOnly(evil_wf, (
        StepEntry(s),
        StepEntry(step(evil)),
        ConditionalEntry((StepEntry(step("b")),), (lambda c: True,)),
        StepEntry(mapping(evil + "_map", {evil: MappingSpec(step=evil, path=evil + ".p")})),
    ))
    compiled = compile_workflow(wf)
    tree = ast.parse(compiled.source)
    # no import statements and no calls other than the runtime's names
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id
              for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Attribute | ast.Name)}
    assert called == {"use_step", "use_closure", "next_input", "end", "block", "gather", "mapping",
                      "from_step", "append"}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert INJECTION in strings and evil in strings
    assert f"{evil_wf}/entry3/branch1/condition" in strings
    assert not marker.exists()
    assert compiled.entry.__name__.isidentifier()
    assert compiled.entry.__name__.startswith("workflow_w_import_os_os_system__touch_")
