"""A quiet threading policy, chosen before Numba (or its OpenMP runtime) loads.

Two cores shared by OpenBLAS's threads and Numba's: OpenMP workers that spin
while waiting steal the cores BLAS needs (measured 4.5x slower training).
Unless the user chose otherwise, waiting OpenMP threads sleep
(``OMP_WAIT_POLICY=PASSIVE``) and Numba uses its own lightweight
``workqueue`` threading layer. Variables the user already set are left alone.
"""
import os

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
    return {key: os.environ.get(key) for key in DEFAULTS}
