"""The package installs, its packages import, and the CLI answers --help."""

from click.testing import CliRunner

from harness.cli import main


def test_packages_import() -> None:
    import durable  # noqa: F401
    import engines  # noqa: F401
    import flow  # noqa: F401
    import harness  # noqa: F401
    import scenarios  # noqa: F401


def test_cli_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "wfbench" in result.output
