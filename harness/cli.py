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
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
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
      wfbench matrix                               # every scenario x engine -> reports/
    """


# ---------------------------------------------------------------------------------------------
# helpers


def _engine_names() -> tuple[str, ...]:
    from engines import ENGINE_NAMES

    return tuple(ENGINE_NAMES)


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


def _make_engine(name: str) -> Any:
    from harness.runner import default_engine_factory

    return default_engine_factory(_check_engine(name))


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


def _report_result(result: Any, as_json: bool, engine: str, target: str) -> None:
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
            click.echo(f"resume with: wfbench resume --engine {engine} {target} {run_id} "
                       f"--step {step} --data JSON")
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


def _check_resumable(engine: str, eng: Any, obj: Any, run_id: str, step: str | None) -> None:
    """Exit 2 when RUN_ID does not exist or has already finished."""
    status: str | None = None
    if engine in ("codegen", "codegen-strict", "native"):
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
                             help="default | codegen | codegen-strict | stepmode | native")
DB_OPTION = click.option("--db", type=click.Path(dir_okay=False), default=None,
                         help="SQLite file for runs (default: $WFBENCH_DB or .wfbench/runs.db).")


@main.command("run")
@ENGINE_OPTION
@click.argument("target")
@click.option("--input", "input_text", metavar="JSON|@FILE",
              help="Input data as JSON, or @file.json (default: the scenario's input).")
@click.option("--run-id", default=None, help="Run id to use (default: generated).")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def run_cmd(engine: str, target: str, input_text: str | None, run_id: str | None,
            db: str | None, as_json: bool) -> None:
    """Run TARGET (a scenario id or path/to/file.py:attr) on one engine.

    Exit code 0 when the run succeeded or suspended, 1 when it failed or was cancelled.

    \b
    Examples:
      wfbench run --engine codegen wcp1-sequence
      wfbench run --engine default ./my_flows.py:order_flow --input '{"order": 7}'
      wfbench run --engine native ./my_flows.py:renew --input @input.json --json
    """
    _check_engine(engine)
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
    eng = _make_engine(engine)
    _check_target(engine, eng, obj, target)
    from flow import ValidationError
    from harness.targets import target_ref

    try:
        result = asyncio.run(eng.run(obj, input_data=input_data, run_id=run_id,
                                     target_ref=target_ref(target, kind), **extra))
    except ValidationError as exc:  # raised before anything ran
        raise _schema_error(exc, "--input", target, obj) from None
    _report_result(result, as_json, engine, target)


@main.command("resume")
@ENGINE_OPTION
@click.argument("target")
@click.argument("run_id")
@click.option("--step", default=None, help="The suspended step to resume (a.b.c for nested).")
@click.option("--data", "data_text", metavar="JSON|@FILE", help="Resume data as JSON or @file.")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def resume_cmd(engine: str, target: str, run_id: str, step: str | None, data_text: str | None,
               db: str | None, as_json: bool) -> None:
    """Resume the suspended run RUN_ID of TARGET.

    \b
    Example:
      wfbench run --engine codegen --db runs.db hitl-suspend-resume   # prints the run id
      wfbench resume --engine codegen --db runs.db hitl-suspend-resume RUN_ID \\
          --step review --data '{"approved": true}'
    """
    _check_engine(engine)
    resume_data = _parse_json(data_text, "--data")
    _use_db(db)
    obj, kind = _resolve(target)
    eng = _make_engine(engine)
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
    _report_result(result, as_json, engine, target)


# ---------------------------------------------------------------------------------------------
# codegen


@main.command("codegen")
@click.argument("target")
@click.option("--strict", is_flag=True,
              help="Refuse closures (branch/loop conditions, dynamic sleep, map functions).")
@click.option("--color/--no-color", default=None, help="Highlight (default: on a terminal).")
def codegen_cmd(target: str, strict: bool, color: bool | None) -> None:
    """Print the Python source the codegen engine compiles TARGET to.

    \b
    Examples:
      wfbench codegen branch-closure
      wfbench codegen ./my_flows.py:order_flow --strict > order_flow_generated.py
    """
    from engines import Unsupported
    from engines.codegen.compiler import generate_source

    obj, _ = _resolve(target)
    workflow = getattr(obj, "workflow", obj)
    if workflow is None:
        reason = getattr(obj, "workflow_reason", None) or "it has no Mastra-syntax definition"
        raise RunFailure(f"{target}: nothing to compile: {reason}")
    try:
        source = generate_source(workflow, strict=strict)
    except Unsupported as exc:
        raise RunFailure(f"codegen-strict refuses {target}: {exc}") from None
    use_color = sys.stdout.isatty() if color is None else color
    if use_color:
        from rich.console import Console
        from rich.syntax import Syntax

        Console(force_terminal=True).print(Syntax(source, "python", line_numbers=False))
    else:
        click.echo(source, nl=not source.endswith("\n"))


# ---------------------------------------------------------------------------------------------
# worker / runs


def _world(db: str | None) -> Any:
    from durable import SqliteWorld

    return SqliteWorld(db) if db else SqliteWorld()


@main.command("worker")
@DB_OPTION
@click.option("--until-idle", is_flag=True, help="Exit when no run is due instead of waiting.")
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="Most runs this worker executes at once (default: the runtime's).")
@click.option("--lease", "lease", type=click.FloatRange(0.1), default=None, metavar="SECONDS",
              help="How long a claim on a run lasts without renewal (default: the runtime's).")
def worker_cmd(db: str | None, until_idle: bool, concurrency: int | None,
               lease: float | None) -> None:
    """Take due runs from the database and run them (recovers crashed runs).

    \b
    Examples:
      wfbench worker --db runs.db --until-idle
      wfbench worker --db runs.db --concurrency 4 --lease 5     # one of several workers
    """
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
    rows = [[r.run_id, r.workflow_name, r.status, getattr(r, "created_at", "")] for r in runs]
    click.echo(tabulate(rows, headers=["run", "workflow", "status", "created"]))


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
              help="Only this engine (repeatable). Default: all.")
@click.option("--scenario", "-s", "scenario_ids", multiple=True, metavar="SCENARIO",
              help="Only this scenario (repeatable). Default: all.")
@click.option("--format", "-f", "fmt", default="table", show_default=True,
              type=click.Choice(["table", "markdown", "json", "html", "junit"]),
              help="What to print on stdout.")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for matrix.md/.json/.html (default: reports/ for a full run; a "
                   "narrowed run writes files only when --output is given).")
@click.option("--check", "baseline", type=click.Path(dir_okay=False), default=None,
              help="Baseline matrix.json: exit 1 naming every cell worse than it.")
@click.option("--exact", is_flag=True,
              help="With --check: also fail when any verdict changed at all or a cell was "
                   "added/removed (the baseline is stale; durations ignored).")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Worker processes.")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Seconds one cell may take before it is an error.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def matrix_cmd(engines: tuple[str, ...], scenario_ids: tuple[str, ...], fmt: str,
               output: str | None, baseline: str | None, exact: bool, jobs: int,
               timeout: float, no_progress: bool) -> None:
    """Run scenarios x engines and print/write the feature matrix.

    \b
    Examples:
      wfbench matrix                                   # all; writes reports/matrix.{md,json,html}
      wfbench matrix -e codegen -e default -s wcp1-sequence --format markdown
      wfbench matrix --check reports/matrix.json       # CI: fail on any worse cell
      wfbench matrix --check reports/matrix.json --exact --output /tmp/m   # ... or any change
      wfbench matrix --format junit --output build/    # also writes build/matrix.xml
    """
    from harness.matrix import Matrix, changes, check_against
    from harness.render import render
    from harness.runner import RunPlan
    from harness.session import build_matrix, run_plan, write_reports

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
    engine_list = [_check_engine(e) for e in engines] or list(_engine_names())
    from harness.targets import get_scenario
    from harness.targets import scenario_ids as all_ids

    ids = list(scenario_ids) or all_ids()
    for sid in ids:
        get_scenario(sid)  # validates, naming an unknown id (exit 2)
    plan = RunPlan(engines=engine_list, scenarios=ids, jobs=jobs, timeout_s=timeout)
    cells = run_plan(plan, progress=not no_progress)
    matrix = build_matrix(engine_list, ids, cells)
    text = render(matrix, fmt)
    click.echo(text, nl=not text.endswith("\n"))
    narrowed = bool(engines or scenario_ids)
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


# Commands owned by other parts of the harness (benchmarks, fault injection).
from harness.bench.command import bench  # noqa: E402
from harness.crashtest import crash_test  # noqa: E402

main.add_command(bench)
main.add_command(crash_test)


if __name__ == "__main__":  # pragma: no cover
    main()
