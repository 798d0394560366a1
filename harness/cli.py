"""The `wfbench` command line (click): one command per verb.

Exit codes: 0 success; 1 the run failed or was cancelled (or `matrix --check` found a worse
cell); 2 usage error (unknown engine/scenario/format, malformed JSON, missing file). Errors are
one line on stderr; `wfbench --debug ...` (or `WFBENCH_DEBUG=1`) shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageFailure(click.ClickException):
    """Bad input from the user: one line, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class RunFailure(click.ClickException):
    """The command ran and what it ran failed: one line, exit code 1."""

    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _debug(ctx: click.Context | None) -> bool:
    if os.environ.get("WFBENCH_DEBUG"):
        return True
    while ctx is not None:
        if ctx.meta.get("wfbench.debug"):
            return True
        ctx = ctx.parent
    return False


class _Group(click.Group):
    """Turns click's usage errors into one line (exit 2) and unexpected exceptions into one
    line (exit 1), unless --debug."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            self._main(args, prog_name, complete_var, **extra)
        except SystemExit as exc:
            exit_process(exc)
            raise

    def _main(self, args: Any, prog_name: str | None, complete_var: str | None,
              **extra: Any) -> None:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "wfbench"
            click.echo(f"error: {_one_line(exc.format_message())} (see {where} --help)",
                       err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_FAILED)
        except BrokenPipeError:  # `wfbench ... | head`: the reader left; say nothing more
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILED)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit,
                BrokenPipeError):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            usage = _usage_error(exc)
            if usage is not None:
                raise UsageFailure(usage) from None
            storage = _storage_error(exc)
            if storage is not None:
                raise RunFailure(storage) from None
            raise RunFailure(f"{type(exc).__name__}: {_one_line(str(exc))} "
                             "(run with --debug for the traceback)") from None


def exit_process(exc: SystemExit) -> None:
    """End a real `wfbench` process with `code` right away (no interpreter teardown) when it used
    a Temporal client: temporalio's Rust threads can crash the interpreter's finalization
    ("Fatal Python error: PyGILState_Release", temporalio/sdk-python#300), turning a finished
    command into exit -6/-11. Returns (the caller re-raises `exc`) otherwise, and always
    inside click's CliRunner (tests invoke commands in their own process)."""
    if "temporalio.client" not in sys.modules:
        return
    if "click.testing" in type(sys.stdout).__module__ or "click.testing" in \
            type(sys.stderr).__module__:
        return
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    try:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        cur = cur.__cause__ or cur.__context__ or getattr(cur, "cause", None)
    return out


def _storage_error(exc: BaseException) -> str | None:
    """One line for a database that cannot be written (read-only, disk full)."""
    db = os.environ.get("WFBENCH_DB") or ".wfbench/runs.db"
    for e in _causes(exc):
        text = str(e).lower()
        if "readonly" in text or "read-only" in text:
            return (f"cannot write to {db}: the database is read-only; make it writable or "
                    "pass another --db")
        if "disk is full" in text or "file too large" in text or "disk full" in text:
            return f"cannot write to {db}: database or disk is full; free space or pass another --db"
        if "disk i/o error" in text:
            return (f"cannot write to {db}: disk I/O error (is the disk full?); free space or "
                    "pass another --db")
    return None


def _usage_error(exc: Exception) -> str | None:
    """The message when `exc` is bad input from the user (unknown engine, bad target, ...)."""
    from harness.targets import BadTarget

    if isinstance(exc, BadTarget):
        return str(exc)
    try:
        from engines import EngineError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, EngineError):
        return str(exc)
    return None


class _QuietUnlessDebug(logging.Handler):
    """Keeps the runtime's log records off stderr (errors reach the user as one line); with
    --debug / WFBENCH_DEBUG they are printed."""

    def emit(self, record: logging.LogRecord) -> None:
        if os.environ.get("WFBENCH_DEBUG") or _DEBUG_FLAG:
            sys.stderr.write(self.format(record) + "\n")


_DEBUG_FLAG = False


def _install_log_handler() -> None:
    log = logging.getLogger("durable")
    if not any(isinstance(h, _QuietUnlessDebug) for h in log.handlers):
        log.addHandler(_QuietUnlessDebug())


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _DEBUG_FLAG
    _install_log_handler()
    _DEBUG_FLAG = bool(value)
    if value:
        ctx.meta["wfbench.debug"] = True
    return value


@click.group("wfbench", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wfbench")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show tracebacks instead of one-line errors.")
def main() -> None:
    """wfbench: run Mastra-syntax workflows on several engines and compare them.

    \b
    Examples:
      wfbench list                                 # scenarios and engines
      wfbench run --engine codegen wcp1-sequence   # one scenario on one engine
      wfbench matrix                               # every scenario x local engine -> reports/
      wfbench matrix --engine all                  # ... and temporal (starts a dev server)
    """


# ---------------------------------------------------------------------------------------------
# helpers


def _engine_names() -> tuple[str, ...]:
    from harness.runner import engine_names

    return engine_names()


def _local_engines() -> list[str]:
    """The engines `wfbench matrix` runs without --engine: those that need no server."""
    from harness.runner import local_engine_names

    local = local_engine_names()
    return [n for n in _engine_names() if n in local]


def _check_engine(name: str) -> str:
    names = _engine_names()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageFailure(f"unknown engine {name!r}{hint}; choose one of {', '.join(names)}")
    return name


_OUR_TABLES = {"runs", "events", "steps", "meta", "flow_runs", "flow_steps"}


def check_database(path: Path) -> None:
    """Refuse (exit 2, one line) a --db that is a directory, not SQLite, corrupt, or the SQLite
    database of another application, before anything opens it for writing."""
    import sqlite3

    if path.is_dir():
        raise UsageFailure(f"--db {path} is a directory; pass a file path")
    if not path.exists() or path.stat().st_size == 0:
        return  # a new database
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise UsageFailure(f"--db {path} cannot be opened ({exc}); pass another --db") from None
    try:
        try:
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise UsageFailure(f"--db {path} is not a database ({exc}); move it away or "
                               "pass another --db") from None
        if tables and not tables & _OUR_TABLES:
            some = ", ".join(sorted(tables)[:5])
            raise UsageFailure(f"--db {path} is not a wfbench database (it has tables {some}); "
                               "pass another --db")
        try:
            problems = [r[0] for r in con.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise UsageFailure(f"--db {path} is corrupt ({_one_line(problems[0])}); move it away "
                               "or pass another --db")
    finally:
        con.close()


def _use_db(db: str | None) -> None:
    """Point every engine and world of this process at the SQLite file `db` (checked first)."""
    path = Path(db) if db else Path(os.environ.get("WFBENCH_DB") or ".wfbench/runs.db")
    check_database(path)
    if db:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        os.environ["WFBENCH_DB"] = str(Path(db))
        from harness.runner import reset_process_worlds

        reset_process_worlds()  # a world opened earlier in this process is on another file


def _make_engine(name: str, **options: Any) -> Any:
    from harness.runner import default_engine_factory

    return default_engine_factory(_check_engine(name), **options)


def _temporal_options(engine: str, address: str | None, task_queue: str | None) -> dict[str, Any]:
    """`--temporal-address` / `--task-queue` as engine options; exit 2 when they are given for
    an engine other than temporal."""
    given = [f for f, v in (("--temporal-address", address), ("--task-queue", task_queue)) if v]
    if engine != "temporal":
        if given:
            raise UsageFailure(f"{given[0]} applies only to --engine temporal (got --engine "
                               f"{engine}); drop it or use --engine temporal")
        return {}
    if address is not None:
        _check_address(address, "--temporal-address")
    return {k: v for k, v in (("temporal_address", address), ("task_queue", task_queue)) if v}


def _check_address(address: str, option: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageFailure(f"{option} {address!r} is not HOST:PORT (e.g. 127.0.0.1:7233); "
                           "pass the Temporal frontend address")
    return address


TEMPORAL_ADDRESS_OPTION = click.option(
    "--temporal-address", default=None, metavar="HOST:PORT",
    help="--engine temporal: the Temporal server (default: $WFBENCH_TEMPORAL_ADDRESS, else a "
         "local dev server is started for this command).")
TASK_QUEUE_OPTION = click.option(
    "--task-queue", default=None, metavar="QUEUE",
    help="--engine temporal: the task queue (default: $WFBENCH_TEMPORAL_TASK_QUEUE or wfbench).")


def _parse_json(text: str | None, option: str) -> Any:
    """JSON from an option value; `@path` reads the file. Bad JSON -> exit 2 naming it."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise UsageFailure(f"{option}: no such file {text[1:]!r}")
        source = f"{option} {text}"
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageFailure(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}): {text[:60]!r}") from None


def _resolve(target: str) -> tuple[Any, str]:
    from harness.targets import resolve

    return resolve(target)


def _result_dict(result: Any) -> dict[str, Any]:
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"status": getattr(result, "status", None), "result": getattr(result, "result", None)}


def _report_result(result: Any, as_json: bool, engine: str, target: str,
                   hint_options: str = "") -> None:
    data = _result_dict(result)
    status = data.get("status")
    if as_json:
        click.echo(json.dumps(data, indent=2, default=repr))
    else:
        click.echo(f"run {data.get('run_id') or getattr(result, 'run_id', '?')}: {status}")
        if status == "success":
            click.echo(json.dumps(data.get("result"), indent=2, default=repr))
        elif status == "suspended":
            suspended = data.get("suspended") or []
            click.echo(f"suspended at: {json.dumps(suspended)}")
            run_id = data.get("run_id") or getattr(result, "run_id", "RUN_ID")
            paths = [p if isinstance(p, str) else ".".join(map(str, p)) for p in suspended]
            step = paths[0] if len(paths) == 1 else "STEP"
            click.echo(f"resume with: wfbench resume --engine {engine}{hint_options} {target} "
                       f"{run_id} --step {step} --data JSON")
    if status == "failed":
        err = data.get("error")
        if isinstance(err, dict):
            err = f"{err.get('name')}: {err.get('message')}"
        storage = _storage_error(Exception(str(err)))
        click.echo(f"error: {storage or 'the run failed: ' + _one_line(str(err))}", err=True)
    elif status in ("canceled", "cancelled"):
        click.echo("error: the run was cancelled", err=True)
    if status in ("failed", "canceled", "cancelled"):
        sys.exit(EXIT_FAILED)


def _check_target(engine: str, eng: Any, obj: Any, target: str) -> None:
    """Exit 2 (one line naming TARGET) when the engine cannot run this target at all."""
    from engines import Unsupported
    from flow import Workflow

    wf = obj if isinstance(obj, Workflow) else getattr(obj, "workflow", None)
    if engine != "native":
        if not isinstance(wf, Workflow):
            shown = f"{type(obj).__name__} {_one_line(repr(obj))[:60]}"
            raise UsageFailure(f"{target} is not a workflow (got {shown}); point TARGET at a "
                               "committed create_workflow(...).commit()")
        if not getattr(wf, "committed", True):
            raise UsageFailure(f"{target}: workflow {wf.id!r} is not committed; call .commit() "
                               "on it")
    from engines import EngineError

    try:
        eng.check(obj)
    except (Unsupported, EngineError) as exc:
        hint = " (use --engine default|codegen|stepmode)" if engine == "native" else ""
        raise UsageFailure(f"engine {engine!r} cannot run {target}: {_one_line(str(exc))}{hint}") \
            from None


def _schema_error(exc: BaseException, option: str, target: str, obj: Any) -> UsageFailure:
    issues = getattr(exc, "issues", None) or []
    detail = "; ".join(f"{path}: {msg}" if path else str(msg) for path, msg in issues) \
        or _one_line(str(exc))
    wf = getattr(obj, "workflow", obj)
    name = getattr(wf, "id", target)
    what = "input" if option == "--input" else "resume"
    return UsageFailure(f"{option} does not match the {what} schema of {name!r}: {detail}; "
                        f"fix the {what} data")


def _db_label() -> str:
    return os.environ.get("WFBENCH_DB") or ".wfbench/runs.db"


_ALREADY = {"success": "completed", "completed": "completed", "failed": "failed",
            "canceled": "been cancelled", "cancelled": "been cancelled"}


_TEMPORAL_STATUS = {"COMPLETED": "success", "FAILED": "failed", "TERMINATED": "failed",
                    "TIMED_OUT": "failed", "CANCELED": "canceled"}


async def _temporal_status(eng: Any, run_id: str) -> str | None:
    """The flow-level status of a Temporal run ("running" while open), None when there is none."""
    from temporalio.service import RPCError, RPCStatusCode

    client = await eng.client()
    try:
        desc = await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    name = getattr(desc.status, "name", "")
    return _TEMPORAL_STATUS.get(name, "running")


def _check_resumable(engine: str, eng: Any, obj: Any, run_id: str, step: str | None) -> None:
    """Exit 2 when RUN_ID does not exist or has already finished."""
    status: str | None = None
    if engine == "temporal":
        status = asyncio.run(_temporal_status(eng, run_id))
        if status is None:
            where = getattr(eng, "address", None) or "the Temporal server"
            raise UsageFailure(f"no run {run_id!r} on {where} (namespace "
                               f"{getattr(eng, 'namespace', 'default')!r}); pass the "
                               "--temporal-address the run was started on")
    elif engine in ("codegen", "codegen-strict", "native"):
        world = getattr(eng, "world", None) or _world(None)
        try:
            rec = world.get_run(run_id)
        except LookupError:
            rec = None
        if rec is None:
            raise UsageFailure(f"no run {run_id!r} in {_db_label()}; `wfbench runs list` "
                               "shows the runs")
        out = getattr(rec, "output", None)
        status = str(rec.status)
        if isinstance(out, dict) and out.get("status") in _ALREADY and status != "running":
            status = str(out["status"])
    else:
        store = getattr(eng, "store", None)
        if store is None or not hasattr(store, "list_runs"):
            return
        found = [st for _wf, rid, st in store.list_runs() if rid == run_id]
        if not found:
            raise UsageFailure(f"no run {run_id!r} in {_db_label()}; `wfbench runs list` "
                               "shows the runs")
        status = found[-1]
    if status in _ALREADY:
        waits = f" (nothing waits on {step!r} any more)" if step else ""
        raise UsageFailure(f"run {run_id!r} has already {_ALREADY[status]}; only a suspended "
                           f"run can be resumed{waits}")


# ---------------------------------------------------------------------------------------------
# list


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List the scenarios and the engines.

    \b
    Example:
      wfbench list
      wfbench list --json | jq '.scenarios[].id'
    """
    from tabulate import tabulate

    from harness.matrix import EngineInfo, ScenarioInfo
    from scenarios import all_scenarios

    scen = [ScenarioInfo.of(s) for s in all_scenarios()]
    engines = [EngineInfo.of(n) for n in _engine_names()]
    if as_json:
        click.echo(json.dumps({"engines": [e.to_dict() for e in engines],
                               "scenarios": [s.to_dict() for s in scen]}, indent=2))
        return
    click.echo(tabulate([[s.id, s.family, " ".join(s.wcp), s.title] for s in scen],
                        headers=["scenario", "family", "WCP", "title"]))
    click.echo("")
    click.echo(tabulate([[e.name, e.authored_as, e.executed_by] for e in engines],
                        headers=["engine", "authored as", "executed through"]))


# ---------------------------------------------------------------------------------------------
# run / resume


ENGINE_OPTION = click.option("--engine", "-e", required=True, metavar="ENGINE",
                             help="default | codegen | codegen-strict | stepmode | native | "
                                  "temporal")
DB_OPTION = click.option("--db", type=click.Path(dir_okay=False), default=None,
                         help="SQLite file for runs (default: $WFBENCH_DB or .wfbench/runs.db).")


@main.command("run")
@ENGINE_OPTION
@click.argument("target")
@click.option("--input", "input_text", metavar="JSON|@FILE",
              help="Input data as JSON, or @file.json (default: the scenario's input).")
@click.option("--run-id", default=None, help="Run id to use (default: generated).")
@DB_OPTION
@TEMPORAL_ADDRESS_OPTION
@TASK_QUEUE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def run_cmd(engine: str, target: str, input_text: str | None, run_id: str | None,
            db: str | None, temporal_address: str | None, task_queue: str | None,
            as_json: bool) -> None:
    """Run TARGET (a scenario id or path/to/file.py:attr) on one engine.

    Exit code 0 when the run succeeded or suspended, 1 when it failed or was cancelled.
    With --engine temporal a worker runs inside this command while it waits; without
    --temporal-address a local dev server is started for the run (and stopped at exit).

    \b
    Examples:
      wfbench run --engine codegen wcp1-sequence
      wfbench run --engine default ./my_flows.py:order_flow --input '{"order": 7}'
      wfbench run --engine native ./my_flows.py:renew --input @input.json --json
      wfbench run --engine temporal --temporal-address 127.0.0.1:7233 wcp21-dountil
    """
    _check_engine(engine)
    temporal = _temporal_options(engine, temporal_address, task_queue)
    input_data = _parse_json(input_text, "--input")
    _use_db(db)
    obj, kind = _resolve(target)
    extra: dict[str, Any] = {}
    if kind == "scenario":  # the scenario's calling conventions (scenarios.base)
        if input_data is None:
            input_data = obj.fresh_input()
        if engine == "native":
            extra["kwargs"] = {**obj.native_kwargs(), "input_data": input_data}
            input_data = None
        else:
            for name in ("initial_state", "request_context"):
                if getattr(obj, name, None) is not None:
                    extra[name] = dict(getattr(obj, name))
    eng = _make_engine(engine, **temporal)
    _check_target(engine, eng, obj, target)
    from flow import ValidationError
    from harness.targets import target_ref

    try:
        result = asyncio.run(eng.run(obj, input_data=input_data, run_id=run_id,
                                     target_ref=target_ref(target, kind), **extra))
    except ValidationError as exc:  # raised before anything ran
        raise _schema_error(exc, "--input", target, obj) from None
    _report_result(result, as_json, engine, target, _resume_hint_options(temporal, db))


def _resume_hint_options(temporal: dict[str, Any], db: str | None = None) -> str:
    """The options a printed `wfbench resume` command needs to reach the same run."""
    out = f" --db {db}" if db else ""
    if temporal.get("temporal_address"):
        out += f" --temporal-address {temporal['temporal_address']}"
    if temporal.get("task_queue"):
        out += f" --task-queue {temporal['task_queue']}"
    return out


@main.command("resume")
@ENGINE_OPTION
@click.argument("target")
@click.argument("run_id")
@click.option("--step", default=None, help="The suspended step to resume (a.b.c for nested).")
@click.option("--data", "data_text", metavar="JSON|@FILE", help="Resume data as JSON or @file.")
@DB_OPTION
@TEMPORAL_ADDRESS_OPTION
@TASK_QUEUE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def resume_cmd(engine: str, target: str, run_id: str, step: str | None, data_text: str | None,
               db: str | None, temporal_address: str | None, task_queue: str | None,
               as_json: bool) -> None:
    """Resume the suspended run RUN_ID of TARGET.

    With --engine temporal, pass the --temporal-address (and --task-queue) the run was
    started with.

    \b
    Example:
      wfbench run --engine codegen --db runs.db hitl-suspend-resume   # prints the run id
      wfbench resume --engine codegen --db runs.db hitl-suspend-resume RUN_ID \\
          --step approve --data '{"approved": true}'
      wfbench resume --engine temporal --temporal-address 127.0.0.1:7233 \\
          hitl-suspend-resume RUN_ID --step approve --data '{"approved": true}'
    """
    _check_engine(engine)
    temporal = _temporal_options(engine, temporal_address, task_queue)
    resume_data = _parse_json(data_text, "--data")
    _use_db(db)
    obj, kind = _resolve(target)
    eng = _make_engine(engine, **temporal)
    _check_target(engine, eng, obj, target)
    _check_resumable(engine, eng, obj, run_id, step)
    from flow import FlowError, ValidationError

    step_arg: Any = step.split(".") if step and "." in step else step
    try:
        if kind == "scenario" and engine == "native" and step:
            # a scenario's native definition waits on hook_token(run_id, step) for the payload
            # {"data": ...} (scenarios.natives.common); --step may be the step or the token
            from scenarios.drive import engine_resume

            path = step.removeprefix(f"{run_id}/")
            index = None
            if "#" in path:
                path, _, idx = path.rpartition("#")
                index = int(idx)
            arg = {"step": path.split(".") if "." in path else path,
                   "resume_data": resume_data, "for_each_index": index}
            result = asyncio.run(engine_resume(eng, obj, run_id, arg, native=True))
        else:
            result = asyncio.run(eng.resume(obj, run_id, step=step_arg, resume_data=resume_data))
    except ValidationError as exc:
        raise _schema_error(exc, "--data", target, obj) from None
    except (FlowError, LookupError) as exc:  # nothing to resume there (no such step or hook)
        raise UsageFailure(f"cannot resume run {run_id!r}: {_one_line(str(exc))}") from None
    _report_result(result, as_json, engine, target, _resume_hint_options(temporal, db))


# ---------------------------------------------------------------------------------------------
# codegen


CODEGEN_ENGINES = ("codegen", "codegen-strict", "temporal")


@main.command("codegen")
@click.argument("target")
@click.option("--engine", "-e", default="codegen", show_default=True, metavar="ENGINE",
              help="Which compiler: codegen (Python on durable), codegen-strict, or temporal "
                   "(a Temporal workflow module).")
@click.option("--strict", is_flag=True,
              help="Refuse closures (branch/loop conditions, dynamic sleep, map functions); "
                   "the same as --engine codegen-strict.")
@click.option("--color/--no-color", default=None, help="Highlight (default: on a terminal).")
def codegen_cmd(target: str, engine: str, strict: bool, color: bool | None) -> None:
    """Print the Python source a compiling engine makes of TARGET.

    \b
    Examples:
      wfbench codegen branch-closure
      wfbench codegen ./my_flows.py:order_flow --strict > order_flow_generated.py
      wfbench codegen --engine temporal wcp21-dountil   # the Temporal workflow module
    """
    from engines import Unsupported

    if engine not in CODEGEN_ENGINES:
        raise UsageFailure(f"--engine {engine!r} compiles nothing; choose one of "
                           f"{', '.join(CODEGEN_ENGINES)}")
    if strict and engine == "temporal":
        raise UsageFailure("--strict applies to the codegen compiler, not --engine temporal; "
                           "drop one of them")
    strict = strict or engine == "codegen-strict"
    obj, _ = _resolve(target)
    workflow = getattr(obj, "workflow", obj)
    if workflow is None:
        reason = getattr(obj, "workflow_reason", None) or "it has no Mastra-syntax definition"
        raise RunFailure(f"{target}: nothing to compile: {reason}")
    try:
        if engine == "temporal":
            source = _temporal_source(workflow)
        else:
            from engines.codegen.compiler import generate_source

            source = generate_source(workflow, strict=strict)
    except Unsupported as exc:
        label = "codegen-strict" if strict else engine
        raise RunFailure(f"{label} refuses {target}: {exc}") from None
    use_color = sys.stdout.isatty() if color is None else color
    if use_color:
        from rich.console import Console
        from rich.syntax import Syntax

        Console(force_terminal=True).print(Syntax(source, "python", line_numbers=False))
    else:
        click.echo(source, nl=not source.endswith("\n"))


def _temporal_source(workflow: Any) -> str:
    try:
        from engines.temporal.compiler import generate_temporal_source
    except ImportError as exc:
        raise UsageFailure(f"--engine temporal needs the temporalio package ({exc}); install it "
                           "with `pip install 'wfbench[temporal]'`") from None
    return str(generate_temporal_source(workflow))


# ---------------------------------------------------------------------------------------------
# worker / runs


def _world(db: str | None) -> Any:
    from durable import SqliteWorld

    return SqliteWorld(db) if db else SqliteWorld()


WORLD_ENGINES = ("codegen", "codegen-strict", "native")


@main.command("worker")
@click.option("--engine", "-e", default=None, metavar="ENGINE",
              help="codegen, codegen-strict or native (the default: runs in the --db "
                   "database), or temporal (runs on a Temporal server).")
@DB_OPTION
@click.option("--until-idle", is_flag=True, help="Exit when no run is due instead of waiting.")
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="Most runs this worker executes at once (default: the runtime's).")
@click.option("--lease", "lease", type=click.FloatRange(0.1), default=None, metavar="SECONDS",
              help="How long a claim on a run lasts without renewal (default: the runtime's).")
@click.option("--temporal-address", default=None, metavar="HOST:PORT",
              help="--engine temporal: the Temporal server to serve (default: "
                   "$WFBENCH_TEMPORAL_ADDRESS).")
@TASK_QUEUE_OPTION
@click.option("--target", "targets", multiple=True, metavar="REF",
              help="--engine temporal: a workflow (module:attr, file.py:attr or scenario id) to "
                   "compile up front (repeatable); others are compiled when a run needs them.")
def worker_cmd(engine: str | None, db: str | None, until_idle: bool, concurrency: int | None,
               lease: float | None, temporal_address: str | None, task_queue: str | None,
               targets: tuple[str, ...]) -> None:
    """Take due runs from the database and run them (recovers crashed runs).

    With --engine temporal: serve the runs of a Temporal server's task queue until stopped
    (SIGINT/SIGTERM); start one on each machine that should take a share of the work.

    \b
    Examples:
      wfbench worker --db runs.db --until-idle
      wfbench worker --db runs.db --concurrency 4 --lease 5     # one of several workers
      wfbench worker --engine temporal --temporal-address temporal.example:7233 \\
          --task-queue wfbench
    """
    if engine == "temporal":
        _temporal_worker(db, until_idle, concurrency, lease, temporal_address, task_queue,
                         targets)
        return
    if engine is not None and engine not in WORLD_ENGINES:
        _check_engine(engine)
        raise UsageFailure(f"engine {engine!r} keeps no runs a worker could take; use --engine "
                           f"{', '.join(WORLD_ENGINES)} or temporal")
    given = [f for f, v in (("--temporal-address", temporal_address),
                            ("--task-queue", task_queue), ("--target", targets)) if v]
    if given:
        raise UsageFailure(f"{given[0]} applies only to --engine temporal; drop it or add "
                           "--engine temporal")
    _use_db(db)
    import durable

    world = _world(db)
    options: dict[str, Any] = {}
    loader = _run_loader()
    if loader is not None:
        options["loader"] = loader
    if concurrency is not None:
        options["max_concurrent"] = concurrency
    if lease is not None:
        options["lease_seconds"] = lease
    worker = durable.Worker(world, **options)
    if hasattr(durable, "set_world"):
        durable.set_world(world)
    asyncio.run(worker.run(until_idle=until_idle))
    failed = [r for r in world.list_runs() if getattr(r, "status", None) == "failed"]
    click.echo(f"worker idle; {len(failed)} failed run(s) in {getattr(world, 'path', db)}")


def _temporal_worker(db: str | None, until_idle: bool, concurrency: int | None,
                     lease: float | None, address: str | None, task_queue: str | None,
                     targets: tuple[str, ...]) -> None:
    """`wfbench worker --engine temporal`: engines.temporal.worker.run_worker until stopped."""
    wrong = [f for f, v in (("--db", db), ("--until-idle", until_idle),
                            ("--concurrency", concurrency), ("--lease", lease)) if v]
    if wrong:
        raise UsageFailure(f"{wrong[0]} does not apply to --engine temporal (the Temporal "
                           "server keeps the runs); drop it")
    address = address or os.environ.get("WFBENCH_TEMPORAL_ADDRESS")
    if not address:
        raise UsageFailure("--engine temporal needs --temporal-address HOST:PORT (or "
                           "$WFBENCH_TEMPORAL_ADDRESS): the server whose runs to serve")
    _check_address(address, "--temporal-address")
    queue = task_queue or os.environ.get("WFBENCH_TEMPORAL_TASK_QUEUE") or "wfbench"
    from harness.targets import install_engine_resolver, target_ref

    install_engine_resolver()  # runs whose target is a scenario id or a file rebuild here
    refs = []
    for text in targets:
        _obj, kind = _resolve(text)  # exit 2 naming a bad --target before connecting
        refs.append(target_ref(text, kind) or text)
    try:
        from engines.temporal.worker import run_worker
    except ImportError as exc:
        raise UsageFailure(f"--engine temporal needs the temporalio package ({exc}); install it "
                           "with `pip install 'wfbench[temporal]'`") from None
    click.echo(f"temporal worker on {address}, task queue {queue!r} (Ctrl-C stops it)",
               err=True)
    try:
        asyncio.run(run_worker(address, queue, targets=refs))
    except RuntimeError as exc:
        if "connect" in str(exc).lower() or "connection" in str(exc).lower():
            raise UsageFailure(f"cannot connect to the Temporal server at {address!r} "
                               f"({_one_line(str(exc))}); check --temporal-address") from None
        raise
    click.echo("temporal worker stopped", err=True)


def _run_loader() -> Any:
    """The codegen loader that rebuilds a run's workflow in a fresh process (from the scenario
    id or file target stored on the run record)."""
    from harness.targets import install_engine_resolver

    install_engine_resolver()
    try:
        from engines.codegen.engine import loader
    except ImportError:  # pragma: no cover
        return None
    return loader


@main.group("runs", cls=_Group)
def runs_group() -> None:
    """Inspect runs stored in the database.

    \b
    Examples:
      wfbench runs list --db runs.db
      wfbench runs show --db runs.db RUN_ID
    """


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return value


@runs_group.command("list")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_list(db: str | None, as_json: bool) -> None:
    """List the runs in the database.

    \b
    Example:
      wfbench runs list --db runs.db
    """
    from tabulate import tabulate

    _use_db(db)
    runs = list(_world(db).list_runs())
    if as_json:
        click.echo(json.dumps([_plain(r) for r in runs], indent=2, default=str))
        return
    rows = [[r.run_id, r.workflow_name, r.status, _when(getattr(r, "created_at", ""))]
            for r in runs]
    click.echo(tabulate(rows, headers=["run", "workflow", "status", "created"]))


def _when(value: Any) -> str:
    """A run's timestamp for the table: epoch seconds as UTC ISO time, anything else as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


@runs_group.command("show")
@click.argument("run_id")
@DB_OPTION
def runs_show(run_id: str, db: str | None) -> None:
    """Show one run: its record, its steps and its event log (JSON).

    \b
    Example:
      wfbench runs show --db runs.db 0193a1b2-...
    """
    _use_db(db)
    world = _world(db)
    try:
        record = world.get_run(run_id)
    except LookupError:  # durable.RunNotFoundError
        record = None
    if record is None:
        raise UsageFailure(f"no run {run_id!r} in {getattr(world, 'path', db or 'the database')}; "
                           "`wfbench runs list` shows the runs")
    out = {"run": _plain(record),
           "steps": [_plain(s) for s in world.list_steps(run_id)],
           "events": [_plain(e) for e in world.list_events(run_id)]}
    click.echo(json.dumps(out, indent=2, default=str))


# ---------------------------------------------------------------------------------------------
# matrix


@main.command("matrix")
@click.option("--engine", "-e", "engines", multiple=True, metavar="ENGINE",
              help="Only this engine (repeatable); `all` = every engine. Default: the local "
                   "engines (default, codegen, codegen-strict, stepmode, native); `temporal` "
                   "starts one Temporal dev server for the session.")
@click.option("--scenario", "-s", "scenario_ids", multiple=True, metavar="SCENARIO",
              help="Only this scenario (repeatable). Default: all.")
@click.option("--format", "-f", "fmt", default="table", show_default=True,
              type=click.Choice(["table", "markdown", "json", "html", "junit"]),
              help="What to print on stdout.")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for matrix.md/.json/.html (default: reports/ for a run of every "
                   "scenario on every local engine, with or without temporal; a narrowed run "
                   "writes files only when --output is given).")
@click.option("--check", "baseline", type=click.Path(dir_okay=False), default=None,
              help="Baseline matrix.json: exit 1 naming every cell worse than it.")
@click.option("--exact", is_flag=True,
              help="With --check: also fail when any verdict changed at all or a cell was "
                   "added/removed (the baseline is stale; durations ignored).")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Worker processes.")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Seconds one cell may take before it is an error (temporal cells: at "
                   "least 180).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def matrix_cmd(engines: tuple[str, ...], scenario_ids: tuple[str, ...], fmt: str,
               output: str | None, baseline: str | None, exact: bool, jobs: int,
               timeout: float, no_progress: bool) -> None:
    """Run scenarios x engines and print/write the feature matrix.

    \b
    Examples:
      wfbench matrix                                   # local engines; writes reports/matrix.*
      wfbench matrix -e codegen -e default -s wcp1-sequence --format markdown
      wfbench matrix -e all --output build/            # + the temporal column (dev server)
      wfbench matrix --check reports/matrix.json       # CI: fail on any worse cell
      wfbench matrix --check reports/matrix.json --exact --output /tmp/m   # ... or any change
      wfbench matrix --format junit --output build/    # also writes build/matrix.xml
    """
    from harness.matrix import Matrix, changes, check_against
    from harness.render import render
    from harness.runner import RunPlan
    from harness.session import build_matrix, run_plan, temporal_server, write_reports

    base = None
    if exact and baseline is None:
        raise UsageFailure("--exact needs --check BASELINE")
    if baseline is not None:
        path = Path(baseline)
        if not path.is_file():
            raise UsageFailure(f"--check: no such baseline file {baseline!r}")
        try:
            base = Matrix.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError) as exc:
            raise UsageFailure(f"--check: {baseline} is not a wfbench matrix: {exc}") from None
    engine_list = _matrix_engines(engines)
    from harness.targets import get_scenario
    from harness.targets import scenario_ids as all_ids

    ids = list(scenario_ids) or all_ids()
    for sid in ids:
        get_scenario(sid)  # validates, naming an unknown id (exit 2)
    plan = RunPlan(engines=engine_list, scenarios=ids, jobs=jobs, timeout_s=timeout)
    with temporal_server(engine_list):
        cells = run_plan(plan, progress=not no_progress)
    matrix = build_matrix(engine_list, ids, cells)
    text = render(matrix, fmt)
    click.echo(text, nl=not text.endswith("\n"))
    # a run of every scenario on (at least) every local engine refreshes reports/
    narrowed = bool(scenario_ids) or not set(_local_engines()) <= set(engine_list)
    out_dir = Path(output) if output else (None if narrowed else Path("reports"))
    if out_dir is not None:
        written = write_reports(matrix, out_dir, junit=fmt == "junit")
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    if base is not None:
        worse = check_against(base, matrix)
        if worse:
            click.echo(f"{len(worse)} cell(s) worse than {baseline}:", err=True)
            for r in worse:
                click.echo(f"  {r}", err=True)
            sys.exit(EXIT_FAILED)
        click.echo(f"no cell is worse than {baseline}", err=True)
        if exact:
            changed = changes(base, matrix)
            if changed:
                click.echo(f"{baseline} is stale ({len(changed)} change(s)); regenerate it "
                           "with `wfbench matrix`:", err=True)
                for line in changed:
                    click.echo(f"  {line}", err=True)
                sys.exit(EXIT_FAILED)


def _matrix_engines(given: tuple[str, ...]) -> list[str]:
    """The --engine values of `wfbench matrix`, in the order of the engine list; `all` is every
    engine; none given: the local ones."""
    if not given:
        return _local_engines()
    chosen: list[str] = []
    for name in given:
        for e in (_engine_names() if name == "all" else (_check_engine(name),)):
            if e not in chosen:
                chosen.append(e)
    return chosen


# Commands owned by other parts of the harness (benchmarks, fault injection).
from harness.bench.command import bench  # noqa: E402
from harness.crashtest import crash_test  # noqa: E402

main.add_command(bench)
main.add_command(crash_test)


if __name__ == "__main__":  # pragma: no cover
    main()
