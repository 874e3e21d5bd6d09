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
  the core the BLAS thread holds. One exception: Winograd F(4x4)'s tile
  transforms, 10-50 ms each at batch 2,000, split the batch's images between
  two Python threads (``kernels/winograd_numba.py``).
* **Idle threads sleep**, in case something does start a parallel region (a
  user's own ``prange`` code, or PyTorch's OpenMP in the same process):
  ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` stop OpenMP workers from
  spinning between regions (spinning workers made training 4.5x slower), and
  Numba uses its own lightweight ``workqueue`` layer rather than OpenMP or TBB.
  ``OPENBLAS_THREAD_TIMEOUT=4`` puts OpenBLAS's worker to sleep after 2^4
  cycles without work instead of its default 2^28 (about 0.1 s), so that the
  kernel after a multiply has the second core. Measured on a 2-core Zen 4
  (2026-12-06), the cifar10-muon step with F(4x4)'s transforms on two
  threads: transforms 1.23-1.36 -> 0.74-0.81 s, the step 5.07-5.81 ->
  4.60-4.93 s (three interleaved rounds). The seed model's step at batch 100,
  whose small multiplies each wake the worker, showed no clear difference:
  0.47-0.50 -> 0.39-0.40 s in one pair of runs, 0.40-0.44 -> 0.42-0.46 s in
  another. OpenBLAS reads it when it loads, so it applies where
  ``minitorch_cnn`` is imported before NumPy (the ``train`` command).

Variables the user already set are left alone. ``configure()`` runs when
``minitorch_cnn`` is imported; it must come before Numba is imported, because
Numba reads its threading layer and OpenMP reads its wait policy at start-up
(and OpenBLAS its timeout when NumPy loads it).
"""
import os
import sys

DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "KMP_BLOCKTIME": "0",
    "NUMBA_THREADING_LAYER": "workqueue",
    "OPENBLAS_THREAD_TIMEOUT": "4",
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
