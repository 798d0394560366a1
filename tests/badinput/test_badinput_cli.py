"""Bad input through the `wfbench` CLI (issue 7, item 3).

Every case: exactly one line on stderr, starting with "error:", naming what was wrong (the bad
value) and, where it applies, what to do; the documented exit code; no traceback (neither from
click nor from a logger) unless --debug; and nothing already recorded is lost (the database still
opens and the runs recorded before are unchanged).

Exit codes (harness/cli.py): 2 = bad input, nothing ran (arguments, JSON, files, targets, input
that violates the workflow's schema, a run that cannot be resumed, a --db file that is not a
wfbench database); 1 = it ran and failed (a run that fails, e.g. on a hook token in use; a
database that cannot be written: read-only, disk full).

Most cases run in-process with click's CliRunner (fast); the ones that need a process of their
own (disk full through RLIMIT_FSIZE, a lock held by another process, --debug, a real
traceback check) run `python -m harness.cli` as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import durable
from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
KEEP = ("keep-done", "keep-susp", "keep-failed")

GOOD = '''
from pydantic import BaseModel
from flow import create_step, create_workflow


class Num(BaseModel):
    value: int


inc = create_step(id="inc", input_schema=Num, output_schema=Num,
                  execute=lambda c: {"value": c.input_data["value"] + 1})
wf = create_workflow(id="good", input_schema=Num, output_schema=Num).then(inc).commit()
some_int = 42
uncommitted = create_workflow(id="unc", input_schema=Num, output_schema=Num).then(inc)
'''

HOOK = '''
from dataclasses import dataclass

from durable import BaseHook, Workflows

wf = Workflows()


@dataclass
class Approval(BaseHook):
    ok: bool = False


@wf.workflow
async def wait_fixed(input_data=None):
    payload = await Approval.wait(token="order-42")
    return {"ok": payload.ok}
'''

FILES = {
    "good.py": GOOD,
    "hook.py": HOOK,
    "syntax.py": "def broken(:\n",
    "raises.py": 'raise RuntimeError("config missing")\n',
    "empty.py": 'from flow import create_workflow\n\nwf = create_workflow(id="empty").commit()\n',
    "bad.json": '{"value": 1,,}',
}


# ---------------------------------------------------------------------------------------------
# fixtures


def _snapshot(db: Path) -> dict[str, Any]:
    world = durable.SqliteWorld(db)
    try:
        out = {}
        for rid in KEEP:
            rec = world.get_run(rid)
            out[rid] = (rec.status, json.dumps(rec.output, sort_keys=True),
                        len(world.list_events(rid)))
        return out
    finally:
        world.close()


def _populate(db: Path) -> None:
    """The runs every test expects to find intact, made by `wfbench run` in processes of their
    own (so no engine state of this process knows them)."""
    for rid, sid in zip(KEEP, ("wcp1-sequence", "hitl-suspend-resume", "err-step-fails"),
                        strict=True):
        p = wfbench(["run", "-e", "codegen", sid, "--run-id", rid, "--db", str(db)],
                    cwd=db.parent)
        assert p.returncode in (0, 1), p.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: Any) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("badinput-template") / "runs.db"
    _populate(db)
    snap = _snapshot(db)
    assert snap["keep-done"][0] == "completed" and snap["keep-susp"][0] == "running", snap
    return db, snap


@pytest.fixture
def ws(tmp_path: Path, template: tuple[Path, dict[str, Any]],
       monkeypatch: Any) -> Iterator[Workspace]:
    """A working directory with the target files and a copy of the populated database."""
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    db = tmp_path / "runs.db"
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(template[0]) + suffix)
        if src.exists():
            shutil.copy(src, str(db) + suffix)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WFBENCH_DB", str(tmp_path / "env-default.db"))
    monkeypatch.delenv("WFBENCH_DEBUG", raising=False)
    durable.set_world(None)
    yield Workspace(tmp_path, db, template[1])
    durable.set_world(None)


class Workspace:
    def __init__(self, path: Path, db: Path, snap: dict[str, Any]) -> None:
        self.path, self.db, self.snap = path, db, snap

    def intact(self, *, changed: tuple[str, ...] = (), db: Path | None = None) -> None:
        """The database still opens and the runs recorded before are unchanged."""
        now = _snapshot(db or self.db)
        for rid in KEEP:
            if rid not in changed:
                assert now[rid] == self.snap[rid], (rid, now[rid], self.snap[rid])


def cli(args: list[str], caplog: Any | None = None) -> Result:
    durable.set_world(None)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=True)
    finally:
        durable.set_world(None)
    if caplog is not None:
        tb = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
        assert not tb, f"a logger printed a traceback: {tb[0].getMessage()}"
    return result


def one_line_error(stderr: str, stdout: str, code: int, got: int, *needles: str) -> str:
    assert got == code, f"exit code {got}, expected {code}\nstdout: {stdout}\nstderr: {stderr}"
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("error:"), line
    for n in needles:
        assert n.lower() in line.lower(), f"{n!r} not in {line!r}"
    return line


def check(result: Result, code: int, *needles: str) -> str:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the CLI raised {result.exception!r}") from result.exception
    return one_line_error(result.stderr, result.stdout, code, result.exit_code, *needles)


# ---------------------------------------------------------------------------------------------
# command-line arguments, JSON, targets, schema: (args, exit code, words the line must contain)

DB = "@DB"  # replaced by the workspace's database

CASES: list[tuple[str, list[str], int, tuple[str, ...]]] = [
    ("unknown-scenario", ["run", "-e", "codegen", "nosuch", "--db", DB], 2,
     ("'nosuch'", "wfbench list")),
    ("misspelled-scenario", ["run", "-e", "codegen", "wcp1-sequense", "--db", DB], 2,
     ("wcp1-sequense", "wcp1-sequence")),
    ("unknown-engine", ["run", "-e", "nope", "wcp1-sequence", "--db", DB], 2,
     ("'nope'", "codegen")),
    ("missing-engine", ["run", "wcp1-sequence", "--db", DB], 2, ("--engine",)),
    ("unknown-command", ["frobnicate"], 2, ("frobnicate",)),
    ("unknown-option", ["run", "-e", "codegen", "wcp1-sequence", "--bogus"], 2, ("--bogus",)),
    ("missing-target", ["run", "-e", "codegen", "--db", DB], 2, ("target",)),
    ("matrix-unknown-format", ["matrix", "--format", "pdf"], 2, ("pdf",)),
    ("matrix-missing-baseline", ["matrix", "--check", "missing.json"], 2, ("missing.json",)),
    ("matrix-unknown-scenario", ["matrix", "-s", "nosuch", "-e", "default"], 2, ("nosuch",)),
    ("codegen-unknown-target", ["codegen", "nosuch"], 2, ("nosuch",)),
    ("runs-show-unknown-run", ["runs", "show", "no-such-run", "--db", DB], 2,
     ("no-such-run", "runs list")),
    ("input-malformed-json", ["run", "-e", "default", "wcp1-sequence", "--input", "{bad",
                              "--db", DB], 2, ("--input", "not valid json")),
    ("input-missing-file", ["run", "-e", "default", "wcp1-sequence", "--input", "@missing.json",
                            "--db", DB], 2, ("missing.json",)),
    ("input-file-bad-json", ["run", "-e", "default", "wcp1-sequence", "--input", "@bad.json",
                             "--db", DB], 2, ("bad.json", "not valid json")),
    ("input-empty", ["run", "-e", "default", "wcp1-sequence", "--input", "", "--db", DB], 2,
     ("--input",)),
    ("resume-data-malformed", ["resume", "-e", "codegen", "hitl-suspend-resume", "keep-susp",
                               "--data", "{bad", "--db", DB], 2, ("--data",)),
    ("schema-default", ["run", "-e", "default", "good.py:wf", "--input", '{"value": "x"}',
                        "--db", DB], 2, ("value", "integer")),
    ("schema-codegen", ["run", "-e", "codegen", "good.py:wf", "--input", '{"value": "x"}',
                        "--db", DB], 2, ("value", "integer")),
    ("schema-stepmode", ["run", "-e", "stepmode", "good.py:wf", "--input", '{"value": "x"}',
                         "--db", DB], 2, ("value", "integer")),
    ("schema-missing-field", ["run", "-e", "codegen", "good.py:wf", "--input", "{}",
                              "--db", DB], 2, ("value", "required")),
    ("module-not-importable", ["run", "-e", "default", "nosuchmod:wf", "--db", DB], 2,
     ("nosuchmod",)),
    ("file-syntax-error", ["run", "-e", "default", "syntax.py:wf", "--db", DB], 2,
     ("syntax.py", "line 1")),
    ("file-raises-on-import", ["run", "-e", "codegen", "raises.py:wf", "--db", DB], 2,
     ("raises.py", "config missing")),
    ("missing-attribute", ["run", "-e", "default", "good.py:nope", "--db", DB], 2,
     ("good.py:nope", "'nope'")),
    ("not-a-workflow", ["run", "-e", "default", "good.py:some_int", "--db", DB], 2,
     ("some_int",)),
    ("not-a-workflow-codegen", ["run", "-e", "codegen", "good.py:some_int", "--db", DB], 2,
     ("some_int",)),
    ("uncommitted-workflow", ["run", "-e", "codegen", "good.py:uncommitted", "--input",
                              '{"value": 1}', "--db", DB], 2, ("unc", "commit")),
    ("workflow-fails-to-commit", ["run", "-e", "default", "empty.py:wf", "--db", DB], 2,
     ("empty.py", "not defined")),
    ("missing-file", ["run", "-e", "default", "nofile.py:wf", "--db", DB], 2, ("nofile.py",)),
    ("file-without-attribute", ["run", "-e", "default", "good.py", "--db", DB], 2,
     ("good.py:",)),
    ("native-on-a-flow-workflow", ["run", "-e", "native", "good.py:wf", "--db", DB], 2,
     ("native", "good.py:wf")),
    ("strict-refuses-a-closure", ["run", "-e", "codegen-strict", "branch-closure",
                                  "--db", DB], 2, ("codegen-strict", "condition")),
    ("resume-unknown-run-codegen", ["resume", "-e", "codegen", "hitl-suspend-resume",
                                    "nosuchrun", "--step", "approve", "--data", "{}",
                                    "--db", DB], 2, ("'nosuchrun'", "runs list")),
    ("resume-unknown-run-default", ["resume", "-e", "default", "hitl-suspend-resume",
                                    "nosuchrun", "--step", "approve", "--data", "{}",
                                    "--db", DB], 2, ("'nosuchrun'", "runs list")),
    ("resume-finished-run", ["resume", "-e", "codegen", "wcp1-sequence", "keep-done",
                             "--db", DB], 2, ("keep-done", "already completed", "suspended")),
    ("resume-failed-run", ["resume", "-e", "codegen", "err-step-fails", "keep-failed",
                           "--db", DB], 2, ("keep-failed", "already failed", "suspended")),
    ("resume-unknown-step", ["resume", "-e", "codegen", "hitl-suspend-resume", "keep-susp",
                             "--step", "nosuchstep", "--data", "{}", "--db", DB], 2,
     ("nosuchstep", "approve")),
]


@pytest.mark.parametrize("name, args, code, needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(ws: Workspace, caplog: Any, name: str, args: list[str],
                                        code: int, needles: tuple[str, ...]) -> None:
    argv = [str(ws.db) if a == DB else a for a in args]
    check(cli(argv, caplog), code, *needles)
    ws.intact()


def test_resuming_twice(ws: Workspace, caplog: Any) -> None:
    first = cli(["resume", "-e", "codegen", "hitl-suspend-resume", "keep-susp", "--step",
                 "approve", "--data", '{"approved": true}', "--db", str(ws.db)])
    assert first.exit_code == 0, first.output
    again = cli(["resume", "-e", "codegen", "hitl-suspend-resume", "keep-susp", "--step",
                 "approve", "--data", '{"approved": true}', "--db", str(ws.db)], caplog)
    check(again, 2, "keep-susp", "already completed", "suspended")
    ws.intact(changed=("keep-susp",))
    assert _snapshot(ws.db)["keep-susp"][0] == "completed"


def test_a_hook_token_in_use_and_resuming_a_hook_twice(ws: Workspace, caplog: Any) -> None:
    db = str(ws.db)
    first = cli(["run", "-e", "native", "hook.py:wait_fixed", "--run-id", "h1", "--db", db])
    assert first.exit_code == 0 and "suspended" in first.stdout, first.output
    second = cli(["run", "-e", "native", "hook.py:wait_fixed", "--run-id", "h2", "--db", db],
                 caplog)
    check(second, 1, "order-42", "in use", "h1")
    resumed = cli(["resume", "-e", "native", "hook.py:wait_fixed", "h1", "--step", "order-42",
                   "--data", '{"ok": true}', "--db", db])
    assert resumed.exit_code == 0, resumed.output
    twice = cli(["resume", "-e", "native", "hook.py:wait_fixed", "h1", "--step", "order-42",
                 "--data", '{"ok": true}', "--db", db], caplog)
    check(twice, 2, "order-42")
    ws.intact()


# ---------------------------------------------------------------------------------------------
# databases


def _garbage(path: Path) -> bytes:
    data = b"this is not a database, just text long enough to look like a header" * 20
    path.write_bytes(data)
    return data


def _corrupt_copy(ws: Workspace) -> tuple[Path, bytes]:
    """A copy of the populated database with its pages after the first overwritten."""
    world = durable.SqliteWorld(ws.db)
    world.close()  # checkpoint the WAL into the file
    bad = ws.path / "corrupt.db"
    shutil.copy(ws.db, bad)
    with open(bad, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"\xff" * 8192)
    return bad, bad.read_bytes()


@pytest.mark.parametrize("cmd", [
    ["runs", "list"],
    ["run", "-e", "codegen", "wcp1-sequence"],
    ["run", "-e", "default", "wcp1-sequence"],
    ["worker", "--until-idle"],
], ids=["runs-list", "run-codegen", "run-default", "worker"])
def test_a_file_that_is_not_a_database(ws: Workspace, caplog: Any, cmd: list[str]) -> None:
    path = ws.path / "garbage.db"
    data = _garbage(path)
    check(cli([*cmd, "--db", str(path)], caplog), 2, "garbage.db", "not a")
    assert path.read_bytes() == data  # left as it was
    ws.intact()


@pytest.mark.parametrize("cmd", [["runs", "list"], ["run", "-e", "codegen", "wcp1-sequence"]],
                         ids=["runs-list", "run-codegen"])
def test_a_corrupt_database(ws: Workspace, caplog: Any, cmd: list[str]) -> None:
    bad, data = _corrupt_copy(ws)
    check(cli([*cmd, "--db", str(bad)], caplog), 2, "corrupt.db", "corrupt")
    assert bad.read_bytes() == data
    ws.intact()


def test_a_database_path_that_is_a_directory(ws: Workspace, caplog: Any) -> None:
    (ws.path / "dir.db").mkdir()
    check(cli(["run", "-e", "codegen", "wcp1-sequence", "--db", "dir.db"], caplog), 2,
          "dir.db", "directory")
    ws.intact()


@pytest.mark.parametrize("engine", ["codegen", "default"])
def test_a_sqlite_database_of_another_application(ws: Workspace, caplog: Any,
                                                  engine: str) -> None:
    other = ws.path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    con.execute("INSERT INTO invoices (total) VALUES (9.5)")
    con.commit()
    con.close()
    check(cli(["run", "-e", engine, "wcp1-sequence", "--db", str(other)], caplog), 2,
          "other.db", "not a wfbench")
    con = sqlite3.connect(other)
    tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    assert tables == ["invoices"]  # nothing of ours was written into it
    assert con.execute("SELECT total FROM invoices").fetchall() == [(9.5,)]
    con.close()
    ws.intact()


def _make_read_only(path: Path) -> bool:
    """Read-only for this process: chmod when not root; as root (chmod does not stop root) the
    ext4 immutable attribute. False when neither works here."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return True
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def _undo_read_only(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.chmod(0o644)


def test_a_read_only_database(ws: Workspace, caplog: Any) -> None:
    durable.SqliteWorld(ws.db).close()  # checkpoint: everything is in the main file
    for suffix in ("-wal", "-shm"):
        Path(str(ws.db) + suffix).unlink(missing_ok=True)
    if not _make_read_only(ws.db):
        pytest.skip("cannot make a file read-only for root here (no chattr +i on this fs)")
    try:
        listed = cli(["runs", "list", "--db", str(ws.db)])
        assert listed.exit_code == 0 and "keep-done" in listed.stdout, listed.output
        result = cli(["run", "-e", "codegen", "wcp1-sequence", "--db", str(ws.db)], caplog)
        check(result, 1, "runs.db", "read-only")
    finally:
        _undo_read_only(ws.db)
    ws.intact()


# ---------------------------------------------------------------------------------------------
# in a process of its own


def wfbench(args: list[str], *, cwd: Path, timeout: float = 60, preexec: Any = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), **(env or {}))
    full_env.pop("WFBENCH_DEBUG", None)
    try:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=str(cwd),
                              env=full_env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=preexec)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`wfbench {' '.join(args)}` did not finish within {timeout} s "
                             f"(hangs); stderr so far: {exc.stderr!r}") from None


def _full_disk(limit: int) -> Any:
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["codegen", "native"])
def test_a_full_disk(ws: Workspace, engine: str) -> None:
    """The database cannot grow past its size + 64 KiB (RLIMIT_FSIZE in the child: the same
    write errors as a full disk). A 1000-step run must fail with one line, not hang."""
    durable.SqliteWorld(ws.db).close()
    size = ws.db.stat().st_size
    p = wfbench(["run", "-e", engine, "scale-chain-1000", "--db", str(ws.db)], cwd=ws.path,
                preexec=_full_disk(size + 64 * 1024), timeout=30)
    one_line_error(p.stderr, p.stdout, 1, p.returncode, "runs.db", "full")
    ws.intact()
    con = sqlite3.connect(ws.db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()


@pytest.mark.slow
def test_a_database_locked_by_another_process_is_waited_for(ws: Workspace) -> None:
    """Another process holds the write lock for a moment: the command waits for it and
    succeeds; nothing is lost."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(1.5)\n"
        "c.execute('COMMIT')\n"), str(ws.db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        p = wfbench(["run", "-e", "codegen", "wcp1-sequence", "--run-id", "after-lock",
                     "--db", str(ws.db)], cwd=ws.path)
        waited = time.monotonic() - t0
    finally:
        holder.wait(timeout=30)
    assert p.returncode == 0, p.stderr
    assert "success" in p.stdout
    assert waited > 0  # (not a timing assertion: the run simply completed after the lock)
    ws.intact()
    assert _snapshot_run(ws.db, "after-lock") == "completed"


def _snapshot_run(db: Path, rid: str) -> str:
    world = durable.SqliteWorld(db)
    try:
        return world.get_run(rid).status
    finally:
        world.close()


@pytest.mark.slow
def test_in_a_real_process_no_traceback_and_debug_shows_it(ws: Workspace) -> None:
    p = wfbench(["run", "-e", "codegen", "raises.py:wf", "--db", str(ws.db)], cwd=ws.path)
    one_line_error(p.stderr, p.stdout, 2, p.returncode, "raises.py", "config missing")
    d = wfbench(["--debug", "run", "-e", "codegen", "raises.py:wf", "--db", str(ws.db)],
                cwd=ws.path)
    assert d.returncode != 0
    assert "Traceback" in d.stderr and "config missing" in d.stderr
    ws.intact()


def test_resuming_an_unknown_step_in_the_process_that_ran_the_run(tmp_path: Path) -> None:
    """The same bad input through the engine API, in the process that started the run (which
    still knows it) but from a second event loop (`asyncio.run` per call, as a script does):
    a clear error at once, not a hang."""
    from engines import get_engine
    from flow.errors import FlowError
    from scenarios import get_scenario

    world = durable.SqliteWorld(tmp_path / "runs.db")
    s = get_scenario("hitl-suspend-resume")
    eng = get_engine("codegen", world=world)
    first = asyncio.run(eng.run(s, input_data=s.fresh_input(), run_id="r1", target_ref=s.id))
    assert first.status == "suspended"

    async def resume() -> object:
        return await asyncio.wait_for(eng.resume(s, "r1", step="nosuchstep", resume_data={}), 10)

    with pytest.raises(FlowError, match="nosuchstep"):
        asyncio.run(resume())
