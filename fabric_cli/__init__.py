"""fabric: a NumPy transformer that learns to track pronouns, and tells you how it felt."""

import os

# The Fabric's matrices are small (64 wide): a BLAS thread pool costs more in hand-offs than
# it gains, and on a busy 2-core machine it made training 3-10x slower. One thread each,
# unless the user says otherwise. This must run before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
