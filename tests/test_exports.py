"""`--export`: a fixed width whatever the terminal, a light palette on paper unless
--theme dark, real SVG and HTML (also for `narrate --plain`), speakers named in Markdown,
and a line saying where the file went."""

from __future__ import annotations

import colorsys
import re

import pytest
from typer.testing import CliRunner

from fabric_cli.cli import app

SENTENCE = "The professor finished her lecture."


def run(args: list[str], columns: int = 100):
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    return result


def lightness(hexcode: str) -> float:
    r, g, b = (int(hexcode[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return colorsys.rgb_to_hls(r, g, b)[1]


@pytest.mark.parametrize("columns", (40, 80))
def test_heads_export_keeps_its_grid_whatever_the_terminal(tiny_run_master, tmp_path,
                                                           columns) -> None:
    target = tmp_path / "heads.txt"
    result = run(["heads", "--run", str(tiny_run_master), "--export", str(target)], columns)
    text = target.read_text(encoding="utf-8")
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= 100 and max(widths) > columns  # drawn at 100, not at the terminal
    assert re.search(r"│\s+│ H0\s+│ H1", text)  # the layer × head grid, not a list
    assert f"wrote {target}" in result.stderr


def test_html_export_is_light_with_no_ink_fading_into_the_page(tiny_run_master, tmp_path):
    target = tmp_path / "infer.html"
    run(["infer", SENTENCE, "--run", str(tiny_run_master), "--export", str(target)])
    html = target.read_text(encoding="utf-8")
    assert re.search(r"background-color:\s*#ffffff", html)
    weights = [(float(w), lightness(hexcode)) for hexcode, w in
               re.findall(r'<span style="color: #([0-9a-f]{6})[^>]*>\s*([01]\.\d\d)\s*</span>',
                          html)]
    strong = [light for w, light in weights if w >= 0.6]
    faint = [light for w, light in weights if w < 0.4] or [0.9]
    assert strong
    # the strongest attention is the darkest ink on white (a dark terminal's bright yellow
    # would all but vanish), and weaker weights are paler
    assert max(strong) < 0.45 and min(faint) > max(strong)
    dark = tmp_path / "dark.html"
    run(["infer", SENTENCE, "--run", str(tiny_run_master), "--export", str(dark),
         "--theme", "dark"])
    assert not re.search(r"background-color:\s*#ffffff", dark.read_text(encoding="utf-8"))


def contrast_on_white(hexcode: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hexcode[i : i + 2], 16) / 255) for i in (0, 2, 4))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


@pytest.mark.parametrize("suffix", (".html", ".svg"))
def test_a_story_on_paper_names_every_speaker_in_ink_that_reads(tiny_run_master, tmp_path,
                                                                suffix) -> None:
    target = tmp_path / f"story{suffix}"
    run(["narrate", "--run", str(tiny_run_master), "--export", str(target)])
    content = target.read_text(encoding="utf-8")
    if suffix == ".html":
        inks = re.findall(r'<span style="color: #([0-9a-f]{6})[^>]*>', content)
    else:
        inks = re.findall(r"\.terminal-\d+-r\d+ \{ fill: #([0-9a-f]{6})", content)
    assert len(set(inks)) >= 4  # the speakers' names and the chapter titles, in colour
    # none fades into the white page as a dark terminal's bright cyan, yellow or white would
    faint = {ink for ink in inks if contrast_on_white(ink) < 4.5}
    assert not faint, faint


def test_a_voice_wears_the_same_colour_in_the_story_export_and_in_the_report(tiny_run_master,
                                                                             tmp_path) -> None:
    from fabric_cli.narrate import NARRATORS

    story, page = tmp_path / "story.html", tmp_path / "report.html"
    run(["narrate", "--run", str(tiny_run_master), "--export", str(story)])
    run(["report", str(tiny_run_master), "-o", str(page)])
    report = dict(re.findall(r"--c-(\w+):#([0-9a-f]{6})",
                             re.search(r":root\{--c-[^}]*\}", page.read_text()).group(0)))
    component = {n.speaker[:1].upper() + n.speaker[1:]: key for key, n in NARRATORS.items()}
    labels = re.findall(r'<span style="color: #([0-9a-f]{6})[^"]*font-weight: bold">'
                        r"([^<]+?)  </span>", story.read_text(encoding="utf-8"))
    seen = {name: ink for ink, name in labels}
    assert len(seen) >= 3
    for name, ink in seen.items():  # the Tokenizer lime in both, a head the same blue
        key = "head" if re.fullmatch(r"L\d+H\d+", name) else component[name]
        assert report[key] == ink, (name, ink, report[key])


def test_svg_export_is_an_svg_that_needs_no_network(tiny_run_master, tmp_path) -> None:
    target = tmp_path / "infer.svg"
    run(["infer", SENTENCE, "--run", str(tiny_run_master), "--export", str(target)], 40)
    svg = target.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "url(" not in svg.split("</style>")[0] or "https://" not in svg.split("</style>")[0]
    assert "professor" in svg


def test_an_infer_svg_titles_the_sentence_in_whole_words(tiny_run_master, tmp_path) -> None:
    sentence = "The professor thanked the king after she finished her notes."
    target = tmp_path / "infer.svg"
    run(["infer", sentence, "--run", str(tiny_run_master), "--export", str(target)])
    title = re.search(r'-title"[^>]*>([^<]*)</text>', target.read_text(encoding="utf-8"))
    assert title.group(1).replace("&#160;", " ") == f"fabric infer: {sentence}"
    from fabric_cli.commands.infer import _title_words

    words = " ".join(["She thanked the king"] * 8)
    long = _title_words(words)
    assert long.endswith("…") and len(long) <= 91
    assert words.startswith(long[:-1]) and words[len(long) - 1] == " "  # cut after a word


@pytest.mark.parametrize("command", (["heads"], ["narrate", "--plain"]))
def test_an_svg_export_shows_its_last_line_whole(tiny_run_master, tmp_path, command) -> None:
    target = tmp_path / "picture.svg"
    run([*command, "--run", str(tiny_run_master), "--export", str(target)])
    svg = target.read_text(encoding="utf-8")
    frame = float(re.search(r'-clip-terminal">\s*<rect x="0" y="0" width="[\d.]+" '
                            r'height="([\d.]+)"', svg).group(1))
    size = float(re.search(r"font-size: ([\d.]+)px", svg).group(1))
    baselines = [float(y) for y, text in re.findall(
        r'<text class="terminal-\d+-r\d+" x="[\d.]+" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)
        if text.replace("&#160;", "").strip()]
    # the frame cuts everything below it: the last line's g, p and y need a quarter of a line
    assert max(baselines) + 0.25 * size <= frame, (max(baselines), frame)


@pytest.mark.parametrize("suffix", (".svg", ".html"))
def test_plain_log_exports_as_a_real_picture(tiny_run_master, tmp_path, suffix) -> None:
    target = tmp_path / f"log{suffix}"
    result = run(["narrate", "--run", str(tiny_run_master), "--plain", "--export", str(target)])
    content = target.read_text(encoding="utf-8")
    if suffix == ".svg":
        assert content.lstrip().startswith("<svg")
    else:
        assert content.lstrip().lower().startswith("<!doctype html")
    first_line = result.stdout.splitlines()[0]
    assert first_line.split()[0] in content  # the log itself is in the picture
    assert f"wrote {target}" in result.stderr


def test_markdown_story_names_every_speaker(tiny_run_master, tmp_path) -> None:
    target = tmp_path / "story.md"
    run(["narrate", "--run", str(tiny_run_master), "--export", str(target)])
    md = target.read_text(encoding="utf-8")
    speakers = re.findall(r"^\*\*([^*]+):\*\* ", md, flags=re.MULTILINE)
    assert len(set(speakers)) >= 3  # the ensemble: several voices, each named
    assert any(s.startswith("The ") for s in speakers)


def test_unknown_theme_is_one_line(tiny_run_master, tmp_path) -> None:
    result = CliRunner().invoke(app, ["infer", SENTENCE, "--run", str(tiny_run_master),
                                      "--export", str(tmp_path / "x.svg"), "--theme", "sepia"])
    assert result.exit_code == 2
    assert "expected light or dark" in result.output


def test_help_shows_examples_one_per_line_and_a_plain_usage_line() -> None:
    for command in ("train", "infer", "heads", "narrate", "report", "corpus", "scenarios"):
        out = run([command, "--help"]).output
        assert "Examples:" in out, command
        examples = [ln.strip() for ln in out.split("Examples:")[1].splitlines()
                    if ln.strip().startswith("fabric ")]
        assert len(examples) >= 3, command
        assert all(ln.count("fabric ") == 1 for ln in examples), command  # not run together
    assert "Usage: fabric infer [OPTIONS] SENTENCE" in run(["infer", "--help"]).output


def test_every_usage_line_names_its_arguments_as_infer_names_its_sentence() -> None:
    from fabric_cli.cli import COMMANDS

    want = {"compare": "RUN_A RUN_B", "why": "COMPONENT", "export": "RUN OUT_DIR",
            "infer": "SENTENCE", "report": "[RUN]"}
    for command in COMMANDS:
        usage = next(ln for ln in run([command, "--help"]).output.splitlines()
                     if ln.startswith("Usage:"))
        assert "{" not in usage and "}" not in usage, usage  # braces read like a literal
        named = usage.split("[OPTIONS]", 1)[1].strip()
        assert named == want.get(command, ""), usage
        assert named == named.upper(), usage


def test_every_command_sets_its_examples_under_the_heading() -> None:
    from fabric_cli.cli import COMMANDS

    for command in COMMANDS:
        out = run([command, "--help"]).output
        heading = [ln for ln in out.splitlines() if ln.strip().startswith("Examples:")]
        if not heading:
            continue
        assert [ln.strip() for ln in heading] == ["Examples:"], (command, heading)
        first = out.split("Examples:")[1].splitlines()[1]
        assert first.strip().startswith("fabric "), (command, first)


def test_svg_and_html_exports_draw_attention_as_arcs(tiny_run_master, tmp_path) -> None:
    for suffix in (".svg", ".html"):
        target = tmp_path / f"infer{suffix}"
        run(["infer", SENTENCE, "--run", str(tiny_run_master), "--export", str(target)])
        content = target.read_text(encoding="utf-8")
        lines = re.findall(r'<line x1="[^"]+" y1="[^"]+" x2="[^"]+" y2="[^"]+" stroke="(#\w+)" '
                           r'stroke-width="([\d.]+)" stroke-opacity="([\d.]+)"', content)
        assert lines, suffix
        assert {width for _, width, _ in lines} == {"1.4", "2.5"}  # the pronoun's are thicker
        assert all(0.03 <= float(opacity) <= 1 for _, _, opacity in lines)
        # the lines' key, under them: what a line, its colour and the bold word mean
        key = re.findall(r"<text [^>]*>(a line: attention[^<]*)</text>", content)
        assert key and "pronoun" in key[0] and "antecedent" in key[0], suffix
    txt = tmp_path / "infer.txt"
    run(["infer", SENTENCE, "--run", str(tiny_run_master), "--export", str(txt)])
    assert "<svg" not in txt.read_text(encoding="utf-8")


def rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer (with GitHub's tables and strike-through) makes."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def test_markdown_story_renders_as_the_terminal_shows_it(tiny_run_master, tmp_path) -> None:
    from html import unescape

    target = tmp_path / "story.md"
    result = run(["narrate", "--run", str(tiny_run_master), "--export", str(target)])
    page = rendered(target.read_text(encoding="utf-8"))
    paragraphs = re.findall(r"<p>(?:<strong>[^<]*:</strong> )?(.*?)</p>", page, re.DOTALL)
    terminal = " ".join(result.stdout.split())
    assert len(paragraphs) > 10
    for paragraph in paragraphs:  # every word a reader sees is the terminal's, none dropped
        assert " ".join(unescape(re.sub(r"<[^>]+>", "", paragraph)).split()) in terminal
    assert "among them &lt;pad&gt;, &lt;bos&gt;, &lt;unk&gt;." in page  # not eaten as tags
    assert "<del>" not in page and "<li>" not in page and "<code>" not in page


def test_markdown_plain_log_keeps_one_line_a_line(tiny_run_master, tmp_path) -> None:
    from html import unescape

    target = tmp_path / "log.md"
    result = run(["narrate", "--run", str(tiny_run_master), "--plain", "--export", str(target)])
    blocks = re.findall(r"<pre><code>(.*?)</code></pre>", rendered(target.read_text()), re.DOTALL)
    assert [unescape(block) for block in blocks] == [result.stdout]


@pytest.mark.parametrize("text", ["the <b>king</b> & queen", "~0.5 then ~0.3", "W_O and W_V_",
                                  "[her](http://x) `code` | a # b", "- a list?", "1. not a list",
                                  "+ plus", "***", "2*3*4"])
def test_text_in_a_markdown_export_reads_as_it_was_written(text) -> None:
    from html import unescape

    from fabric_cli.commands.narrate import md_text

    page = rendered(f"# {md_text(text)}\n\n{md_text(text)}\n")
    assert unescape(page) == f"<h1>{text}</h1>\n<p>{text}</p>\n"


@pytest.mark.parametrize("command", (["narrate"], ["heads"]))
def test_a_txt_export_keeps_no_space_at_the_end_of_a_line(tiny_run_master, tmp_path,
                                                          command) -> None:
    target = tmp_path / "out.txt"
    run([*command, "--run", str(tiny_run_master), "--export", str(target)])
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 5 and not [line for line in lines if line != line.rstrip()]


@pytest.mark.parametrize("command", ["infer", "heads", "narrate"])
def test_a_theme_with_nothing_to_export_is_refused_not_dropped(tiny_run_master, command) -> None:
    """`fabric heads --theme dark` drew the same terminal picture and said nothing: the
    palette only colours an export, and the line now says so."""
    args = [SENTENCE] if command == "infer" else []
    result = CliRunner().invoke(app, [command, *args, "--run", str(tiny_run_master),
                                      "--theme", "dark"])
    assert result.exit_code == 2, result.output
    assert "--theme dark colours an --export: give one too" in result.output
