"""Lessons for `fabric why COMPONENT`: a scenario with the component, and its twin without.

A lesson is a scenario file under scenarios/lessons/ with one extra table:

    [lesson]
    component = "residual"                       # who speaks of its absence
    without = { "model.residual" = false, description = "..." }   # what the twin changes

The file without its [lesson] table is the run *with* the component; the same file with the
`without` settings applied is its twin. Both are checked like any scenario.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

from fabric_cli.errors import FabricError
from fabric_cli.language import schema
from fabric_cli.scenario import Scenario, load_data, parse_scenario, scenarios_dir

LESSONS = ("residual", "layernorm", "clipping", "adam", "dropout")


@dataclass(frozen=True)
class Lesson:
    name: str  # residual, layernorm, clipping, adam, dropout
    component: str  # the voice that speaks (clipping -> engineers)
    with_scenario: Scenario
    without_scenario: Scenario
    changes: dict  # "table.key" (or "description") -> value, what the twin changes


def lessons_dir() -> Path:
    """Lesson files: scenarios/lessons/<name>.toml (each may name a `base` scenario)."""
    return scenarios_dir() / "lessons"


def load_lesson(name: str) -> Lesson:
    if name not in LESSONS:
        raise FabricError(f"unknown component {name!r} for `fabric why`; choose one of: "
                          f"{', '.join(LESSONS)}")
    path = lessons_dir() / f"{name}.toml"
    source = f"lessons/{path.name}"
    data, text = load_data(path, source)
    lesson = schema.get_table(data, "lesson", source)
    schema.check_keys(lesson, source, "lesson", ("component", "without"), ("component", "without"))
    component = schema.get_str(lesson, "component", source, "lesson")
    changes = schema.get_table(lesson, "without", source, "lesson")
    base = {k: v for k, v in data.items() if k != "lesson"}
    twin = copy.deepcopy(base)
    for dotted, value in changes.items():
        table, _, key = dotted.partition(".")
        if dotted == "description":
            twin["description"] = value
            continue
        if table not in ("model", "training", "probes") or not key:
            raise FabricError(f"{source}: lesson.without.{dotted}: expected description, a "
                              "model.*, training.* or probes.* setting")
        twin.setdefault(table, {})[key] = value
    with_sc = parse_scenario(base, source, path, text)
    without_sc = parse_scenario(twin, f"{source} (lesson.without)", path, text)
    return Lesson(
        name=name, component=component,
        with_scenario=replace(with_sc, name=f"why-{name}-with"),
        without_scenario=replace(without_sc, name=f"why-{name}-without"),
        changes=dict(changes),
    )


def every_bundled_scenario() -> list[tuple[str, Scenario]]:
    """(name, scenario) for each bundled scenario and both sides of every lesson."""
    from fabric_cli.scenario import bundled_scenarios, load_scenario

    found = [(info.name, load_scenario(str(info.path))) for info in bundled_scenarios()]
    for name in LESSONS:
        lesson = load_lesson(name)
        found += [(f"why {name}", lesson.with_scenario),
                  (f"why {name} (without)", lesson.without_scenario)]
    return found
