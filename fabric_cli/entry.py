"""The `fabric` program's first lines: Ctrl-C is one line from the very first instant.

The commands import typer, rich and numpy (about 0.4 s); a Ctrl-C in that time would print a
KeyboardInterrupt traceback. So the handler is installed here, before anything heavy is
imported, and `fabric_cli.cli` is imported only then. It uses the C module `_signal`, not
`signal`: importing `signal` builds its enums (about 10 ms), itself a window for a traceback.
"""

import _signal
import os
import sys

INTERRUPTED = b"fabric: error: interrupted\n"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    os.write(2, INTERRUPTED)
    os._exit(130)


def main() -> None:
    if sys.stdout is None:  # started with stdout closed (`fabric … >&-`): print to nowhere
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the whole process
    for stream in (sys.stdout, sys.stderr):  # an ASCII or Latin-1 terminal: "?" for "“", "★"
        if stream is not None and hasattr(stream, "reconfigure") and \
                (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(errors="replace")
    try:
        previous = _signal.signal(_signal.SIGINT, _interrupted_while_starting)
    except KeyboardInterrupt:  # one that came before: installing a handler runs it first
        os.write(2, INTERRUPTED)
        os._exit(130)
    try:
        from fabric_cli import cli
    except KeyboardInterrupt:  # pragma: no cover - only if the handler was replaced
        os.write(2, INTERRUPTED)
        os._exit(130)
    # From here on Ctrl-C raises KeyboardInterrupt again, which every command turns into
    # one line (commands/_common.cli_errors; `fabric train` stops between steps).
    _signal.signal(_signal.SIGINT,
                   previous if callable(previous) else _signal.default_int_handler)
    try:
        cli.main()
    except KeyboardInterrupt:
        os.write(2, INTERRUPTED)
        sys.exit(130)
