"""fabric: a NumPy transformer that learns to track pronouns, and tells you how it felt."""

import os

# One BLAS thread each, unless the user says otherwise: a default run gives the second core
# to its probe worker, and on a busy 2-core machine a spinning thread pool made training
# 3-10x slower. Larger shapes time two threads and keep them when faster (nn/blas.py).
# This must run before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# When a larger shape trains on two threads, OpenBLAS's second thread spins for 2^28 cycles
# (~0.1 s) after each product before it sleeps, holding the other core through the
# elementwise passes between products, where nn/halves.py wants it. 2^20 (~0.3 ms) lets it
# sleep there: the large preset's step used 11-27% less CPU, and the optimizer's halves
# could then gain (nn/halves.py). The user's own setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"
