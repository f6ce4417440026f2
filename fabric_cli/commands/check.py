"""`fabric check` (being built; see docs/ARCHITECTURE.md)."""

from fabric_cli.commands._common import cli_errors
from fabric_cli.errors import FabricError


@cli_errors
def check() -> None:
    """Not built yet."""
    raise FabricError("'fabric check' is not built yet in this version")
