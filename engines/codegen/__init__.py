"""The codegen engine: flow graphs compiled to Python source that runs on durable.

- `compiler`: the visitor (`generate_source`, `compile_workflow`, `CompiledWorkflow`,
  `CompileError`), with `writer` (`CodeWriter`, `literal`);
- `runtime`: what generated code calls (`FlowRun`) and the durable step bodies;
- `program`: a compiled workflow registered on durable (`program_for`);
- `engine`: `CodegenEngine` (engines `codegen` / `codegen-strict`), the Worker `loader`,
  `register_target_resolver`, `result_from_json`.
"""

from engines.codegen.compiler import CompileError, compile_workflow, generate_source
from engines.codegen.engine import (
    CodegenEngine,
    loader,
    register_target_resolver,
    resolve_target,
    result_from_json,
)

__all__ = [
    "CodegenEngine",
    "CompileError",
    "compile_workflow",
    "generate_source",
    "loader",
    "register_target_resolver",
    "resolve_target",
    "result_from_json",
]
