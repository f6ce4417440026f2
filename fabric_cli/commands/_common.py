"""What every command shares: the consoles, the error wrapper, literal user text, and a
terminal that does not spell out Ctrl-C under a live picture.

Only `commands/` and `views/` may import rich or typer.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.text import Text

from fabric_cli.errors import FabricError
from fabric_cli.views.palette import literal  # one definition, shared with the views

# The options every drawing command shares: where to save its picture, and in which palette.
ExportOption = Annotated[Path | None, typer.Option(
    "--export", help="Also save the picture to FILE.svg, .html or .txt (100 columns wide).")]
ThemeOption = Annotated[str | None, typer.Option(
    "--theme", help="Palette of an .svg or .html export: light (for paper, the default) or "
    "dark.")]

F = TypeVar("F", bound=Callable[..., Any])


def quiet_control_echo(stream) -> Callable[[], None] | None:
    """Stop the terminal echoing Ctrl-C as "^C" while the picture is drawn; returns what
    puts the echo back (None when the stream is no terminal).

    A live picture (the training dashboard, `fabric why`'s bars) leaves its cursor at the end
    of its last line: the echoed "^C" wrapped onto a new line, the screen scrolled, and the
    next frame was drawn one line lower, leaving the old frame's last line stranded above
    the final one.
    Typed keys are still echoed; only control characters are not spelled out."""
    try:
        import termios
    except ImportError:  # Windows: no such echo
        return None
    try:
        fd = stream.fileno()
        if not os.isatty(fd):
            return None
        before = termios.tcgetattr(fd)
        quiet = list(before)
        quiet[3] &= ~termios.ECHOCTL
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except (AttributeError, ValueError, OSError, termios.error):
        return None

    def restore() -> None:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, before)
        except (ValueError, OSError, termios.error):
            pass

    return restore


class PlainUsage(typer.core.TyperCommand):
    """A command whose usage line names a required argument plainly (SENTENCE), not in the
    braces typer puts around it ({SENTENCE}), which read like a literal to type."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]

def literal_text(text: str, style: str = "") -> Text:
    """A rich Text that shows `text` exactly: markup like [bold] stays visible, never styles."""
    return Text(literal(text), style=style)


def paragraph_text(paragraph: str, style: str = "") -> Text:
    """A narrator's paragraph with its *inner lines* in italics; nothing else is interpreted."""
    text = Text(style=style)
    for i, part in enumerate(literal(paragraph).split("*")):
        text.append(part, style="italic" if i % 2 else "")
    return text


class _Stdout(Console):
    """rich ends the process with exit 1 when the reader of a pipe goes away (`fabric heads
    | head -3`); here the output goes quiet and BrokenPipeError is raised instead, which
    `cli_errors` ends with exit 0 and `fabric train`'s ticker answers by saving and stopping."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def stdout_console() -> Console:
    return _Stdout(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


_told = {"interruption": False}


def told_interruption(now: bool = False) -> bool:
    """Whether the user has been told of a Ctrl-C; `now=True` records that they just were.
    (typer turns a Ctrl-C that lands while it parses the command line into a silent exit
    130; `cli.main` says the line then, unless a command already said its own.)"""
    _told["interruption"] = _told["interruption"] or now
    return _told["interruption"]


def fail(message: str, exit_code: int = 2) -> typer.Exit:
    """Print `fabric: error: message` on stderr and return the Exit to raise."""
    if exit_code == 130:
        told_interruption(now=True)
    err = stderr_console()
    # a terminal gets it wrapped between words (it would break them: 'checkpoi/nt'); a pipe
    # or a log, one line
    err.print(Text("fabric: error: ", style="bold red") + literal_text(message),
              soft_wrap=not err.is_terminal)
    return typer.Exit(exit_code)


def warn(message: str) -> None:
    err = stderr_console()
    err.print(Text("fabric: warning: ", style="yellow") + literal_text(message),
              soft_wrap=not err.is_terminal)


def cli_errors(func: F) -> F:
    """Turn every failure of a command into one line on stderr and an exit code.

    FabricError -> its message, exit 2 (or its own code). Ctrl-C -> exit 130. Anything else is
    a bug: one line naming it, exit 1; FABRIC_DEBUG=1 shows the traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except FabricError as exc:
            raise fail(exc.message, exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `fabric corpus | head`): stop quietly.
            _silence_stdout()
            raise typer.Exit(0) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a path typed too long: the system says no
                name = literal(str(exc.filename or ""))
                raise fail(f"{name[:60]}{'…' if len(name) > 60 else ''}: the name is too long "
                           "for the file system; choose a shorter one") from None
            if exc.errno not in _FULL:  # fabric's own files say so themselves (FabricError)
                raise _internal(exc) from None
            # the output itself could not be written: `fabric narrate > story.txt`, disk full
            _silence_stdout()
            space = "free some space, or " if exc.errno != errno.EIO else ""
            raise fail(f"cannot write the output: {exc.strerror}; {space}send the output "
                       "elsewhere", 1) from None
        except Exception as exc:  # noqa: BLE001 - the user must never see a traceback
            raise _internal(exc) from None

    return wrapper  # type: ignore[return-value]


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _internal(exc: Exception) -> typer.Exit:
    if os.environ.get("FABRIC_DEBUG"):
        traceback.print_exception(exc)
    return fail(f"internal error: {type(exc).__name__}: {exc} "
                "(this is a bug in fabric; FABRIC_DEBUG=1 shows the traceback)", 1)


def _silence_stdout() -> None:
    """Nothing more to stdout, not even the flush at exit (which would fail again)."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    except OSError:
        pass
