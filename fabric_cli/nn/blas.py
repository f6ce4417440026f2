"""How many threads the BLAS under NumPy may use, read and changed while the process runs.

fabric_cli/__init__.py starts every process with one BLAS thread (OPENBLAS_NUM_THREADS=1
unless the user set it): a default run gives its second core to the probe worker (see
TUNE_ABOVE_FLOPS), and on a busy machine spinning threads make a step far slower.
Larger shapes gain from both cores, so the count is changed at run time through OpenBLAS's
own openblas_set_num_threads (found with ctypes in the library NumPy loaded; the pool grows
on demand), and chosen per shape by timing steps (see `ThreadTuner`). On two threads a
training step runs in two halves of its batch, one per core, each on one BLAS thread
(nn/batch_halves.py), and everything else (the optimizer, the probes) on two.

The count changes the numbers in their last bits: on two threads a weight's gradient is
the sum of the two halves' products where one thread makes one product (and besides, on AMD
EPYC's Zen kernels OpenBLAS divides the sum along k of a long product between its threads;
on Intel's it divides only the output). So the count is never changed inside a
run's training: the trainer chooses it on rehearsal steps that touch nothing of the run (see
`ThreadTuner.rehearse`), trains on that count alone, and records it in each checkpoint so a
resume trains on the same one (bit-exact resume holds for a given count;
tests/test_speed.py checks that 1 and 2 threads agree to rounding). Any other BLAS, or none
found: `blas_threads()` is None and nothing is changed.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import time
from collections.abc import Callable

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")
_lib: tuple | None = None  # (setter, getter) once found; () when there is none


def _openblas() -> tuple:
    global _lib
    if _lib is not None:
        return _lib
    import numpy  # noqa: F401  (the library must be loaded to be found)

    _lib = ()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        return _lib
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            _lib = (setter, getter)
            break
    return _lib


def blas_threads() -> int | None:
    """The BLAS's current thread count, or None when it cannot be read (not OpenBLAS)."""
    lib = _openblas()
    return int(lib[1]()) if lib else None


def set_blas_threads(n: int) -> bool:
    """Use n BLAS threads from now on; False when the BLAS cannot be told."""
    lib = _openblas()
    if not lib or n < 1:
        return False
    lib[0](int(n))
    return True


def choose_threads(step: Callable[[], object], candidates: tuple[int, ...] = (1, 2),
                   trials: int = 3, step_flops: float | None = None) -> dict:
    """Time `step` at each thread count, interleaved (1, 2, 1, 2, ...), and keep the fastest
    median, as the trainer's ThreadTuner does (a count 1.5x slower than the best after one
    round is dropped). With `step_flops`, nothing is tried below TUNE_ABOVE_FLOPS, the
    trainer's rule; without, every size is timed (`fabric bench`, a bare step with no probes
    to share the machine with). Returns {"threads": chosen, "ms": {count: median ms}}."""
    tuner = ThreadTuner(TUNE_ABOVE_FLOPS if step_flops is None else step_flops, candidates,
                        trials)
    report = tuner.rehearse(step)
    return {"threads": report["threads"], "ms": {int(n): ms for n, ms in report["ms"].items()}}


# Below this many FLOPs a training run keeps one BLAS thread, and so does any run whose probes
# go to their own process (training/probe_flow.py), the second core being theirs: on a 2-core
# AMD EPYC the default `fabric train` took 33.8 s that way against 43.7 s on two threads
# with its probes back in the loop (3 alternating runs each), and twelve layers 76 s against
# 116-125 s (scripts/bench_train.py; training/trainer.py `_choose_threads`). Above it, a run
# without that process times rehearsal steps at each count and keeps the faster.
TUNE_ABOVE_FLOPS = 1e9


class ThreadTuner:
    """Chooses the BLAS thread count from timed steps: step i runs at
    candidates[i % len(candidates)] until each count has `trials` timings, then the count
    with the fastest median is kept for the rest of the run. The count can change the
    numbers (see the module's note), so the steps timed are rehearsals, never the run's."""

    def __init__(self, step_flops: float, candidates: tuple[int, ...] = (1, 2),
                 trials: int = 3) -> None:
        self.active = step_flops >= TUNE_ABOVE_FLOPS and blas_threads() is not None
        self.candidates = candidates
        self.trials = trials
        self.times: dict[int, list[float]] = {n: [] for n in candidates}
        self.found = blas_threads()  # the count before this tuner changed it
        self.chosen: int | None = None if self.active else self.found
        self._current: int | None = None

    def before_step(self) -> None:
        if not self.active or self.chosen is not None:
            return
        done = sum(len(t) for t in self.times.values())
        self._current = self.candidates[done % len(self.candidates)]
        set_blas_threads(self._current)

    def after_step(self, seconds: float) -> None:
        if not self.active or self.chosen is not None or self._current is None:
            return
        self.times[self._current].append(seconds)
        timed = [n for n in self.candidates if self.times[n]]
        if len(timed) == len(self.candidates) and all(len(self.times[n]) == 1 for n in timed):
            # after one step at each count, a count 1.5x slower than the best is not tried
            # again: on a busy machine a second thread can cost seconds a step
            fastest = min(self.times[n][0] for n in timed)
            self.candidates = tuple(n for n in self.candidates
                                    if self.times[n][0] <= 1.5 * fastest)
        if all(len(self.times[n]) >= self.trials for n in self.candidates) or (
                len(self.candidates) == 1):
            medians = {n: statistics.median(self.times[n]) for n in self.candidates}
            self.chosen = min(medians, key=lambda n: (medians[n], n))
            set_blas_threads(self.chosen)

    def rehearse(self, step: Callable[[], object]) -> dict:
        """Time `step` (work whose results are thrown away) at each count by the rules above
        until one is chosen, and keep it; returns `report()`.

        Each count first runs one step untimed: the first step at a new count starts
        OpenBLAS's pool and the halves' helper thread and touches the helper's fresh memory,
        and timed, that cost alone could drop the count by the 1.5x rule."""
        if self.active and self.chosen is None:
            for n in self.candidates:
                set_blas_threads(n)
                step()
        while self.active and self.chosen is None:
            self.before_step()
            start = time.perf_counter()
            step()
            self.after_step(time.perf_counter() - start)
        return self.report()

    def keep(self, n: int) -> bool:
        """Use count n, chosen before (a resumed run's checkpoint), with no timing."""
        if self.active and set_blas_threads(n):
            self.chosen = n
            return True
        return False

    def restore(self) -> None:
        """Give the process back the count it had before (a run ends; the tests go on)."""
        if self.active and self.found is not None:
            set_blas_threads(self.found)

    def report(self) -> dict:
        """{"threads": the count in use, "ms": {count: median ms of the tuning steps}}."""
        return {"threads": self.chosen if self.chosen is not None else blas_threads(),
                "ms": {str(n): statistics.median(t) * 1e3 for n, t in self.times.items() if t}}
