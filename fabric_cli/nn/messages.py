"""Messages between fabric's own processes: a length, then bytes; JSON for anything but raw
weights, numbers exact (NaN allowed). Nothing is pickled. And the end of such a process.

    write_message(fd, encode({"kind": "probe", ...}))
    answer = json.loads(read_message(fd))
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

_LENGTH = 8  # bytes of the big-endian length before every message


def _exact(value: Any) -> Any:
    """JSON's `default`: numpy scalars and arrays as Python numbers and lists, unrounded."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__}")


def encode(message: dict) -> bytes:
    return json.dumps(message, default=_exact, allow_nan=True).encode("utf-8")


def write_message(fd: int, payload: bytes) -> None:
    data = len(payload).to_bytes(_LENGTH, "big") + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_message(fd: int) -> bytes:
    """The next whole message; EOFError when the other side has closed the pipe."""
    def exactly(n: int) -> bytes:
        parts, left = [], n
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError("the other side closed the pipe")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    return exactly(int.from_bytes(exactly(_LENGTH), "big"))


def stop_process(proc: subprocess.Popen) -> None:
    """Kill a child of ours (it holds nothing worth keeping), close its pipes, reap it."""
    try:
        proc.kill()
    except OSError:
        pass
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass
    proc.wait()
