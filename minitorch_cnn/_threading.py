"""A quiet threading policy, chosen before Numba (or its OpenMP runtime) loads.

Two cores, shared by OpenBLAS's threads and, potentially, Numba's. The policy:

* **BLAS owns the cores.** The matrix multiplies are where parallelism pays;
  OpenBLAS uses its own thread pool for each one.
* **The Numba kernels are serial** (no ``parallel=True``, no ``prange``). Each
  is memory-bound and lasts about a millisecond, and runs right after an
  OpenBLAS multiply, whose worker thread keeps spinning on the other core for
  a while. Measured here: two-thread (``prange``) BatchNorm statistics took
  9-120 ms instead of 0.4-1.2 ms, and even on a quiet machine splitting
  BatchNorm's normalise pass over two Python threads (nogil kernels) made it
  2-2.5x *slower* (0.90 -> 2.04 ms for 25600x64): the second thread waits for
  the core the BLAS thread holds.
* **Idle threads sleep**, in case something does start a parallel region (a
  user's own ``prange`` code, or PyTorch's OpenMP in the same process):
  ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` stop OpenMP workers from
  spinning between regions (spinning workers made training 4.5x slower), and
  Numba uses its own lightweight ``workqueue`` layer rather than OpenMP or TBB.

Variables the user already set are left alone. ``configure()`` runs when
``minitorch_cnn`` is imported; it must come before Numba is imported, because
Numba reads its threading layer and OpenMP reads its wait policy at start-up.
"""
import os
import sys

DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "KMP_BLOCKTIME": "0",
    "NUMBA_THREADING_LAYER": "workqueue",
}


def configure():
    """Apply the defaults for variables the user has not set; return the policy in force."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    return describe()


def describe():
    """The policy in force, plus whether Numba was already loaded when it was set."""
    policy = {key: os.environ.get(key) for key in DEFAULTS}
    policy["numba_loaded_first"] = _NUMBA_BEFORE
    return policy


# If Numba was imported before minitorch_cnn, its threading layer is already fixed
# (the environment variables above then only affect libraries loaded later).
_NUMBA_BEFORE = "numba" in sys.modules
