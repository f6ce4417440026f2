"""The report's pictures as a reader judges them: marks that stand out and say what they
mean, numbers that fit their margin and agree with the words beside them, a page that fits a
phone and prints on white paper, and text from a scenario shown as written.

The browser tests run only where Chromium is installed; they skip cleanly elsewhere."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from report_helpers import chromium, needs_chromium, page_data, with_data
from typer.testing import CliRunner

from fabric_cli.cli import app
from fabric_cli.report.data import decode_pattern, encode_pattern


@pytest.fixture(scope="module")
def page(tiny_run_master, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("report") / "tiny.html"
    result = CliRunner().invoke(app, ["report", str(tiny_run_master), "-o", str(target)])
    assert result.exit_code == 0, result.output
    return target


@needs_chromium
def test_a_description_that_looks_like_markup_never_breaks_the_page(tiny_run_master,
                                                                    tmp_path) -> None:
    from fabric_cli.chronicle import read_events
    from fabric_cli.report import build_report

    events = list(read_events(tiny_run_master / "chronicle.jsonl"))
    start = next(e for e in events if e.get("type") == "run_start")
    start["description"] = "Mine <!--<script> and </script> too"
    target = tmp_path / "odd.html"
    target.write_text(build_report(events, roles=[], colours={}), encoding="utf-8")
    dom = chromium("--dump-dom", target.as_uri()).stdout
    assert 'data-ready="1"' in dom  # the timeline's script ran: the data did not swallow it
    assert dom.count('class="heatmap"') == len(page_data(target)["sentences"]) > 0
    assert "Mine &lt;!--&lt;script&gt; and &lt;/script&gt; too" in dom  # shown as written
    assert page_data(target)["run"]["description"] == start["description"]


def test_control_characters_in_a_description_are_dropped_as_in_the_terminal(tiny_run_master):
    from fabric_cli.chronicle import read_events
    from fabric_cli.report import build_report

    events = list(read_events(tiny_run_master / "chronicle.jsonl"))
    start = next(e for e in events if e.get("type") == "run_start")
    start["description"] = "Mine \x1b[31mred\x07 and\tmore"
    page = build_report(events, roles=[], colours={}).split('<script id="data"')[0]
    assert '<p class="muted">Mine [31mred and more</p>' in page  # no empty box where \x1b was
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", page)


def test_a_head_proven_in_two_roles_shows_both_in_the_role_map() -> None:
    from fabric_cli.report import page

    rows = [{"layer": 0, "head": 0, "role": "pronoun", "score": 0.91, "specialist": True},
            {"layer": 0, "head": 1, "role": "diffuse", "score": 0.2, "specialist": False}]
    proven = [{"layer": 0, "head": 0, "role": "pronoun"}, {"layer": 0, "head": 0, "role": "verb"}]
    html = page.role_map(rows, 1, 2, [], proven)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    # the facts line names L0H0 for pronoun and for verb: the map must not hide the verb
    assert "pronoun" in cells[0] and re.search(r"also proven <span[^>]*>verb</span> ★", cells[0])
    assert "also" not in cells[1]


@needs_chromium
def test_the_timeline_has_a_key_whose_colours_are_the_maps(page) -> None:
    dom = chromium("--dump-dom", f"{page.as_uri()}#view=timeline").stdout
    key = re.search(r'<div id="legend"[^>]*>(.*?)</div>', dom, re.DOTALL).group(1)
    swatches = re.findall(r'fill="(rgb\([\d,]+\))" data-w="([\d.]+)"', key)
    assert swatches[0][1] == "0" and swatches[-1][1] == "1"
    full = re.findall(r'fill="(rgb\([\d,]+\))" data-w="1.000"', dom)  # <bos> looks at itself
    assert full and swatches[-1][0] == full[0]  # the key's "1" is the map's colour for 1
    for mark in ("▶", "outlined", "×", "lines"):
        assert mark in key


@needs_chromium
def test_a_dark_page_prints_in_the_paper_palette(tiny_run_master, tmp_path) -> None:
    target = tmp_path / "dark.html"
    result = CliRunner().invoke(app, ["report", str(tiny_run_master), "-o", str(target),
                                      "--theme", "dark"])
    assert result.exit_code == 0, result.output
    printing = ("<script>window.addEventListener('load',function(){"
                "window.dispatchEvent(new Event('beforeprint'));});</script></body>")
    target.write_text(target.read_text(encoding="utf-8").replace("</body>", printing),
                      encoding="utf-8")
    dom = chromium("--dump-dom", target.as_uri()).stdout
    assert re.search(r'<html lang="en" data-theme="light"', dom)  # the page's inks for paper
    key = re.search(r'<div id="legend"[^>]*>(.*?)</div>', dom, re.DOTALL).group(1)
    swatches = {w: tuple(map(int, rgb.split(","))) for rgb, w in
                re.findall(r'fill="rgb\(([\d,]+)\)" data-w="([\d.]+)"', key)}
    # on paper no attention is the palest cell and all of it the darkest, as the key says
    assert sum(swatches["0"]) > 600 and sum(swatches["1"]) < 150, swatches


# Appended to a copy of the page: its print rules applied on screen, then the words a reader
# of the printed timeline controls would see written into the body.
_AS_PRINTED = (
    "<script>window.addEventListener('load',function(){var css='';"
    "Array.prototype.forEach.call(document.styleSheets,function(sheet){"
    "Array.prototype.forEach.call(sheet.cssRules,function(rule){"
    "if(rule.media&&rule.media.mediaText==='print')"
    "Array.prototype.forEach.call(rule.cssRules,function(r){css+=r.cssText;});});});"
    "var style=document.createElement('style');style.textContent=css;"
    "document.head.appendChild(style);"
    "document.body.setAttribute('data-printed',"
    "document.querySelector('.controls').innerText.replace(/\\s+/g,' ').trim());});</script>"
    "</body>")


@needs_chromium
def test_the_printed_timeline_shows_its_step_and_no_orphan_labels(page, tmp_path) -> None:
    printed = tmp_path / "printed.html"
    printed.write_text(page.read_text(encoding="utf-8").replace("</body>", _AS_PRINTED),
                       encoding="utf-8")
    dom = chromium("--dump-dom", printed.as_uri()).stdout
    words = re.search(r'data-printed="([^"]*)"', dom).group(1)
    # on paper there is no slider to move and no list to choose from: "probe" and "head"
    # would label nothing
    assert re.fullmatch(r"step [\d,]+ of [\d,]+", words), words


def test_a_storms_loss_charts_label_their_axes_within_the_margin() -> None:
    from fabric_cli.report import page

    steps = list(range(1, 38))  # a run that tore: the loss swells to 3e11 nats
    loss = [5.1 * 2.1 ** s for s in steps]
    html = page.loss_charts({"steps": steps, "loss": loss}, [(0, 5.1)], 1.226)
    for chart in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        ticks = [(float(y), label) for y, label in re.findall(
            r'<text class="tick" x="[\d.]+" y="([\d.]+)" text-anchor="end">([^<]*)</text>',
            chart)]
        assert len(ticks) >= 3
        for _, label in ticks:  # 11px digits, about 7px each, in the margin left of the axis
            assert len(label) * 7 <= page.PAD_L - 6, label
        ys = sorted(y for y, _ in ticks)
        assert min(b - a for a, b in pairwise(ys)) >= 12  # no label sits on another
    top = re.findall(r'text-anchor="end">([^<]*)</text>', html)
    assert float(top[4]) == pytest.approx(max(loss), rel=0.05)  # "3.4e11", not "0000.00"


@needs_chromium
def test_a_near_tie_is_written_with_the_digit_that_tells_it_apart(page, tmp_path) -> None:
    data = page_data(page)
    sentence = next(i for i, s in enumerate(data["sentences"]) if s["pronouns"])
    tokens = data["sentences"][sentence]["tokens"]
    pronoun, antecedent = data["sentences"][sentence]["pronouns"][0]
    rival = next(k for k in range(pronoun + 1) if k != antecedent)
    probe = data["timeline"][-1]
    pattern = decode_pattern(probe["patterns"][sentence]["0.0"], len(tokens))
    # the rival 0.133, the antecedent 0.129 (both "0.13"), the other words far below
    pattern[pronoun] = [34 / 255 if k == rival else 33 / 255 if k == antecedent else 0.01
                        for k in range(pronoun + 1)] + [0.0] * (len(tokens) - pronoun - 1)
    probe["patterns"][sentence]["0.0"] = encode_pattern(pattern)
    near = with_data(page, data, tmp_path / "near.html")
    dom = chromium("--dump-dom", f"{near.as_uri()}#step={probe['step']}&head=0.0").stdout
    from html import escape

    said = re.search(rf"looks hardest at “{re.escape(escape(tokens[rival], quote=False))}” "
                     rf"\(([\d.]+)\); its antecedent “"
                     rf"{re.escape(escape(tokens[antecedent], quote=False))}” gets ([\d.]+)", dom)
    assert said, re.findall(r"looks hardest[^<]*", dom)
    assert float(said.group(1)) > float(said.group(2))  # "hardest" agrees with its numbers


def _contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    def lum(rgb: tuple[float, ...]) -> float:
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
               for c in (v / 255 for v in rgb)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@needs_chromium
def test_the_cross_on_a_wrong_pick_stands_out_from_its_cell(page, tmp_path) -> None:
    text = page.read_text(encoding="utf-8")
    bad = re.search(r"--bad: #(\w{6})", text).group(1)
    ink = tuple(int(bad[i : i + 2], 16) for i in (0, 2, 4))
    data = page_data(page)  # a head sure of the wrong word: all of a pronoun's row on <bos>
    sentence = next(i for i, s in enumerate(data["sentences"]) if s["pronouns"])
    tokens, (pronoun, _) = data["sentences"][sentence]["tokens"], \
        data["sentences"][sentence]["pronouns"][0]
    probe = data["timeline"][-1]
    pattern = decode_pattern(probe["patterns"][sentence]["0.0"], len(tokens))
    pattern[pronoun] = [1.0] + [0.0] * (len(tokens) - 1)
    probe["patterns"][sentence]["0.0"] = encode_pattern(pattern)
    sure = with_data(page, data, tmp_path / "sure.html")
    dom = chromium("--dump-dom", f"{sure.as_uri()}#step={probe['step']}&head=0.0").stdout
    cells = {(float(x), float(y)): tuple(map(int, rgb.split(","))) for x, y, rgb in
             re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="17" height="17" '
                        r'fill="rgb\(([\d,]+)\)"', dom)}
    crosses = re.findall(r'<text [^>]*class="pick"[^>]*>', dom)
    assert crosses
    for tag in crosses:
        x, y = (float(re.search(f' {k}="([\\d.]+)"', tag).group(1)) for k in "xy")
        cell = cells[(x - 9, y - 13)]  # the × sits in the middle of the cell it marks
        # the row's strongest cell is the darkest on paper: red on it must wear a halo
        halo = 'stroke="var(--bg)"' in tag and 'paint-order="stroke"' in tag
        assert _contrast(ink, cell) >= 3 or halo, (tag, cell)


# Appended to a copy of the page: after the page has drawn, the body names every picture,
# card or table whose right edge runs past the screen's.
_MEASURE_WIDTH = (
    "<script>window.addEventListener('load',function(){var w=document.documentElement"
    ".clientWidth,out=[];document.querySelectorAll('.sentence,svg,table,figure')"
    ".forEach(function(e){if(e.getBoundingClientRect().right>w+1)out.push(e.tagName);});"
    "document.body.setAttribute('data-past-edge',out.join(' ')||'none');});</script></body>")


@needs_chromium
def test_on_a_phone_nothing_in_the_timeline_runs_past_the_screen(page, tmp_path) -> None:
    narrow = tmp_path / "narrow.html"
    narrow.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE_WIDTH),
                      encoding="utf-8")
    dom = chromium("--dump-dom", "--window-size=420,2000", narrow.as_uri()).stdout
    assert 'data-ready="1"' in dom
    assert 'data-past-edge="none"' in dom, re.findall(r'data-past-edge="[^"]*"', dom)


@needs_chromium
def test_every_picture_tells_a_screen_reader_what_it_is(page) -> None:
    dom = chromium("--dump-dom", page.as_uri()).stdout
    pictures = re.findall(r'<svg [^>]*role="img"[^>]*>', dom)
    assert len(pictures) >= 2 + 2 * len(page_data(page)["sentences"]) + 1  # charts, maps, flow
    for svg in pictures:
        assert re.search(r'aria-label="[^"]{12,}"', svg), svg


def test_the_role_map_never_calls_all_what_is_not_all() -> None:
    """The terminal's head map reads a zeroed head's 0.996 -> 0.004 as 'acc 99.6%→0.4%'; the
    page's cell and ablation table said '100% → 0%', a head that changed nothing."""
    from fabric_cli.report import page

    zeroed = {"loss_before": 1.2, "loss_after": 1.85, "acc_before": 0.996, "acc_after": 0.004}
    rows = [{"layer": 0, "head": 0, "role": "pronoun", "specialist": True, "score": 0.9,
             "ablation": zeroed}]
    html = page.role_map(rows, 1, 1, [{"heads": [[0, 0]], "role": "pronoun", **zeroed}])
    assert html.count("99.6% → 0.4%") == 2, html
    assert "100%" not in html and " 0%" not in html, html
