"""The `wfbench bench` click command (registered by harness/cli.py with `main.add_command(bench)`).

`wfbench bench [--quick] [--engine E ...] [--output DIR]` measures every local engine (or the
engines named; `--engine temporal` or `--engine all` adds the temporal column, on one Temporal
dev server for the session, as `wfbench matrix --engine all` does), the floors and the installed
peers on the bench workloads, prints the targets and the per-step table, and writes
DIR/bench.json, DIR/bench.md and DIR/bench.png. Missed targets never make it exit non-zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.bench import report, runner


def _check_engines(names: tuple[str, ...]) -> list[str] | None:
    """The engine columns of `--engine` values in the order given (`all` = every local engine,
    `default-mem` and temporal); None (every local column) when none is given."""
    if not names:
        return None
    known = runner.all_engine_columns()
    chosen: list[str] = []
    for n in names:
        if n == "all":
            chosen.extend(known)
        elif n in known:
            chosen.append(n)
        else:
            raise click.BadParameter(f"unknown engine {n!r}; choose from {', '.join(known)} "
                                     "or all", param_hint="--engine")
    return list(dict.fromkeys(chosen))


@click.command(name="bench")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer repeats (under 3 minutes).")
@click.option("--engine", "engines", multiple=True, metavar="E",
              help="Engine to measure (repeatable); `all` = every engine including temporal "
                   "(starts one Temporal dev server). Default: every local engine.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Directory for bench.json, bench.md and bench.png.")
@click.option("--no-peers", is_flag=True, help="Do not run the peer libraries (dbos, vercel-workflow).")
def bench(quick: bool, engines: tuple[str, ...], output: Path, no_peers: bool) -> None:
    """Time every engine against the floors (plain Python, one SQLite commit per step) and peers.

    Writes DIR/bench.json, DIR/bench.md and DIR/bench.png; missed targets are reported, never
    an error.

    \b
    Examples:
      wfbench bench --quick                       # every local engine, small sizes, < 3 minutes
      wfbench bench --quick --engine all --output /tmp/bench   # + temporal (dev server)
      wfbench bench --engine codegen --engine native --output /tmp/bench
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    plan = runner.QUICK if quick else runner.FULL
    names = _check_engines(engines)
    console = Console()
    n_cols = (len(names) if names is not None else len(runner.engine_columns())) + 3 + (
        0 if no_peers else len(runner.peers_mod.PEERS))
    total = len(plan.workloads()) * n_cols
    with Progress(TextColumn("[bold]bench[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                  transient=True) as progress:
        task = progress.add_task("", total=total)

        def on_cell(cell: Any) -> None:
            progress.advance(task)

        raw = runner.run_bench(plan, names, peers=[] if no_peers else None,
                               progress=lambda d: progress.update(task, description=d),
                               on_cell=on_cell)
    summary = report.summarize(raw)
    paths = report.write_reports(summary, output)
    print_summary(console, summary)
    console.print(f"wrote {paths['json']}, {paths['md']}, {paths['png']} "
                  f"({summary['elapsed_s']:.0f} s)")


def print_summary(console: Any, summary: dict[str, Any]) -> None:
    """Targets, then the per-step table of the largest chain and fan-out, on the terminal."""
    from rich.table import Table

    t = Table(title="targets (reported, never failing)")
    for h in ("", "target", "column", "value", "limit"):
        t.add_column(h)
    for tg in summary["targets"]:
        mark = {"met": "[green]met[/]", "missed": "[red]missed[/]"}.get(tg["status"], tg["status"])
        value = "–" if tg["value"] is None else f"{tg['value']:.2f} {tg['unit']}".strip()
        t.add_row(mark, tg["target"], tg["column"], value, f"{tg['limit']:g} {tg['unit']}".strip())
    console.print(t)
    for kind in ("chain", "fanout"):
        sizes = sorted({r["size"] for r in summary["results"] if r["kind"] == kind})
        if not sizes:
            continue
        table = Table(title=f"{kind}-{sizes[-1]}: per step, and ratios of medians")
        ratio_cols = [c["name"] for c in summary["columns"]
                      if c["kind"] in ("floor", "peer") and c["status"] == "ok"]
        for h in ["column", "us/step", "overhead us"] + [f"x {c}" for c in ratio_cols]:
            table.add_column(h, overflow="fold")
        for r in summary["results"]:
            if r["workload"] != f"{kind}-{sizes[-1]}":
                continue
            if "median_s" not in r:
                table.add_row(r["column"], r["status"], "", *[""] * len(ratio_cols))
                continue
            ratios = r.get("ratios", {})
            table.add_row(r["column"], report._fmt(r["per_unit_us"]), report._fmt(r.get("overhead_us")),
                          *[report._fmt(ratios.get(c), 2) for c in ratio_cols])
        console.print(table)
