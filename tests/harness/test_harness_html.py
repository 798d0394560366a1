"""The HTML report in headless Chromium: loads without console errors, one cell per engine and
scenario, and a click on a cell shows its details (diff, reason, exception, generated source)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from test_harness_matrix import synthetic

from harness.cells import Verdict
from harness.render import render

CHROMIUM = "/usr/bin/chromium"

# Skipped only on a developer machine without Chromium; with CI set it runs (and fails loudly
# if Chromium is missing, since .ci/run installs it).
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason=f"{CHROMIUM} not found (apt-get install chromium); CI installs it and runs this test",
)


def dump_dom(page: Path, tmp_path: Path, fragment: str = "") -> tuple[str, str]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs Debian's chromium"
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def status(dom: str) -> dict[str, str]:
    m = re.search(r'<div id="status"([^>]*)>', dom)
    assert m, "the status element is missing from the dumped DOM"
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1)))


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


@pytest.mark.slow
def test_page_loads_without_errors_with_one_cell_per_engine_and_scenario(tmp_path) -> None:
    m = synthetic()
    page = tmp_path / "matrix.html"
    page.write_text(render(m, "html"), encoding="utf-8")
    dom, stderr = dump_dom(page, tmp_path)
    st = status(dom)
    assert st["loaded"] == "yes"
    assert st["console-errors"] == "0", st.get("errors-text")
    assert console_errors(stderr) == []
    n = len(m.engines) * len(m.scenarios)
    assert st["cells"] == str(n) == st["json-cells"]
    assert len(re.findall(r'<td class="cell ', dom)) == n


@pytest.mark.slow
def test_click_shows_details(tmp_path) -> None:
    m = synthetic({("native", "seq"): Verdict.ERROR})
    page = tmp_path / "matrix.html"
    page.write_text(render(m, "html"), encoding="utf-8")
    dom, _ = dump_dom(page, tmp_path, "#cell=codegen-strict/kill-sleep")
    details = dom[dom.index('<div id="details"'):]
    assert 'data-shown="codegen-strict/kill-sleep"' in details
    assert "result: expected 3, got 4" in details
    assert "async def wf():" in details and "&lt;b&gt;" in details
    assert 'class="cell v-fail selected"' in dom
    dom, _ = dump_dom(page, tmp_path, "#cell=native/seq")
    assert "KeyError" in dom[dom.index('<div id="details"'):]
    dom, _ = dump_dom(page, tmp_path, "#cell=default/kill-sleep")
    assert "default cannot recover a run" in dom[dom.index('<div id="details"'):]


@pytest.mark.slow
def test_a_console_error_is_detected(tmp_path) -> None:
    """The check above can fail: a page that logs an error reports it."""
    html = render(synthetic(), "html").replace(
        "</body>", "<script>console.error('deliberate');</script></body>")
    page = tmp_path / "broken.html"
    page.write_text(html, encoding="utf-8")
    dom, stderr = dump_dom(page, tmp_path)
    assert status(dom)["console-errors"] == "1"
    assert any("deliberate" in line for line in console_errors(stderr))


@pytest.mark.slow
def test_real_matrix_page(tmp_path) -> None:
    """Real cells (2 scenarios x every engine) through build_matrix and the HTML renderer."""
    from engines import ENGINE_NAMES
    from harness.runner import RunPlan, run_matrix_cells
    from harness.session import build_matrix

    ids = ["wcp1-sequence", "branch-closure"]
    cells = run_matrix_cells(RunPlan(engines=list(ENGINE_NAMES), scenarios=ids, jobs=1))
    m = build_matrix(list(ENGINE_NAMES), ids, cells)
    page = tmp_path / "matrix.html"
    page.write_text(render(m, "html"), encoding="utf-8")
    dom, stderr = dump_dom(page, tmp_path, "#cell=codegen-strict/branch-closure")
    st = status(dom)
    assert st["console-errors"] == "0" and console_errors(stderr) == []
    assert st["cells"] == str(len(ENGINE_NAMES) * len(ids))
    details = dom[dom.index('<div id="details"'):]
    assert "branch-closure on codegen-strict: unsupported" in details
    assert "codegen-strict compiles only" in details  # the engine's own reason
