"""The second core for elementwise work: a large array's GELU done half in this thread and
half in a helper thread at the same time; and the slicing of a long pass into pieces.

NumPy's elementwise loops run on one core, while the BLAS under the matmuls can use two. On
the large shapes, where two BLAS threads work on a whole batch (a probe's passes: a
training step on two threads is split by its batch instead, nn/batch_halves.py, and each
half runs on one BLAS thread, so nothing here splits again inside it), the GELU of the MLP's
hidden layer (a dozen elementwise passes over the widest array, forward and back) is the
largest such work left on one core. `side_by_side` is the hand-off both use. NumPy lets
go of the GIL inside its loops, so two threads working on two halves run side by side. The
optimizer's passes are memory-bound: over the whole buffer a second thread gained them under
1 ms, but in cache-sized pieces (in_pieces), each half's pieces in its own core's cache, they
take 14.2 -> 11.2 ms of a large step (the optimizer's own time inside 12 alternating rounds of
10 whole steps). That holds only while OpenBLAS's second thread sleeps between products
(OPENBLAS_THREAD_TIMEOUT, fabric_cli/__init__.py): spinning for its default 0.1 s after the
backward it held the other core, and the split took 17.0 ms against 16.0 whole.

Nothing changes in the numbers: each element is computed by the same operations in the same
order whichever half it lies in (tests/test_speed.py checks bit-equality). Work is split only
when it is worth a hand-off: at least MIN_ELEMENTS elements (a hand-off costs ~0.1 ms; the
default Fabric's (768, 256) GELU took 0.22 ms on one thread and 0.33 ms split; the large
preset's (1024, 1024) took 1.39 ms and 0.67 ms) and BLAS already allowed two threads (the
machine has a core to spare: on a busy machine the tuner keeps one, and so does this).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from fabric_cli.nn.blas import blas_threads

L = TypeVar("L")
U = TypeVar("U")

MIN_ELEMENTS = 1 << 19  # 524,288: the large preset's MLP hidden layer (1024 x 1024) qualifies
_helper: ThreadPoolExecutor | None = None


def worth_splitting(elements: int) -> bool:
    """True when `elements` is large enough and two BLAS threads are in use."""
    return elements >= MIN_ELEMENTS and (blas_threads() or 1) >= 2


def in_pieces(work: Callable[[slice], object], n: int, piece: int) -> None:
    """Call work over 0..n in consecutive slices of at most `piece`."""
    for start in range(0, n, piece):
        work(slice(start, min(start + piece, n)))


def side_by_side(lower: Callable[[], L], upper: Callable[[], U]) -> tuple[L, U]:
    """Run `upper` in the helper thread while `lower` runs in this one; both results.

    The helper works under this thread's NumPy error state (a training run silences the
    overflow of a tearing Fabric; a new thread would warn on the user's stderr). If `lower`
    fails (or Ctrl-C arrives), `upper` is still waited for, since both may write the same
    arrays, and then the failure goes on; a failure of `upper` is raised here."""
    global _helper
    if _helper is None:
        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fabric-half")
    errors = np.geterr()

    def upper_here() -> U:
        with np.errstate(**errors):
            return upper()

    future = _helper.submit(upper_here)
    try:
        first = lower()
    except BaseException:
        future.exception()  # waits for the helper, whatever it did
        raise
    return first, future.result()


def in_halves(work: Callable[[slice], object], n: int, elements: int | None = None) -> None:
    """Call work(slice) over the whole index range 0..n: in two halves at once when
    `worth_splitting(elements)` (elements defaults to n), otherwise once with the whole.
    `work` must touch only its slice of whatever it writes."""
    if n < 2 or not worth_splitting(n if elements is None else elements):
        work(slice(0, n))
        return
    middle = n // 2
    side_by_side(lambda: work(slice(0, middle)), lambda: work(slice(middle, n)))
