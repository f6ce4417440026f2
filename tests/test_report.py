"""`fabric report`: one offline page of a run, read back as a user's browser would.

The browser tests run only where Chromium is installed (CI installs it from the system
packages: `apt-get install chromium`); they skip cleanly elsewhere."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from report_helpers import chromium, needs_chromium, page_data
from typer.testing import CliRunner

from fabric_cli.cli import app
from fabric_cli.report.data import decode_pattern, encode_pattern


@pytest.fixture(scope="module")
def page(tiny_run_master, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("report") / "tiny.html"
    result = CliRunner().invoke(app, ["report", str(tiny_run_master), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.output
    return target


def test_the_page_is_self_contained_and_small(page, tiny_run_master) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # no CDN, no network
    assert "@import" not in text and "url(http" not in text
    assert len(text.encode()) < 0.5 * (tiny_run_master / "chronicle.jsonl").stat().st_size + 150_000
    for heading in ("The Loss", "What each head became", "Timeline", "The story"):
        assert heading in text


def test_the_page_holds_every_voice_and_every_probe(page, tiny_run_master) -> None:
    from fabric_cli.chronicle import read_events
    from fabric_cli.narrate import NARRATORS

    text = page.read_text(encoding="utf-8")
    assert text.count("<details") == len(NARRATORS)  # the ensemble and every voice
    events = read_events(tiny_run_master / "chronicle.jsonl")
    probes = [e for e in events if e["type"] == "probe"]
    data = page_data(page)
    assert [t["step"] for t in data["timeline"]] == [p["step"] for p in probes]
    # the stored attention is the chronicle's, to within a byte's precision
    snap = probes[-1]["snapshots"][0]
    key = next(iter(snap["patterns"]))
    stored = decode_pattern(data["timeline"][-1]["patterns"][0][key], len(snap["tokens"]))
    for got, want in zip(stored, snap["patterns"][key], strict=True):
        assert got == pytest.approx(want, abs=0.5 / 255 + 1e-6)


def test_the_timeline_shows_each_story_sentence_as_a_person_typed_it(page, tiny_run_master):
    from fabric_cli.scenario import load_scenario

    typed = load_scenario("tiny").probes.story_sentences
    shown = [s["sentence"] for s in page_data(page)["sentences"]]
    assert shown and shown == list(typed[:len(shown)])


def test_pattern_encoding_round_trips() -> None:
    pattern = [[1.0, 0, 0], [0.25, 0.75, 0], [0.2, 0.3, 0.5]]
    back = decode_pattern(encode_pattern(pattern), 3)
    for got, want in zip(back, pattern, strict=True):
        assert got == pytest.approx(want, abs=0.002)


def test_bad_output_name_is_one_line(tiny_run_master, tmp_path) -> None:
    result = CliRunner().invoke(app, ["report", str(tiny_run_master), "-o",
                                      str(tmp_path / "x.pdf")])
    assert result.exit_code == 2 and "must end in .html" in result.output


@needs_chromium
def test_the_page_loads_in_a_browser_without_errors(page) -> None:
    steps = [t["step"] for t in page_data(page)["timeline"]]
    dom = chromium("--dump-dom", f"{page.as_uri()}#step={steps[-1]}").stdout
    assert 'data-ready="1"' in dom  # the script ran to its end
    assert re.search(r'<pre id="errors"></pre>', dom), dom[:2000]  # no script error trapped
    assert f"step {steps[-1]} of" in dom
    assert dom.count('class="heatmap"') == len(page_data(page)["sentences"])
    assert dom.count('<line class="marker"') == 2  # the step, marked on both loss charts
    flow = re.search(r'<div id="gradflow">(.*?)</div>', dom, re.DOTALL).group(1)
    caption = re.search(r'<p class="muted">(.*?)</p>', flow).group(1)
    labels = set(re.findall(r">(?:L\d+ )?(skip|block|↓ sum|embed)</text>", flow))
    assert labels == {"skip", "block", "↓ sum", "embed"}
    for bar in labels:  # every kind of bar drawn is named in the words under it
        assert bar in caption, bar


@needs_chromium
def test_the_slider_changes_the_picture(page, tmp_path) -> None:
    steps = [t["step"] for t in page_data(page)["timeline"]]
    first, last = steps[0], steps[-1]
    doms, shots = [], []
    for step in (first, last):
        url = f"{page.as_uri()}#step={step}&head=0.0&view=timeline"
        doms.append(chromium("--dump-dom", url).stdout)
        shot = tmp_path / f"step{step}.png"
        chromium(f"--screenshot={shot}", "--window-size=1200,1400", url)
        shots.append(shot.read_bytes())
    assert f"step {first} of" in doms[0] and f"step {last} of" in doms[1]
    for step, dom in zip((first, last), doms, strict=True):  # what a screen reader announces
        slider = re.search(r'<input id="step"[^>]*>', dom).group(0)
        assert f'aria-valuetext="step {step:,} of' in slider, slider
    weights = [re.findall(r'data-w="([\d.]+)"', dom) for dom in doms]
    assert weights[0] and len(weights[0]) == len(weights[1])
    assert weights[0] != weights[1]  # the attention drawn is that step's
    assert shots[0][:8] == b"\x89PNG\r\n\x1a\n" and shots[0] != shots[1]


@needs_chromium
def test_steps_past_a_thousand_read_with_a_separator_as_in_the_terminal(page, tmp_path) -> None:
    data = page_data(page)  # the tiny run, moved on by 1,000 steps: a long run's page
    for probe in data["timeline"]:
        probe["step"] += 1000
        if probe.get("grad"):
            probe["grad"]["step"] += 1000
    for m in data["moments"]:
        m["step"] += 1000
    data["run"]["steps"] += 1000
    data["run"]["planned"] = max(data["run"]["planned"] or 0, data["run"]["steps"])
    text = page.read_text(encoding="utf-8")
    blob = re.search(r'(<script id="data" type="application/json">)(.*?)(</script>)', text,
                     re.DOTALL)
    long = tmp_path / "long.html"
    long.write_text(text[:blob.start(2)] + json.dumps(data) + text[blob.end(2):],
                    encoding="utf-8")
    last = data["timeline"][-1]["step"]
    dom = chromium("--dump-dom", f"{long.as_uri()}#step={last}&head=0.0").stdout
    assert re.search(r'<pre id="errors"></pre>', dom), dom[:2000]
    assert f"step {last:,} of {data['run']['planned']:,}" in dom
    assert f"L0H0 at step {last:,}:" in dom
    near = [m["step"] for m in data["moments"] if m["step"] > data["timeline"][-2]["step"]]
    assert near and f'<span class="at">step {near[0]:,}' in dom
    # copied onto a slide, a moment reads "step 1,300 L0H0: …", not "step 1,300L0H0: …"
    assert re.search(r'<span class="at">step [\d,]+(?: \(just after\))?</span> \S', dom)
    assert not re.search(r"[Ss]tep 1\d{3}\b", dom)


@needs_chromium
@pytest.mark.parametrize("command", (["narrate", "--plain"],
                                     ["infer", "The professor finished her lecture."]))
def test_an_svg_export_opens_in_a_browser(tiny_run_master, tmp_path, command) -> None:
    target = tmp_path / "picture.svg"
    result = CliRunner().invoke(app, [*command, "--run", str(tiny_run_master),
                                      "--export", str(target)])
    assert result.exit_code == 0
    dom = chromium("--dump-dom", target.as_uri()).stdout
    assert "<svg" in dom
    assert "error on line" not in dom.lower() and "parsererror" not in dom.lower()


def test_dark_theme_and_the_default_name(tiny_run_master, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tiny_run_master), "--theme", "dark"])
    assert result.exit_code == 0, result.output
    target = tmp_path / f"report-{tiny_run_master.name}.html"
    assert f"wrote report-{tiny_run_master.name}.html" in result.output
    assert '<html lang="en" data-theme="dark">' in target.read_text(encoding="utf-8")


def test_the_default_name_of_a_run_given_as_dot_is_the_run_s_name(tiny_run_master, tmp_path,
                                                                    monkeypatch) -> None:
    import shutil

    run = tmp_path / "myrun"
    shutil.copytree(tiny_run_master, run, symlinks=True)
    monkeypatch.chdir(run)
    result = CliRunner().invoke(app, ["report", "."])
    assert result.exit_code == 0, result.output
    assert "wrote report-myrun.html" in result.output
    assert (run / "report-myrun.html").is_file()


@needs_chromium
def test_a_view_shows_one_section_alone(page) -> None:
    dom = chromium("--dump-dom", f"{page.as_uri()}#view=story").stdout
    sections = dict(re.findall(r'<section id="(\w+)"( hidden="")?', dom))
    assert sections["story"] == "" and all(sections[k] for k in sections if k != "story")


def test_the_default_name_never_replaces_a_file_fabric_did_not_write(tiny_run_master, tmp_path,
                                                                     monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    theirs = tmp_path / f"report-{tiny_run_master.name}.html"
    theirs.write_text("my own notes", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(tiny_run_master)])
    assert result.exit_code == 2 and "was not written by fabric;" in result.output
    assert theirs.read_text(encoding="utf-8") == "my own notes"
    theirs.unlink()
    for _ in range(2):  # a page fabric wrote is replaced by the next one
        assert CliRunner().invoke(app, ["report", str(tiny_run_master)]).exit_code == 0


def test_the_page_builder_never_imports_rich_or_typer(tiny_run_master) -> None:
    import sys

    code = (
        "import sys\n"
        "from fabric_cli.chronicle import read_events\n"
        "from fabric_cli.report import build_report\n"
        f"events = list(read_events({str(tiny_run_master / 'chronicle.jsonl')!r}))\n"
        "build_report(events, roles=[], colours={})\n"
        "print(sorted(m for m in ('rich', 'typer') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_diverged_runs_facts_say_when_its_validation_loss_was_measured() -> None:
    """The storm ends with its last probe's losses, long before it tore: the facts line says
    that step, where it read as the run's final validation loss."""
    from synthetic_runs import build_run

    from fabric_cli.report import build_report

    events = build_run(seed=4, diverge_at=120)
    probe = max(e["step"] for e in events if e["type"] == "probe")
    assert probe < 120
    html = build_report(events, roles=[], colours={})
    assert f"validation loss at step {probe:,}</span>" in html
    assert "validation loss at step" not in build_report(build_run(seed=0), roles=[],
                                                         colours={})


def test_the_facts_line_names_a_head_proven_in_two_roles_once() -> None:
    """The default run's facts read 'L0H0 (pronoun), L0H2 (pronoun), L0H0 (verb), L0H2
    (verb), ...': each head now appears once, with every role it was proven in."""
    from synthetic_runs import build_run

    from fabric_cli.report import build_report

    events = build_run(seed=0)
    end = next(e for e in events if e["type"] == "run_end")
    spec = dict(end["specialists"][0])
    end["specialists"] = [{**spec, "layer": 0, "head": 0, "role": "pronoun"},
                          {**spec, "layer": 0, "head": 2, "role": "pronoun"},
                          {**spec, "layer": 0, "head": 0, "role": "verb"},
                          {**spec, "layer": 0, "head": 1, "role": "noun"}]
    html = build_report(events, roles=[], colours={})
    assert "<b>L0H0 (pronoun, verb), L0H2 (pronoun), L0H1 (noun)</b>" in html


def test_a_stopped_runs_facts_say_its_specialists_were_untested_not_none() -> None:
    """An interrupted run's page read 'specialists none proven', though the ablation that
    proves a head never ran."""
    from synthetic_runs import build_run

    from fabric_cli.report import build_report

    events = build_run(seed=0, specialist=False)
    next(e for e in events if e["type"] == "run_end").update(status="interrupted",
                                                              specialists=[])
    html = build_report(events, roles=[], colours={})
    assert "untested: the run stopped before the ablation that proves a head" in html
    assert "none proven" not in html
    assert "none proven" in build_report(build_run(seed=0, specialist=False), roles=[],
                                         colours={})


def test_two_lessons_runs_get_pages_of_their_own_names(tiny_run_master, tmp_path,
                                                        monkeypatch) -> None:
    """`fabric report runs/why-residual/with` wrote report-with.html, and the same command for
    runs/why-clipping/with then replaced it: each lesson's run now names its lesson."""
    import shutil

    for lesson in ("why-residual", "why-clipping"):
        shutil.copytree(tiny_run_master, tmp_path / "runs" / lesson / "with", symlinks=True)
    monkeypatch.chdir(tmp_path)
    for lesson in ("why-residual", "why-clipping"):
        result = CliRunner().invoke(app, ["report", f"runs/{lesson}/with"])
        assert result.exit_code == 0, result.output
        assert f"wrote report-{lesson}-with.html" in result.output
    assert (tmp_path / "report-why-residual-with.html").is_file()
    assert (tmp_path / "report-why-clipping-with.html").is_file()
