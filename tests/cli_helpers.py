"""What the CLI tests share: a runner with a pinned width and no colour, and the check that a
failure is one clean line."""

from __future__ import annotations

from typer.testing import CliRunner

from fabric_cli.cli import app

runner = CliRunner()
PLAIN = {"COLUMNS": "100", "NO_COLOR": "1"}


def invoke(command: str, args: list[str], **kw):
    """Run `fabric COMMAND ARGS` in process; a traceback in the output is always a failure."""
    result = runner.invoke(app, [command, *args], env=PLAIN, **kw)
    assert "Traceback" not in result.output
    return result


def one_line_error(result) -> str:
    """The failure is exit 2 and a single `fabric: error:` line; returns that line."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("fabric: error:"), result.output
    return lines[0]
