"""The live picture from frame to frame, as a learner watching `fabric train` sees it: no
sentence cut off silently in the Moments panel, the same gradient panel and legend from the
first frame to the last, and a clean screen after Ctrl-C."""

from __future__ import annotations

import re

import pytest
from test_pictures import board_after_a_run
from test_views import assert_fits, lines_of, one_hot_rows, render

from fabric_cli.views.ticker import moments_panel

LONG = "Flat: steps 416 to 520, I hover around 1.4 while the heads sort out who is who."


def panel_text(out: str, title: str = "Moments") -> list[str]:
    """The text inside the panel with this title (its frame and padding taken off)."""
    rows = lines_of(out)
    top = next(i for i, row in enumerate(rows) if f"─ {title} " in row)
    left = rows[top].rindex("╭", 0, rows[top].index(f"─ {title} "))
    body = []
    for row in rows[top + 1:]:
        if row[left] == "╰":
            break
        body.append(row[left + 1:].split("│")[0].strip())
    return body


def assert_cut_between_words(body: list[str], sentence: str) -> None:
    shown = " ".join(body)
    assert shown.endswith("…"), f"cut off without an ellipsis: {body}"
    said = sentence.split()
    words = shown[shown.index(said[0]):-1].split()
    assert words[:-1] == said[:len(words) - 1], body
    assert said[len(words) - 1].startswith(words[-1]) and \
        said[len(words) - 1].rstrip(",.:;") == words[-1].rstrip(",.:;"), \
        f"a word cut in half: {body}"


@pytest.mark.parametrize(("width", "lines"), ((42, 3), (42, 4), (60, 3), (30, 4)))
def test_a_moment_too_long_for_its_panel_ends_at_a_word_with_an_ellipsis(width: int,
                                                                       lines: int) -> None:
    out = render(moments_panel([(521, "loss", LONG)], width, lines), width)
    assert len(lines_of(out)) == lines
    assert_cut_between_words(panel_text(out), LONG)


def test_the_80x24_picture_says_when_the_newest_moment_goes_on() -> None:
    board = board_after_a_run(3)  # three layers and a twelve-word story, as in pronouns
    words = "<bos> the professor thanked the king after she finished her lecture .".split()
    board.set_head(0, 0, words, one_hot_rows(len(words), (7, 2), 0.8), score=0.9,
                   mark=[(7, 2), (9, 2)])
    board.add_moment("loss", LONG, step=521)
    out = render(board, 80, height=24)
    assert len(lines_of(out)) <= 24
    assert_fits(out, 80)
    body = [row for row in panel_text(out) if row]
    assert len(body) < 4  # the sentence needs more lines than the panel has
    assert_cut_between_words(body, LONG)


def test_a_moment_that_fits_is_shown_whole_without_an_ellipsis() -> None:
    out = render(moments_panel([(521, "loss", "Flat at 1.4.")], 42, 3), 42)
    assert panel_text(out) == ["521 Loss Flat at 1.4."]
    assert not re.search("…", out)


SPECIALIST = ("Step 1,400, proven a verb head (score 0.931): silenced, the loss on the words "
              "after my role went from 1.22 to 1.41 nats.")


def pronouns_board():
    """Three layers and a twelve-word story, as the pronouns run has."""
    board = board_after_a_run(3)
    words = "<bos> the professor thanked the king after she finished her lecture .".split()
    board.set_head(0, 0, words, one_hot_rows(len(words), (7, 2), 0.8), score=0.9,
                   mark=[(7, 2), (9, 2)])
    return board


@pytest.mark.parametrize(("width", "height"), ((120, 40), (100, 40), (90, 60)))
def test_the_last_frame_keeps_the_gradient_sum_rows_of_the_frames_before(width: int,
                                                                        height: int) -> None:
    board = pronouns_board()
    before = render(board, width, height=height)
    for head in range(5):  # the specialist moments, long ones, all at the last step
        board.add_moment("head", f"L0H{head}: {SPECIALIST}", step=1400)
    after = render(board, width, height=height)
    assert len(lines_of(after)) <= height
    assert_fits(after, width)
    for frame in (before, after):
        legend = next(row for row in lines_of(frame) if "━ " in row and "█ " in row)
        assert "↓ sum" in frame and "░ " in legend and "(log scale)" in frame
    assert "L0H4" in after  # the newest moment is shown


def terminal_rows(output: str, width: int, height: int) -> list[str]:
    """What a terminal holds (scrollback and screen) after this output: just enough of a
    VT100 for the live picture (text with its pending wrap, CR, LF, cursor up, erase line);
    colours and cursor visibility ignored."""
    rows = [[" "] * width]
    top = row = col = 0

    def down() -> None:
        nonlocal row, top
        row += 1
        if row == len(rows):
            rows.append([" "] * width)
        top = max(top, row - height + 1)

    for m in re.finditer(r"\x1b\[([?0-9;]*)([A-Za-z])|\x1b[()][A-Z0-9]|[\r\n]|[^\x1b\r\n]", output):
        text, code = m.group(0), m.group(2)
        if code == "A":
            row, col = max(top, row - int(m.group(1) or 1)), min(col, width - 1)
        elif code == "K":
            rows[row] = [" "] * width
        elif code or text.startswith("\x1b"):
            continue
        elif text == "\r":
            col = 0
        elif text == "\n":
            down()
        elif text.isprintable():
            if col == width:  # the pending wrap
                down()
                col = 0
            rows[row][col] = text
            col += 1
    return ["".join(r).rstrip() for r in rows]


def ctrl_c_in_a_terminal(argv: list[str], pressed_after: bytes, times: int,
                         cwd=None) -> tuple[int, list[str]]:
    """Run `python -m fabric_cli ARGV` in an 80x24 pseudo-terminal, type Ctrl-C once its
    output holds `pressed_after` `times` times; its exit code and what the terminal shows."""
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def own_terminal() -> None:  # the pty is the child's terminal: Ctrl-C reaches it
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", NO_COLOR="1")
    child = subprocess.Popen([sys.executable, "-m", "fabric_cli", *argv], cwd=cwd,
                             stdin=slave, stdout=slave, stderr=slave, env=env,
                             preexec_fn=own_terminal)
    os.close(slave)
    output, pressed, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        if not pressed and output.count(pressed_after) >= times:
            os.write(master, b"\x03")  # Ctrl-C, typed into the terminal
            pressed = True
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif child.poll() is not None:
            break
    os.close(master)
    code = child.wait(timeout=30)
    assert pressed, output.decode("utf-8", "replace")[-2000:]
    return code, terminal_rows(output.decode("utf-8", "replace"), 80, 24)


def test_ctrl_c_leaves_one_clean_final_frame_in_an_80x24_terminal(tmp_path) -> None:
    code, rows = ctrl_c_in_a_terminal(["train", "-s", "tiny", "--steps", "3000", "--run-dir",
                                       str(tmp_path / "run")], "fabric train ·".encode(), 3)
    assert code == 130
    headers = [r for r in rows if r.startswith("fabric train ·")]
    assert len(headers) == 1, "\n".join(rows)  # no stale progress line above the last frame
    assert "^C" not in "\n".join(rows)
    assert any(r.startswith("Interrupted at step") for r in rows)


def test_ctrl_c_under_the_lessons_bars_leaves_each_bar_once(tmp_path) -> None:
    """`fabric why` draws a bar a run; Ctrl-C in the middle of the first leaves that bar
    once, where the echoed "^C" used to strand an old copy of it above the last."""
    code, rows = ctrl_c_in_a_terminal(["why", "clipping"], b"/with ", 12, cwd=tmp_path)
    assert code == 130, "\n".join(rows)
    bars = [r for r in rows if r.startswith("runs/why-clipping/with ")]
    assert len(bars) == 1, "\n".join(rows)
    assert "^C" not in "\n".join(rows)
    assert any(r.startswith("Interrupted runs/why-clipping/with at step") for r in rows)
