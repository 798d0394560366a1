"""Profile one bench cell with pyinstrument: `python -m harness.bench.profile ENGINE KIND-SIZE`.

A developer tool (pyinstrument is not a wfbench dependency: `pip install pyinstrument`). Runs
the cell once untimed, then `--runs` times under the profiler, and prints the call tree (or
writes it with `--output FILE`, `.html` for the interactive view).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from harness.bench.runner import EngineColumn, engine_columns
from harness.bench.workloads import parse_workload


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.profile")
    ap.add_argument("engine", choices=engine_columns())
    ap.add_argument("workload", help="KIND-SIZE, e.g. chain-1000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--interval", type=float, default=0.0005)
    args = ap.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        ap.error("pyinstrument is not installed: pip install pyinstrument")
    w = parse_workload(args.workload)
    with tempfile.TemporaryDirectory(prefix="wfbench-profile-") as tmp:
        col = EngineColumn(args.engine, Path(tmp))
        col.check(w)

        async def go() -> str:
            await col.run(w)
            profiler = Profiler(interval=args.interval, async_mode="enabled")
            with profiler:
                for _ in range(args.runs):
                    await col.run(w)
            if args.output and args.output.suffix == ".html":
                return str(profiler.output_html())
            return str(profiler.output_text(unicode=False, color=False, show_all=False))

        try:
            text = asyncio.run(go())
        finally:
            col.close()
    if args.output:
        args.output.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
