"""The Temporal backend's generated module: its shape, its names, and that it is safe to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from engines.codegen.runtime import CRASH_ALLOWANCE
from engines.temporal.compiler import generate_temporal_source, program_for, workflow_type
from flow import create_step, create_workflow
from tests.engines import engine_workflows as W

pytestmark = pytest.mark.temporal

ROOT = Path(__file__).resolve().parents[2]


def top_level_kinds(source: str) -> list[str]:
    return [type(node).__name__ for node in ast.parse(source).body]


def test_module_has_no_import_time_side_effects():
    source = generate_temporal_source(W.orders)
    tree = ast.parse(source)
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body[1:]:
        if isinstance(node, ast.With):  # only `with workflow.unsafe.imports_passed_through():`
            assert ast.unparse(node.items[0].context_expr) == "workflow.unsafe.imports_passed_through()"
            assert all(isinstance(n, ast.ImportFrom) for n in node.body)
            continue
        assert isinstance(node, allowed), ast.unparse(node)[:80]
        if isinstance(node, ast.Assign):  # constants and tables only: no calls but the specs
            calls = {ast.unparse(c.func) for c in ast.walk(node.value) if isinstance(c, ast.Call)}
            assert calls <= {"ActivitySpec", "RetryPolicy", "timedelta"}
    assert isinstance(tree.body[0], ast.Expr)  # the module docstring


def test_workflow_class_activities_and_handlers():
    source = generate_temporal_source(W.branch)
    program = program_for(W.branch)
    assert f"WORKFLOW_TYPE = {program.type_name!r}" in source
    assert program.type_name == workflow_type("branch", program.compiled.graph_hash)
    assert "@workflow.defn(name=WORKFLOW_TYPE)" in source
    assert "class FlowWorkflow(FlowWorkflowBase):" in source
    for handler in ("@workflow.run", "@workflow.signal(name='resume')",
                    "@workflow.update(name='settle', unfinished_policy=ABANDON)",
                    "@workflow.query(name='waiting')", "@workflow.query(name='suspension')"):
        assert handler in source
    acts = program.module.ACTIVITIES
    # one activity per step and per lifted closure (the two branch conditions)
    assert set(acts) == {("branch", "big"), ("branch", "small"), ("branch", "label"),
                         "branch/entry1/branch1/condition", "branch/entry1/branch2/condition"}
    assert acts[("branch", "big")].name == f"{program.type_name}/branch/big"
    assert acts["branch/entry1/branch2/condition"].name == \
        f"{program.type_name}/branch/entry1/branch2/condition"


def test_retries_become_a_retry_policy():
    flaky = create_step("flaky", lambda ctx: ctx.input_data, retries=2)
    plain = create_step("plain", lambda ctx: ctx.input_data)
    wf = (create_workflow(id="retry-policy", retry_config={"attempts": 4, "delay": 0.5})
          .then(flaky).then(plain).commit())
    acts = program_for(wf).module.ACTIVITIES
    assert acts[("retry-policy", "flaky")].retries == 2  # the step's own retries win
    assert acts[("retry-policy", "plain")].retries == 4  # else the workflow's retry_config
    policy = acts[("retry-policy", "flaky")].retry_policy
    assert policy.maximum_attempts == 2 + 1 + CRASH_ALLOWANCE
    assert policy.initial_interval.total_seconds() == 0.5
    assert policy.backoff_coefficient == 1.0


def test_same_names_and_source_in_another_process():
    program = program_for(W.nested, "tests.engines.engine_workflows:nested")
    code = ("from engines.temporal.compiler import program_for\n"
            "from tests.engines import engine_workflows as W\n"
            "p = program_for(W.nested)\n"
            "print(p.type_name)\n"
            "print(p.path.read_text() == p.source)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.split() == [program.type_name, "True"]
    assert program.path.read_text() == program.source


HOSTILE = 'x"); import os; os.system("echo pwned'


async def test_hostile_step_id_is_only_a_literal(engine, tmp_path):
    step = create_step(HOSTILE, lambda ctx: {"ok": True})
    wf = create_workflow(id=HOSTILE + "-wf").then(step).commit()
    source = generate_temporal_source(wf)
    calls = {ast.unparse(c.func) for c in ast.walk(ast.parse(source)) if isinstance(c, ast.Call)}
    assert "os.system" not in calls
    result = await engine.run(wf, input_data={})
    assert result.status == "success"
    assert result.steps[HOSTILE].output == {"ok": True}
