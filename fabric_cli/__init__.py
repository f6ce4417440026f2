"""fabric: a NumPy transformer that learns to track pronouns, and tells you how it felt."""

import os

# One BLAS thread each, unless the user says otherwise: a default run gives the second core
# to its probe worker, and on a busy 2-core machine a spinning thread pool made training
# 3-10x slower. Larger shapes time two threads and keep them when faster (nn/blas.py).
# This must run before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
