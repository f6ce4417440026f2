"""`fabric narrate` (being built; see docs/ARCHITECTURE.md)."""

from fabric_cli.commands._common import cli_errors
from fabric_cli.errors import FabricError


@cli_errors
def narrate() -> None:
    """Not built yet."""
    raise FabricError("'fabric narrate' is not built yet in this version")
