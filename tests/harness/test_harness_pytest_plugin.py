"""The pytest11 plugin: `wf_engine` runs a user's test once per engine, and an engine's
`Unsupported` refusal becomes a skip with the reason. Runs pytest in a subprocess on a test file
written here, as a user's project would."""

from __future__ import annotations

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
