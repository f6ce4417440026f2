"""`fabric scenarios`: the bundled scenarios, one line each."""

from __future__ import annotations

from rich import box
from rich.table import Table

from fabric_cli.analysis.rundir import step_text
from fabric_cli.commands._common import cli_errors, literal_text, stdout_console
from fabric_cli.errors import FabricError
from fabric_cli.scenario import DEFAULT_SCENARIO, bundled_scenarios, load_scenario, scenarios_dir
from fabric_cli.views.palette import BORDER, MUTED


def scenarios_table() -> Table:
    infos = bundled_scenarios()
    if not infos:
        raise FabricError(f"no bundled scenarios found in {scenarios_dir()}; reinstall fabric")
    table = Table(box=box.SIMPLE_HEAD, border_style=BORDER, header_style="bold", pad_edge=False)
    table.add_column("scenario", no_wrap=True)
    table.add_column("what it is", ratio=1)
    table.add_column("model", no_wrap=True, style=MUTED)
    table.add_column("steps", justify="right", no_wrap=True, style=MUTED)
    for info in infos:
        name = literal_text(info.name, style="bold")
        if info.name == DEFAULT_SCENARIO:
            name.append(" (default)", style=MUTED)
        try:
            scenario = load_scenario(str(info.path))
        except FabricError:
            table.add_row(name, literal_text(info.description, style="red"), "-", "-")
            continue
        m = scenario.model
        shape = f"{m.n_layers}L × {m.n_heads}H, d={m.d_model}"
        table.add_row(name, literal_text(info.description), shape, step_text(scenario.training.steps))
    return table


@cli_errors
def scenarios() -> None:
    """List the bundled scenarios, one experiment each.

    Use one with `fabric train --scenario NAME` or `fabric corpus --scenario NAME`; a path to
    your own .toml file works wherever a name does.

    \b
    Examples:
      fabric scenarios
      fabric train --scenario tiny
      fabric corpus --scenario tiny -n 3
    """
    console = stdout_console()
    console.print(scenarios_table())
    console.print(
        literal_text(
            "Train one: fabric train --scenario NAME.  See its sentences: fabric corpus "
            "--scenario NAME.  Your own: copy a file from " + str(scenarios_dir()),
            style=MUTED,
        )
    )
