"""`fabric heads`: what every head became (role, score, ablation evidence), and
`--timeline L.H`: one head's attention replayed from random beginnings to the end."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.text import Text

from fabric_cli.commands._common import (
    ExportOption,
    ThemeOption,
    cli_errors,
    literal,
    quiet_control_echo,
    stdout_console,
    warn,
)
from fabric_cli.commands.infer import check_export, parse_head, visible
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import step as step_text
from fabric_cli.narrate.format import whole_pct
from fabric_cli.typeset import quoted

SCHEMA_VERSION = 1
MUTED = "grey62"


@cli_errors
def heads(
    ctx: typer.Context,
    run: Annotated[Path | None, typer.Option(
        "--run", help="Run directory (default: the newest runs/*/ here).")] = None,
    timeline: Annotated[str | None, typer.Option(
        "--timeline", help="Replay head L.H's attention through training, e.g. 0.2.")] = None,
    qk: Annotated[str | None, typer.Option(
        "--qk", help="Draw head L.H's query/key space, early beside late, e.g. 1.2.")] = None,
    sentence: Annotated[int, typer.Option(
        "--sentence", help="With --timeline: which story sentence (0-indexed).")] = 0,
    fps: Annotated[float, typer.Option(
        "--fps", help="With --timeline in a terminal: frames per second.", min=0.5,
        max=30)] = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    export: ExportOption = None,
    theme: ThemeOption = None,
) -> None:
    """The layer × head map of roles with scores and ablation evidence; or one head's
    timeline.

    \b
    Examples:
      fabric heads
      fabric heads --run runs/pronouns --export heads.html
      fabric heads --timeline 0.0
      fabric heads --timeline 0.2 --sentence 1 --fps 8
      fabric heads --qk 1.2 --export qk.svg
      fabric heads --json
    """
    from fabric_cli.commands._export import check_theme, export_picture

    check_export(export)
    theme = check_theme(theme, export)
    if math.isnan(fps):  # NaN passes the option's range check: every comparison is false
        raise FabricError("--fps: expected frames per second from 0.5 to 30, got nan")
    target = parse_head(timeline, "--timeline") if timeline is not None else None
    if qk is not None and target is not None:
        raise FabricError("give --timeline or --qk, not both")
    if target is None:  # a timeline's options alone were silently dropped for the role map
        for name in ("sentence", "fps"):  # typed, not the default (typer's own click)
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE":
                raise FabricError(f"--{name} goes with --timeline L.H (which head to replay), "
                                  f"e.g. fabric heads --timeline 0.0 --{name} "
                                  f"{ctx.params[name]:g}")
    qk_head = parse_head(qk, "--qk") if qk is not None else None

    from fabric_cli.analysis.roles import head_roles, head_timeline, model_shape
    from fabric_cli.commands._runs import note_if_training, read_chronicle, run_to_read

    directory = run_to_read(run, "fabric heads --run {}")
    events = read_chronicle(_chronicle(directory))
    for message in getattr(events, "warnings", []):
        warn(message)
    events = list(events)
    note_if_training(directory, events, "this shows it so far")
    n_layers, n_heads = model_shape(events)
    if qk_head is not None:
        _qk(events, directory, qk_head, n_layers, n_heads, as_json, export, theme)
        return
    if target is not None:
        frames = head_timeline(events, target[0], target[1], sentence)
        role = next((r.get("role") for r in head_roles(events, _thresholds(events))
                     if (r.get("layer"), r.get("head")) == target), None) if frames else None
        if as_json:
            _print_json({"schema_version": SCHEMA_VERSION, "run": str(directory),
                         "head": list(target), "frames": frames})
        if not as_json:
            _show_timeline(frames, target, fps=fps, role=role)
        if export is not None:
            export_picture(lambda console: _print_timeline(console, frames, target, role), export,
                           f"fabric heads --timeline {target[0]}.{target[1]}", theme)
        return
    rows = head_roles(events, _thresholds(events))
    if as_json:
        _print_json({"schema_version": SCHEMA_VERSION, "run": str(directory),
                     "n_layers": n_layers, "n_heads": n_heads, "heads": rows})
    def draw(console: Console) -> None:
        from fabric_cli.views.headmap import head_role_map

        console.print(head_role_map(rows, n_layers, n_heads, max_width=console.width,
                                    title=f"What each head became ({literal(str(directory))})"))
        console.print(_bars_line(rows, console.width))
        stopped = _stopped_before_ablation(events)
        if stopped:
            console.print(stopped, style=MUTED, markup=False, highlight=False)

    if not as_json:
        draw(stdout_console())
    if export is not None:
        export_picture(draw, export, "fabric heads", theme)


def _stopped_before_ablation(events: list[dict]) -> str | None:
    """A run that stopped or tore before its final ablation has no ★ because none was tested:
    the map says so, not leaving an empty legend to read as "none proven"."""
    if any(e.get("type") == "ablation" for e in events):
        return None
    end = next((e for e in reversed(events) if e.get("type") == "run_end"), None)
    if end is None or end.get("status") == "finished":
        return None  # still training (noted above the map), or finished
    torn = next((e for e in events if e.get("kind") == "diverged"), None)
    how = (f"tore at step {step_text(torn.get('step', 0))}" if torn is not None else
           f"stopped at step {step_text(end.get('steps', 0))}")
    return f"no ★ yet: the run {how}, before the ablation that proves a head"


def _qk(events: list[dict], directory: Path, head: tuple[int, int], n_layers: int,
        n_heads: int, as_json: bool, export: Path | None, theme: str) -> None:
    """`--qk L.H`: the head's query/key map at the first and the last probe."""
    from fabric_cli.analysis.qkspace import qk_frames
    from fabric_cli.commands._export import export_picture
    from fabric_cli.views.qkspace import qk_scatter

    if not (0 <= head[0] < n_layers and 0 <= head[1] < n_heads):
        raise FabricError(f"--qk {head[0]}.{head[1]}: this run has layers 0..{n_layers - 1} "
                          f"and heads 0..{n_heads - 1}")
    if not any(e.get("type") == "probe" for e in events):  # as the map and --timeline say
        raise FabricError("the chronicle has no probe yet; let `fabric train` run to its first "
                          "probe")
    frames = qk_frames(events, *head)
    if as_json:
        _print_json({"schema_version": SCHEMA_VERSION, "run": str(directory),
                     "head": list(head), "frames": frames})

    def draw(console: Console) -> None:
        console.print(qk_scatter(frames, head, max_width=console.width))

    if not as_json:
        draw(stdout_console())
    if export is not None:
        export_picture(draw, export, f"fabric heads --qk {head[0]}.{head[1]}", theme)


def _chronicle(directory: Path) -> Path:
    """The chronicle of a run directory (checked by run_to_read), or the file given."""
    from fabric_cli.commands.narrate import chronicle_of

    return chronicle_of(directory)


def _thresholds(events: list[dict]):
    """The bars the moments used: the scenario's specialist_threshold over the defaults."""
    from fabric_cli.scenario import load_scenario
    from fabric_cli.training.moments import MomentThresholds

    start = next((e for e in events if e.get("type") == "run_start"), {})
    for name in (start.get("scenario_path"), start.get("scenario")):
        if isinstance(name, str) and name:
            try:
                return MomentThresholds.from_scenario(load_scenario(name)).role_threshold
            except FabricError:
                continue
    warn("the run's scenario cannot be loaded; judging roles by the default bars")
    return MomentThresholds().role_threshold


def _bars_line(rows: list[dict], width: int = 80) -> Text:
    """What score each role needs, broken only between roles: "prev 0.60" never parts."""
    bars = rows[0]["bars"] if rows else {}
    items = [f"{role} {bar:.2f}" for role, bar in bars.items()]
    words = ["a role needs its score to reach:"] + [
        item + (";" if i == len(items) - 1 else " ·") for i, item in enumerate(items)] + \
        ["otherwise diffuse"]
    lines = [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] += (" " if lines[-1] else "") + word
    return Text("\n".join(lines), style=MUTED)


def _print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")


def _frame(frame: dict, target: tuple[int, int], index: int, total: int,
           width: int, role: str | None = None) -> RenderableType:
    """One probe's map of the head; its facts lead with the score of the head's own role
    (a verb head's verb score), then the pronoun's, which the map's marks are about."""
    from fabric_cli.views.headmap import role_label
    from fabric_cli.views.heatmap import attention_heatmap

    tokens = [visible(t) for t in frame["tokens"]]
    marks = [(q, k) for q, k in frame["pronouns"]]
    score = frame["score"]
    facts = f"step {frame['step']:,} · probe {index + 1}/{total}"
    own = (frame.get("scores") or {}).get(role) if role not in (None, "pronoun") else None
    if own is not None:
        facts += f" · {role_label(role).removeprefix('to ')} score {own:.2f}"
    if score is not None:
        facts += f" · pronoun score {score:.2f}"
    if frame["acc"] is not None:
        facts += f" · pronoun accuracy {whole_pct(frame['acc'])}"
    name = f"L{target[0]}H{target[1]}"
    title = f"{name} on: {quoted(frame['sentence'])}"
    lines = [Text(facts, style="bold")]
    if len(title) + 6 > width:  # a frame cuts a long title off mid-sentence: say it above
        lines.append(Text(title))
        title = name
    return Group(*lines, attention_heatmap(tokens, frame["pattern"], mark=marks,
                                           max_width=width, title=title, steady_legend=True))


def _show_timeline(frames: list[dict], target: tuple[int, int], *, fps: float,
                   role: str | None = None) -> None:
    console = stdout_console()
    if console.is_terminal:
        from rich.live import Live

        restore_echo = quiet_control_echo(console.file)  # no "^C" under the frame
        try:
            with Live(console=console, refresh_per_second=max(fps, 4), transient=False) as live:
                for i, frame in enumerate(frames):
                    live.update(_frame(frame, target, i, len(frames), console.width, role))
                    if i + 1 < len(frames):
                        time.sleep(1.0 / fps)
        finally:
            if restore_echo is not None:
                restore_echo()
        return
    _print_timeline(console, frames, target, role)


def _print_timeline(console: Console, frames: list[dict], target: tuple[int, int],
                    role: str | None = None) -> None:
    """A few frames, from random beginnings to the end (for pipes and exports)."""
    from fabric_cli.analysis.roles import sample_frames

    for i in sample_frames(len(frames)):
        console.print(_frame(frames[i], target, i, len(frames), console.width, role))
        console.print()
