"""The pytest11 plugin: `wf_engine` runs a user's test once per engine, and an engine's
`Unsupported` refusal becomes a skip with the reason. Runs pytest in a subprocess on a test file
written here, as a user's project would."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider",
         "-p", "no:randomly", str(tmp_path / "test_user.py"), *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )


@pytest.mark.slow
def test_one_instance_per_engine_and_unsupported_skips(tmp_path) -> None:
    r = run_pytest(tmp_path, """
        from engines import Unsupported

        def test_names(wf_engine_name):
            if wf_engine_name == "codegen-strict":
                raise Unsupported("branch condition 1 of entry 2 is a Python callable")
    """)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    for name in ("default", "codegen", "codegen-strict", "stepmode"):
        assert f"test_names[{name}]" in out
    assert "test_names[native]" not in out
    assert "3 passed, 1 skipped" in out
    assert "branch condition 1 of entry 2 is a Python callable" in out


@pytest.mark.slow
def test_engine_choice_and_bad_engine(tmp_path) -> None:
    body = """
        def test_names(wf_engine_name):
            assert wf_engine_name in ("native", "default")
    """
    r = run_pytest(tmp_path, body, "--wf-engine", "native", "--wf-engine", "default")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_names[native]" in r.stdout and "2 passed" in r.stdout
    r = run_pytest(tmp_path, body, "--wf-engine", "warp")
    assert r.returncode != 0
    assert "unknown wfbench engine 'warp'" in r.stdout + r.stderr


@pytest.mark.slow
def test_other_exceptions_still_fail(tmp_path) -> None:
    r = run_pytest(tmp_path, """
        def test_names(wf_engine_name):
            raise RuntimeError("real bug")
    """, "--wf-engine", "default")
    assert r.returncode == 1
    assert "1 failed" in r.stdout


@pytest.mark.slow
def test_users_workflow_runs_on_every_engine(tmp_path) -> None:
    r = run_pytest(tmp_path, """
        import pytest
        from flow import create_step, create_workflow

        inc = create_step(id="inc", execute=lambda ctx: {"value": ctx.input_data["value"] + 1})
        dbl = create_step(id="dbl", execute=lambda ctx: {"value": ctx.input_data["value"] * 2})
        seq = create_workflow(id="user-seq").then(inc).then(dbl).commit()
        choose = (create_workflow(id="user-branch")
                  .branch([(lambda ctx: ctx.input_data["value"] > 0, dbl)]).commit())

        @pytest.mark.asyncio
        async def test_seq(wf_engine):
            result = await wf_engine.run(seq, input_data={"value": 1})
            assert result.status == "success"
            assert result.result == {"value": 4}

        @pytest.mark.asyncio
        async def test_branch(wf_engine):
            result = await wf_engine.run(choose, input_data={"value": 3})
            assert result.status == "success"
            assert result.result == {"dbl": {"value": 6}}
    """)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    # 4 engines x 2 tests; codegen-strict refuses the branch condition (a closure): skipped
    assert "7 passed, 1 skipped" in out
    assert "SKIPPED" in out and "codegen-strict does not support this workflow" in out


@pytest.mark.temporal
@pytest.mark.slow
def test_users_workflow_on_temporal(tmp_path, temporal_address) -> None:
    body = """
        import os

        import pytest
        from flow import create_step, create_workflow

        inc = create_step(id="inc", execute=lambda ctx: {"value": ctx.input_data["value"] + 1})
        seq = create_workflow(id="user-seq-t").then(inc).then(inc).commit()

        @pytest.mark.asyncio
        async def test_seq(wf_engine, wf_engine_name):
            result = await wf_engine.run(seq, input_data={"value": 1})
            assert (result.status, result.result) == ("success", {"value": 3})
            print("QUEUE", wf_engine_name, os.environ.get("WFBENCH_TEMPORAL_TASK_QUEUE"))
    """
    (tmp_path / "test_user.py").write_text(textwrap.dedent(body))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-s", "-p", "no:cacheprovider",
         str(tmp_path / "test_user.py"), "--wf-engine", "temporal", "--wf-engine", "default"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
             "WFBENCH_TEMPORAL_ADDRESS": temporal_address},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_seq[temporal]" in r.stdout and "2 passed" in r.stdout
    queues = dict(re.findall(r"QUEUE (\S+) (\S+)", r.stdout))
    assert queues["temporal"].startswith("cell-") and queues["default"] == "None"
