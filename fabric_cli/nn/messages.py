"""fabric's own child processes (the probe worker, the batch's upper half): how one starts,
the messages between it and its parent, and its end. A message is a length, then bytes; JSON
for anything but raw weights, numbers exact (NaN allowed). Nothing is pickled.

    proc = start_child("fabric_cli.training.probe_worker")      # the parent
    write_message(proc.stdin.fileno(), encode({"kind": "probe", ...}))
    answers, requests = protocol_pipes()                        # the child, first thing
    request = json.loads(read_message(requests))
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

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


def start_child(module: str, *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start `python -m module` as a child on one BLAS thread, in a session of its own (Ctrl-C
    at the terminal reaches only the parent), its stdin and stdout the message pipes. It runs
    this very fabric_cli: `-P` keeps the working directory (a checkout beside an installed
    copy, say) off its path, and ours goes first instead. OSError if it cannot start."""
    ours = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (ours, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen([sys.executable, "-P", "-m", module], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
                            start_new_session=True, pass_fds=pass_fds, env=env)


def protocol_pipes() -> tuple[int, int]:
    """In the child: (where answers go, where requests come from). The protocol owns the real
    stdout; anything else printed goes nowhere."""
    answers = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    return answers, sys.stdin.fileno()


def error_answer(exc: BaseException) -> bytes:
    """What a child says when it cannot answer; its parent then does the work itself."""
    return encode({"error": f"{type(exc).__name__}: {exc}"})


def unflatten(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Views of one flat array as named arrays of these shapes, in this order (the order the
    sender concatenated them in). ValueError if they do not fill it exactly."""
    arrays, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        arrays[name] = flat[start:start + size].reshape(shape)
        start += size
    if start != flat.size:
        raise ValueError("the weights do not fit the model")
    return arrays
