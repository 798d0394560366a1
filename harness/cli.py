"""The `wfbench` command line (click): one command per verb."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wfbench")
def main() -> None:
    """wfbench: run Mastra-syntax workflows on several engines and compare them.

    \b
    Examples:
      wfbench matrix                       # every scenario on every engine
      wfbench run --engine codegen seq     # one scenario on one engine
    """


if __name__ == "__main__":  # pragma: no cover
    main()
