"""harness.bench: `wfbench bench` — engines, floors and peers timed on the same workloads.

Modules: `workloads` (the workloads and their flow / durable / plain forms), `floors` (plain
Python and one SQLite commit per step), `peers` (dbos, vercel-workflow, in subprocesses),
`runner` (plans, columns, measuring), `report` (figures, targets, JSON / Markdown / PNG) and
`command` (the click command `bench`; harness/cli.py registers it).
"""
