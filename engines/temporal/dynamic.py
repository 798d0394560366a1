"""The dynamic Temporal workflow: serves any wfbench workflow type this worker did not register.

A standalone worker (`engines.temporal.worker.run_worker`) cannot know in advance which graphs its
clients compile, so it registers this class for every unknown workflow type. It rebuilds the
program from the target reference in the run's parameters (`engines.temporal.compiler.load_program`:
the same generated module, names and ids) and runs that module's workflow function, with the same
signal, update and queries as the generated `FlowWorkflow` classes.

It runs outside Temporal's sandbox: rebuilding a program imports the user's module, which must be
a normal import (inside the sandbox it would get the sandbox's restricted stdlib proxies). The code
it runs is the generated workflow code, deterministic by construction (every value it uses comes
from an activity result, the run's parameters or a signal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from engines.temporal.runtime import ABANDON, FlowWorkflowBase, load_for_workflow


@workflow.defn(dynamic=True, sandboxed=False)
class AnyFlowWorkflow(FlowWorkflowBase):
    """Runs the generated module of whatever wfbench workflow type the task names."""

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        params = workflow.payload_converter().from_payload(args[0].payload, dict)
        type_name = workflow.info().workflow_type
        program = load_for_workflow(type_name, params)
        return await self.execute(params, type_name, program.entry, program.module.ACTIVITIES)

    @workflow.signal(name="resume")
    def resume(self, token: str, resume_data: Any = None) -> None:
        self.on_resume(token, resume_data)

    @workflow.update(name="settle", unfinished_policy=ABANDON)
    async def settle_update(self, pending: str | None = None) -> dict:
        return await self.settle(pending)

    @workflow.query(name="waiting")
    def waiting_query(self) -> dict:
        return self.waiting()

    @workflow.query(name="suspension")
    def suspension_query(self) -> dict:
        return self.suspension()

    @workflow.query(name="outputs")
    def outputs_query(self, scope: list) -> dict:
        return self.outputs(scope)

    @workflow.query(name="result")
    def result_query(self) -> dict:
        return self.current()
