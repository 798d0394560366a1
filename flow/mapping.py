"""`Workflow.map({...})` mapping objects: spec helpers, normalisation and resolution.

A mapping key is a `MappingSpec` (see `flow.step`) built with `map_value`, `map_step`,
`map_init`, `map_request_context`, `map_fn`, or given in Mastra spelling as a plain dict
(`{"value": v}`, `{"step": s, "path": p}`, `{"init_data": wf, "path": p}`,
`{"request_context_path": k}`, `{"fn": f}`). `resolve_mapping_spec` and `walk_path` carry the exact
semantics and error messages (reference 1.4 "map forms") so engines can reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flow.errors import FlowError
from flow.step import MappingSpec

if TYPE_CHECKING:
    from flow.context import StepContext


def map_value(value: Any, schema: Any = None) -> MappingSpec:
    """A constant."""
    return MappingSpec(value=value, has_value=True, schema=schema)


def map_step(step: Any, path: str = ".", schema: Any = None) -> MappingSpec:
    """From a step's output (a step, a step id, or a list of them: the first with a result)."""
    return MappingSpec(step=step, path=path, schema=schema)


def map_init(path: str = ".", schema: Any = None) -> MappingSpec:
    """From the workflow input (`get_init_data()`)."""
    return MappingSpec(init_data=True, path=path, schema=schema)


def map_request_context(key: str, schema: Any = None) -> MappingSpec:
    """`ctx.request_context.get(key)` (a key lookup, not a dotted path)."""
    return MappingSpec(request_context_path=key, schema=schema)


def map_fn(fn: Callable[..., Any], schema: Any = None) -> MappingSpec:
    """A dynamic value: `fn(ctx)` (sync or async) with the full step context."""
    return MappingSpec(fn=fn, schema=schema)


_KNOWN_KEYS = {"value", "step", "path", "init_data", "initData", "request_context_path",
               "requestContextPath", "fn", "schema"}


def normalise_spec(key: str, spec: Any) -> MappingSpec:
    """A `MappingSpec` from a `MappingSpec` or a Mastra-spelled dict; error names the bad key."""
    if isinstance(spec, MappingSpec):
        return spec
    if not isinstance(spec, Mapping):
        raise FlowError(
            f"map(): mapping key {key!r} must be a MappingSpec or a dict like "
            f"{{'value': v}} / {{'step': s, 'path': p}}, got {type(spec).__name__} {spec!r}"
        )
    unknown = set(spec) - _KNOWN_KEYS
    if unknown:
        raise FlowError(f"map(): mapping key {key!r} has unknown field(s) {sorted(unknown)}")
    schema = spec.get("schema")
    path = spec.get("path", ".")
    if "value" in spec:
        return map_value(spec["value"], schema)
    if "fn" in spec:
        fn = spec["fn"]
        if not callable(fn):
            raise FlowError(f"map(): mapping key {key!r}: 'fn' must be callable, got {fn!r}")
        return map_fn(fn, schema)
    rc = spec.get("request_context_path", spec.get("requestContextPath"))
    if rc is not None:
        return map_request_context(str(rc), schema)
    if "init_data" in spec or "initData" in spec:
        return map_init(path, schema)
    if "step" in spec:
        return map_step(spec["step"], path, schema)
    raise FlowError(
        f"map(): mapping key {key!r} needs one of 'value', 'step', 'init_data', "
        f"'request_context_path' or 'fn', got {dict(spec)!r}"
    )


def normalise_mapping(config: Mapping[str, Any]) -> dict[str, MappingSpec]:
    """Normalise every key of a mapping object (insertion order kept)."""
    return {str(k): normalise_spec(str(k), v) for k, v in config.items()}


def step_ref_id(step: Any) -> str:
    """The id of a step reference (a step/workflow object or an id string)."""
    if isinstance(step, str):
        return step
    sid = getattr(step, "id", None)
    if not isinstance(sid, str):
        raise FlowError(f"map(): expected a step or a step id, got {step!r}")
    return sid


def js_truthy(value: Any) -> bool:
    """Truthiness as in JavaScript: None, False, 0 and "" are false; {} and [] are true."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    return True


def walk_path(value: Any, path: str, where: str) -> Any:
    """Walk a dotted `path` into `value` ('.' = whole value).

    A hop into something that is not a dict (or an object with that attribute) raises
    `FlowError("Invalid path <path> in step <where>")`.
    """
    if path == ".":
        return value
    current = value
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                raise FlowError(f"Invalid path {path} in step {where}")
            current = current[part]
        elif current is not None and not isinstance(current, str | int | float | bool | list) \
                and hasattr(current, part):
            current = getattr(current, part)
        else:
            raise FlowError(f"Invalid path {path} in step {where}")
    return current


def resolve_mapping_spec(spec: MappingSpec, ctx: StepContext) -> Any:
    """Resolve one non-`fn` spec against a step context (sync)."""
    if spec.has_value:
        return spec.value
    if spec.fn is not None:
        raise FlowError("resolve_mapping_spec: a 'fn' spec must be called (it may be async)")
    if spec.request_context_path is not None:
        return ctx.request_context.get(spec.request_context_path)
    if spec.init_data:
        return walk_path(ctx.get_init_data(), spec.path, "initData")
    if spec.step is not None:
        refs = spec.step if isinstance(spec.step, list | tuple) else [spec.step]
        ids = [step_ref_id(s) for s in refs]
        found: Any = None
        found_id = ids[0] if ids else "?"
        for sid in ids:
            out = ctx.get_step_result(sid)
            if js_truthy(out):
                found, found_id = out, sid
                break
        return walk_path(found, spec.path, found_id)
    raise FlowError("resolve_mapping_spec: empty mapping spec")
