"""`fabric infer`: one sentence through the trained Fabric — tokens, attention, what each
pronoun resolves to, what comes next, and the pronoun head's own account.

Heavy modules (numpy, the model, safetensors) are imported inside the command, so that
`fabric --help` and the other commands do not pay for them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.constrain import Constrain
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from fabric_cli.commands._common import (
    ExportOption,
    ThemeOption,
    cli_errors,
    literal,
    literal_text,
    paragraph_text,
    stdout_console,
    warn,
)
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import pct
from fabric_cli.narrate.format import step as step_text

EXPORTS = (".svg", ".html", ".txt")
_HEAD_SPEC = re.compile(r"^\s*(?:L?(\d+)\s*[.:H]\s*(\d+))\s*$", re.IGNORECASE)
VERDICTS = {  # verdict -> (glyph and words, style); glyphs keep it readable without colour
    "correct": ("✓ agrees", "bold green"),
    "wrong": ("✗ misses", "bold red"),
    "ambiguous": ("? undecided", "yellow"),
    "no_agreeing_noun": ("— unbound", "dim"),
}
MUTED = "grey62"
PROSE_MEASURE = 88  # the head's account keeps a readable line length on a wide terminal


def parse_head(spec: str, option: str = "--ablate") -> tuple[int, int]:
    """"0.2" (or "L0H2") -> (0, 2); anything else is a one-line error."""
    match = _HEAD_SPEC.match(spec)
    if not match:
        parts = [p.strip() for p in spec.replace(";", ",").split(",")]
        if option == "--ablate" and len(parts) > 1 and all(map(_HEAD_SPEC.match, parts)):
            again = " ".join(f"--ablate {p}" for p in parts)
            raise FabricError(f"--ablate {literal(spec)!r}: --ablate takes one head; to silence "
                              f"several, repeat it: {literal(again)}")
        raise FabricError(f"{option} {literal(spec)!r}: expected LAYER.HEAD, e.g. 0.2 "
                          "(layer 0, head 2; both 0-indexed)")
    return int(match.group(1)), int(match.group(2))


def check_export(export: Path | None) -> None:
    from fabric_cli.commands._export import check_export_file

    check_export_file(export, EXPORTS)


def visible(word: str) -> str:
    """A token as the user can see it: control characters written as escapes (\\x00)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                   else f"\\u{ord(c):04x}" for c in word)


@cli_errors
def infer(
    sentence: Annotated[str, typer.Argument(help="The sentence, in quotes.",
                                            metavar="SENTENCE", show_default=False)],
    run: Annotated[Path | None, typer.Option(
        "--run", help="Run directory (default: the newest runs/*/ here).")] = None,
    layer: Annotated[int | None, typer.Option(
        "--layer", help="With --head: show and resolve with this head instead.")] = None,
    head: Annotated[int | None, typer.Option(
        "--head", help="With --layer: which head (0-indexed).")] = None,
    all_heads: Annotated[bool, typer.Option(
        "--all", help="Also show a small map of every head.")] = False,
    ablate: Annotated[list[str] | None, typer.Option(
        "--ablate", help="Silence head L.H (repeatable) and show what changes, e.g. 0.2.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print every measurement as JSON (docs/infer-json.md).")] = False,
    with_logits: Annotated[bool, typer.Option(
        "--logits", help="With --json: add the full logits (positions x vocabulary).")] = False,
    export: ExportOption = None,
    theme: ThemeOption = None,
) -> None:
    """Send a sentence through the trained Fabric and watch its pronoun head resolve it.

    \b
    Examples:
      fabric infer "The professor met the king after she finished her notes."
      fabric infer "The cat chased the dog because it was fast." --all
      fabric infer "The queen saw the farmer with his tractor." --ablate 0.2
      fabric infer "She left the room." --layer 0 --head 2 --export her.svg
      fabric infer "The king wore his crown." --json
    """
    from fabric_cli.commands._export import check_theme, export_picture

    check_export(export)
    theme = check_theme(theme, export)
    if with_logits and not as_json:
        raise FabricError("--logits goes with --json (fabric infer --json --logits \"...\")")
    if (layer is None) != (head is None):
        raise FabricError("give --layer and --head together (e.g. --layer 0 --head 2)")
    silenced = list(dict.fromkeys(parse_head(s) for s in ablate or []))

    from fabric_cli.analysis.inference import infer_sentence, inference_json, load_run
    from fabric_cli.commands._runs import run_to_read
    from fabric_cli.narrate.inference import tell_inference

    loaded = load_run(run_to_read(run, 'fabric infer "She left the room." --run {}'))
    for message in loaded.warnings:
        warn(message)
    chosen = [(layer, head)] if layer is not None and head is not None else None
    result = infer_sentence(loaded, sentence, heads=chosen)
    if result.unknown:
        names = ", ".join(f"\"{visible(w)}\"" for w in dict.fromkeys(result.unknown))
        warn(f"not in the vocabulary, read as <unk>: {names}")
    ablated = infer_sentence(loaded, sentence, heads=chosen, ablate=silenced) if silenced else None
    doc = inference_json(loaded, result, ablated=ablated, logits=with_logits)
    doc["narration"] = tell_inference(doc)
    if as_json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        draw_inference(stdout_console(), doc, show_all=all_heads)
    if export is not None:
        export_picture(lambda console: draw_inference(console, doc, show_all=all_heads), export,
                       f"fabric infer: {_title_words(sentence)}", theme, arcs_of(doc, theme))


def _title_words(sentence: str, limit: int = 90) -> str:
    """The sentence for the SVG's title bar (about 110 characters fit): whole, or cut after
    a whole word with '…'."""
    words = " ".join(sentence.split())
    if len(words) <= limit:
        return words
    cut = words[: limit + 1].rsplit(" ", 1)[0] if " " in words[:limit] else words[:limit]
    return cut.rstrip(" ,;:") + "…"


# -- drawing -----------------------------------------------------------------------------


def _name(h) -> str:
    return f"L{h[0]}H{h[1]}"


def _pattern(doc: dict, h, key: str = "attention"):
    import numpy as np

    source = doc["ablation"] if key == "ablation" else doc
    return np.asarray(source["attention"][f"{h[0]}.{h[1]}"], dtype=float)


def draw_inference(console: Console, doc: dict, *, show_all: bool = False) -> None:
    from fabric_cli.views.heatmap import attention_heatmap, heads_grid

    tokens = [visible(t) for t in doc["tokens"]]
    unknown = set(doc["unknown_words"])
    run = doc["run"]
    trackers = doc["trackers"]
    console.print()
    title = Text("fabric infer", style="bold")
    title.append(f"  run {literal(run['dir'])} · {literal(run['scenario'])} · "
                 f"step {step_text(run['step'])}",
                 style=MUTED)
    console.print(title)
    proven = trackers["source"] == "specialist"
    if trackers["heads"]:
        # the ★ beside each proven head is the one its legend explains
        names = ", ".join(_name(h) + (" ★" if proven else "") for h in trackers["heads"])
        legend = "★ proven by ablation" if proven else "best probe score, not proven by ablation"
        noun = "pronoun heads" if len(trackers["heads"]) > 1 else "pronoun head"
        console.print(Text(f"{noun}: {names} ({legend})", style=MUTED))
    console.print(literal_text(visible(doc["sentence"].strip()), style="italic"))
    console.print()
    console.print(_token_line(doc, tokens, unknown, console.width))
    console.print()
    if doc["resolutions"]:
        console.print(_resolution_table(doc, tokens, narrow=console.width < 90))
    elif trackers["heads"]:
        console.print(Text("No pronoun in this sentence: nothing for the head to resolve.",
                           style=MUTED))
    console.print()
    for h in _shown_heads(doc):
        marks = [(r["position"], r["antecedent"]["position"]) for r in doc["resolutions"]
                 if r["antecedent"] is not None and tuple(r["head"]) == tuple(h)]
        if not marks:  # the speaker's map marks every antecedent, whoever resolved it
            marks = [(r["position"], r["antecedent"]["position"]) for r in doc["resolutions"]
                     if r["antecedent"] is not None and tuple(h) == _speaker(doc)]
        role = " speaks:" if tuple(h) == _speaker(doc) and doc["narration"] else ""
        console.print(attention_heatmap(tokens, _pattern(doc, h), mark=marks,
                                        title=f"{_name(h)}{role} attention (rows look back at "
                                        "columns)", max_width=console.width))
    if show_all:
        maps = {(int(k.split(".")[0]), int(k.split(".")[1])): _pattern(doc, k.split("."))
                for k in doc["attention"]}
        console.print(Text("Every head", style="bold"))
        console.print(heads_grid(maps, tokens, console.width,
                                 highlight=[tuple(h) for h in trackers["heads"]] if proven
                                 else []))
    console.print()
    console.print(_expectations(doc, tokens, console.width))
    if doc["ablation"]:
        console.print()
        console.print(_ablation_table(doc, tokens))
    if doc["narration"]:
        console.print()
        speaker = _name(_speaker(doc)) if _speaker(doc) else "the Fabric"
        console.print(Rule(Text(f"{speaker} speaks", style="bold magenta"), style="magenta",
                           align="left"))
        for paragraph in doc["narration"]:
            console.print()
            # control characters written as escapes (\x1b), as in the map and the warning
            console.print(Constrain(paragraph_text(visible(paragraph)), PROSE_MEASURE))
    console.print()


def _token_line(doc: dict, tokens: list[str], unknown: set[str], width: int = 80) -> Text:
    """`Tokens  <bos> │ the │ …`, wrapped between tokens (never between a token and its │),
    continued under the first token."""
    label = Text("Tokens  ", style="bold")
    pieces = []
    for i, (tok, tid) in enumerate(zip(tokens, doc["token_ids"], strict=True)):
        if tid == 2:  # <unk>: flagged by glyph as well as colour
            piece = Text(f"{literal(tok)}?", style="bold red")
        else:
            piece = Text(literal(tok), style=MUTED if i == 0 else "")
        if i + 1 < len(tokens):
            piece.append(" │", style=MUTED)
        pieces.append(piece)
    if unknown:
        pieces.append(Text("(? = unknown word, read as <unk>)", style=MUTED))
    return _flow(label, pieces, width, last_gap="   " if unknown else " ")


def _flow(head: Text, pieces: list[Text], width: int, *, last_gap: str = " ") -> Text:
    """`head` then the pieces, a space apart (`last_gap` before the last), wrapped only
    between pieces; a continued line starts under the first piece (or four columns in, if
    that leaves too little room)."""
    indent = head.cell_len if width - head.cell_len >= 24 else 4
    line, column = head.copy(), head.cell_len
    for i, piece in enumerate(pieces):
        gap = last_gap if i == len(pieces) - 1 else " "
        if i and column + len(gap) + piece.cell_len > width:
            line.append("\n" + " " * indent)
            column = indent
        elif i:
            line.append(gap)
            column += len(gap)
        line.append_text(piece)
        column += piece.cell_len
    return line


def _resolution_table(doc: dict, tokens: list[str], *, narrow: bool = False) -> Table:
    """One row per pronoun; narrow terminals get the verdict's glyph alone (✓ ✗ ? —), so
    every cell keeps its whole word."""
    table = Table(title=Text("Who each pronoun points to", style="bold"), title_justify="left",
                  show_edge=False, pad_edge=False, header_style="bold")
    columns = ["pronoun", "head", "looks at", "nearest", "grammar", "verdict", "expects"]
    if narrow:  # no rules between columns, and the verdict's header as short as its glyph
        table.box = None
        table.header_style = "bold underline"
        columns[5] = "ok"
    for column in columns:
        table.add_column(column, no_wrap=True)
    for r in doc["resolutions"]:
        glyph, style = VERDICTS.get(r["verdict"], (r["verdict"], ""))
        if narrow:
            glyph = glyph.split()[0]
        agreeing = [tokens[n["position"]] for n in r["agreeing_nouns"]]
        says = " or ".join(agreeing) if agreeing else "no noun"
        owner = r["expects_owner"]
        # "professor 99.5%" kept on one line: the word and its share are one fact, written
        # as the story beside the table writes it (a share of 0.995 is not "100%")
        expects = f"{owner} {pct(r['owner_mass'][owner])}" if owner else "—"
        head = _name(r["head"]) + ("" if r["heard"] else " (silenced)")
        looks = f"{tokens[r['attended']['position']]} {r['attended']['weight']:.2f}"
        table.add_row(literal(tokens[r["position"]]), head, literal(looks),
                      literal(tokens[r["nearest_noun"]["position"]]) if r["nearest_noun"] else "—",
                      literal(says), Text(glyph, style=style), literal(expects))
    return table


def _top_line(top: list[dict], head: Text, width: int) -> Text:
    """`word 54.3% · word 45.2% · …`: a word never parts from its share at a line's end."""
    pieces = []
    for i, t in enumerate(top):
        piece = Text(literal(visible(t["token"])), style="bold" if i == 0 else "")
        piece.append(f" {t['prob']:.1%}", style=MUTED)
        if i + 1 < len(top):
            piece.append(" ·", style=MUTED)
        pieces.append(piece)
    return _flow(head, pieces, width)


def _expectations(doc: dict, tokens: list[str], width: int = 80) -> RenderableType:
    rows: list[RenderableType] = [Text("What the Fabric expects next", style="bold")]
    last = len(tokens) - 1
    for p in doc["predictions"]:
        where = "at the end" if p["position"] == last else f"after \"{tokens[p['position']]}\""
        rows.append(_top_line(p["top"], Text(f"  {literal(where)}: ", style=MUTED), width))
    cont = doc["continuation"]
    if cont["stopped"] == "ended":
        rows.append(Padding(Text("The sentence ends with \".\": every sentence the Fabric read "
                                 "ended there, so it has nothing to add.", style=MUTED),
                            (0, 0, 0, 2)))
    elif cont["tokens"]:
        rows.append(Text("  greedy continuation: ", style=MUTED)
                    + literal_text(" ".join(cont["tokens"]), style="bold")
                    + Text("  (stopped: " + {"period": "at \".\"", "context": "context full",
                                             "special": "special token"}[cont["stopped"]] + ")",
                           style=MUTED))
    else:
        rows.append(Text("  no room left in the context to continue", style=MUTED))
    return Group(*rows)


def _ablation_table(doc: dict, tokens: list[str]) -> RenderableType:
    from fabric_cli.analysis.inference import compare_ablation

    diff = compare_ablation(doc)
    heads = ", ".join(_name(h) for h in diff["heads"])
    table = Table(title=Text(f"Silencing {heads}: what changed", style="bold"),
                  title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    for column in ("", "before", "silenced"):
        table.add_column(column)
    for p in diff["pronouns"]:
        name = literal(p["pronoun"])
        table.add_row(f"\"{name}\" looks at", f"{literal(p['attended_before'])}",
                      f"{literal(p['attended_after'])}" + ("" if p["heard_after"]
                                                          else " (unheard)"))
        if p["noun"] and p["mass_before"] is not None and p["mass_after"] is not None:
            drop = p["mass_before"] - p["mass_after"]
            table.add_row(f"\"{name}\": {literal(p['noun'])}'s words",
                          f"{p['mass_before']:.1%}",
                          Text(f"{p['mass_after']:.1%}", style="bold red" if drop >= 0.05 else ""))
        table.add_row(f"\"{name}\": Fabric expects", literal(p["owner_before"] or "—"),
                      literal(p["owner_after"] or "—"))
    for p in diff["predictions"]:
        where = "at the end" if p["position"] == len(tokens) - 1 else \
            f"after \"{tokens[p['position']]}\""
        before, after = p["top_before"], p["top_after"]
        table.add_row(f"top {literal(where)}", f"{literal(before['token'])} {before['prob']:.1%}",
                      f"{literal(after['token'])} {after['prob']:.1%}")
    table.add_row("sentence loss (nats/token)", f"{diff['sentence_loss_before']:.3f}",
                  f"{diff['sentence_loss_after']:.3f}")
    if diff["continuation_before"] or diff["continuation_after"]:
        table.add_row("continuation", literal(" ".join(diff["continuation_before"]) or "—"),
                      literal(" ".join(diff["continuation_after"]) or "—"))
    return table


def arcs_of(doc: dict, theme: str) -> list[str]:
    """bertviz-style arcs of every head whose map is drawn, for SVG and HTML exports."""
    from fabric_cli.views.arcs import attention_arcs_svg

    tokens = [visible(t) for t in doc["tokens"]]
    marks = [(r["position"], r["antecedent"]["position"]) for r in doc["resolutions"]
             if r["antecedent"] is not None]
    return [attention_arcs_svg(tokens, _pattern(doc, h), mark=marks, theme=theme,
                               title=f"{_name(h)}: each token's lines to what it attends to")
            for h in _shown_heads(doc)]


def _speaker(doc: dict) -> tuple[int, int] | None:
    """The head whose voice tells the sentence (narrate.inference speaks as the first
    tracker): its map is the first one drawn, so the head that speaks is the head shown."""
    heads = doc["trackers"]["heads"]
    return tuple(heads[0]) if heads else None


def _shown_heads(doc: dict) -> list:
    """The heads whose map is drawn: the speaker, then any other head that resolved a
    pronoun here; with no tracker, the first head that resolved one."""
    used = list(dict.fromkeys(tuple(r["head"]) for r in doc["resolutions"]))
    speaker = _speaker(doc)
    if speaker is not None:
        return [speaker] + [h for h in used if h != speaker]
    heads = used or [tuple(h) for h in doc["heads_resolving"]]
    return heads[:1]
