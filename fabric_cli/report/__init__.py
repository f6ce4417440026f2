"""`fabric report`: a run as one self-contained, offline HTML page.

    build_report(events, *, roles, names, colours, theme="light") -> str

The page holds the run's facts, the loss against the floor (linear, and the distance to the
floor on a log axis), the role map with its ablations, a timeline over the probe snapshots
(any head's attention on every story sentence at any probe step, as a heatmap and as
bertviz-style arcs, with the gradient flow at that step and the moments around it), and the
story told by the ensemble and by every voice. CSS and script are inlined from report.css and
report.js beside this file; nothing is fetched. It reads the chronicle through
`fabric_cli.chronicle` and the narrators through `fabric_cli.narrate`, like the terminal
views, so the page and the terminal never disagree. This floor never imports rich or typer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from fabric_cli.errors import FabricError
from fabric_cli.report import page
from fabric_cli.report.data import page_data

__all__ = ["GENERATOR", "build_report"]
GENERATOR = "fabric report"  # in every page's <head>: how a later run knows the file is ours

# First in <head>: any script error, even one that stops report.js from parsing, is written
# into the page (#errors), where a reader and the browser test see it.
ERROR_TRAP = (
    "<script>window.__errors=[];window.addEventListener('error',function(e){"
    "window.__errors.push(e.message||String(e));var p=document.getElementById('errors');"
    "if(p)p.textContent=window.__errors.join('\\n');});</script>"
)


def _asset(name: str) -> str:
    return resources.files("fabric_cli.report").joinpath(name).read_text(encoding="utf-8")


def _told(events: list[dict]) -> list[tuple[str, Any]]:
    """The ensemble first, then every voice; a voice that cannot tell this run says why."""
    from fabric_cli.narrate import NARRATORS, tell

    told: list[tuple[str, Any]] = []
    for component in ["ensemble", *[c for c in NARRATORS if c != "ensemble"]]:
        try:
            told.append((component, tell(events, component)))
        except FabricError as exc:
            told.append((component, f"This voice cannot tell this run: {exc.message}"))
    return told


def _speaker_names() -> dict[str, str]:
    from fabric_cli.narrate import NARRATORS

    names = {}
    for key, narrator in NARRATORS.items():
        label = narrator.speaker
        names[key] = label[:1].upper() + label[1:]
    return names


def _colour_css(colours: Mapping[str, Mapping[str, str]]) -> str:
    light = ";".join(f"--c-{k}:{v}" for k, v in colours.get("light", {}).items())
    dark = ";".join(f"--c-{k}:{v}" for k, v in colours.get("dark", {}).items())
    return f":root{{{light}}}:root[data-theme=\"dark\"]{{{dark}}}"


def build_report(events: Sequence[dict], *, roles: Sequence[Mapping[str, Any]],
                 colours: Mapping[str, Mapping[str, str]], theme: str = "light") -> str:
    """The whole page as one string. roles: analysis.roles.head_roles rows; colours:
    {"light": {component: css colour}, "dark": {…}}; theme: the page's first palette."""
    from fabric_cli.narrate import ticker_line

    events = list(events)
    start = next((e for e in events if e.get("type") == "run_start"), None)
    if start is None:
        raise FabricError("the chronicle has no run_start; train a run with `fabric train`")
    seed = int(start.get("seed") or 0)
    data = page_data(events, ticker=lambda m: ticker_line(m, seed))
    ends = [e for e in events if e.get("type") == "run_end"]
    specialists = (ends[-1].get("specialists") or []) if ends else []
    also = page.also_proven(roles, specialists)
    data["roles"] = {f"{r['layer']}.{r['head']}": str(r.get("role", "")) +
                     (" ★" if r.get("specialist") else "") +
                     "".join(f", {other} ★" for other in also.get((r["layer"], r["head"]), []))
                     for r in roles}
    run = data["run"]
    ablation = next((e.get("rows") or [] for e in reversed(events)
                     if e.get("type") == "ablation"), [])
    val = [(t["step"], t["val"]) for t in data["timeline"] if t["val"] is not None]
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # No "<" at all: "</script>" would close the data's tag, and "<!--<script>" (in a
    # scenario's description, say) would make the browser read past its end
    payload = payload.replace("<", "\\u003c")
    title = f"fabric report · {run['scenario']}"
    intro = ("<p class=\"muted\">Move the slider through the probes; choose any head. Each "
             "story sentence is drawn twice: as a map (rows look back at columns; darker is "
             "more attention on paper, brighter in the dark) and as lines from each token to "
             "the tokens it attends to. The key under the controls says what every mark "
             "means.</p>")
    sections = [
        ("top", "<button id=\"theme-toggle\" type=\"button\">light / dark</button>"
         f"<h1>{page.esc(title)}</h1><p class=\"muted\">{page.esc(run['description'])}</p>"
         + page.facts(run, specialists)
         + "<nav><a href=\"#loss\">Loss</a><a href=\"#heads\">Heads</a>"
         "<a href=\"#timeline\">Timeline</a><a href=\"#story\">Story</a></nav>"),
        ("loss", "<h2>The Loss, the Fabric's judgment</h2>"
         + page.loss_charts(data["loss"], val, run["floor"])),
        ("heads", "<h2>What each head became</h2>"
         + page.role_map(roles, run["n_layers"], run["n_heads"], ablation, specialists)),
        ("timeline", "<h2>Timeline: attention at every probe</h2>" + intro + page.TIMELINE),
        ("story", "<h2>The story</h2>" + page.stories(_told(events), _speaker_names())),
    ]
    # (#step=N&view=timeline shows one section alone: a slide, or a test's screenshot)
    body = [f"<section id=\"{key}\">{content}</section>" for key, content in sections]
    return (
        "<!DOCTYPE html>\n"
        f"<html lang=\"en\" data-theme=\"{page.esc(theme)}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<meta name=\"generator\" content=\"{GENERATOR}\">"
        f"<title>{page.esc(title)}</title>{ERROR_TRAP}"
        f"<style>{_asset('report.css')}{_colour_css(colours)}</style></head>"
        "<body><main><pre id=\"errors\"></pre>" + "".join(body) + "</main>"
        f"<script id=\"data\" type=\"application/json\">{payload}</script>"
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )
