"""Resolving a command-line TARGET: a scenario id, `path/to/file.py:attr` or `package.module:attr`.

Owns the one-line errors for bad targets (`BadTarget`, a ValueError), which the CLI turns into
exit code 2.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class BadTarget(ValueError):
    """The TARGET names nothing that can be run; the message says what and what to do."""


def scenario_ids() -> list[str]:
    from scenarios import all_scenarios

    return [s.id for s in all_scenarios()]


def get_scenario(scenario_id: str) -> Any:
    """The scenario with this id, or `BadTarget` naming it and the closest known ids."""
    ids = scenario_ids()
    if scenario_id not in ids:
        close = difflib.get_close_matches(scenario_id, ids, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BadTarget(f"unknown scenario {scenario_id!r}{hint}; run `wfbench list` to see them")
    from scenarios import get_scenario as lookup

    return lookup(scenario_id)


def _looks_like_file_target(text: str) -> bool:
    path = text.rpartition(":")[0]
    return path.endswith(".py") or "/" in path or "\\" in path


def load_file_attr(path_text: str, attr: str) -> Any:
    path = Path(path_text)
    if not path.is_file():
        raise BadTarget(f"no such file {path_text!r} in target {path_text}:{attr}")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    mod_name = f"wfbench_target_{resolved.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(mod_name, resolved)
        if spec is None or spec.loader is None:
            raise BadTarget(f"cannot import {path_text!r}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        # the file's own directory is importable, as when running it as a script
        sys.path.insert(0, str(resolved.parent))
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(mod_name, None)
            raise BadTarget(f"cannot load target {path_text}:{attr}: SyntaxError: {exc.msg} "
                            f"({path.name}, line {exc.lineno}); fix {path_text}") from None
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            msg = "; ".join(p.strip() for p in str(exc).splitlines() if p.strip())
            raise BadTarget(f"cannot load target {path_text}:{attr}: {type(exc).__name__}: "
                            f"{msg}; fix {path_text}") from None
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
        finally:
            if sys.path and sys.path[0] == str(resolved.parent):
                sys.path.pop(0)
    return _get_attr(module, attr, f"{path_text}:{attr}")


def _get_attr(module: Any, attr: str, target: str) -> Any:
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise BadTarget(f"{target}: no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj


def resolve(target: str) -> tuple[Any, str]:
    """`(object, kind)` for a TARGET; kind is "scenario", "file" or "module"."""
    if ":" in target:
        left, _, attr = target.rpartition(":")
        if not left or not attr:
            raise BadTarget(f"bad target {target!r}: write path/to/file.py:attr or a scenario id")
        if _looks_like_file_target(target):
            return load_file_attr(left, attr), "file"
        try:
            module = importlib.import_module(left)
        except ImportError as exc:
            raise BadTarget(f"cannot import module {left!r} of target {target!r}: {exc}") from None
        return _get_attr(module, attr, target), "module"
    if target.endswith(".py"):
        raise BadTarget(f"target {target!r} names a file but no attribute; "
                        f"write {target}:<workflow variable>")
    return get_scenario(target), "scenario"


def engine_resolver(ref: str) -> Any:
    """For `engines.codegen.engine.register_target_resolver`: a scenario id or a
    `path/to/file.py:attr` target, or None when `ref` is neither (the engine then tries
    `module:attr` itself)."""
    if ":" in ref and _looks_like_file_target(ref):
        left, _, attr = ref.rpartition(":")
        try:
            return load_file_attr(left, attr)
        except BadTarget:
            return None
    if ":" in ref:
        return None
    try:
        if ref in scenario_ids():
            from scenarios import get_scenario as lookup

            return lookup(ref)
    except ImportError:
        return None
    return None


_installed = False


def install_engine_resolver() -> None:
    """Let a codegen worker in this process rebuild runs started from scenario ids or files."""
    global _installed
    if _installed:
        return
    try:
        from engines.codegen.engine import register_target_resolver
    except ImportError:
        return
    register_target_resolver(engine_resolver)
    _installed = True


def target_ref(target_text: str, kind: str) -> str | None:
    """How a run record names its target so another process can rebuild it."""
    if kind == "scenario":
        return target_text
    if kind == "file":
        left, _, attr = target_text.rpartition(":")
        return f"{Path(left).resolve()}:{attr}"
    return target_text
