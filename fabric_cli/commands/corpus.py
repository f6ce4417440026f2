"""`fabric corpus` (being built; see docs/ARCHITECTURE.md)."""

from fabric_cli.commands._common import cli_errors
from fabric_cli.errors import FabricError


@cli_errors
def corpus() -> None:
    """Not built yet."""
    raise FabricError("'fabric corpus' is not built yet in this version")
