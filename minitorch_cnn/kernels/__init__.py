"""The performance core: im2col/col2im, pooling and fused elementwise kernels.

Two interchangeable backends with identical signatures:

* ``reference`` -- short pure-NumPy twins, easy to read and to step through;
* ``numba``     -- compiled Numba kernels (``numba_kernels.py``), the default.

Choose with the environment variable ``MINITORCH_KERNELS=numpy|numba`` (read at
import) or at run time with :func:`set_backend`. Layers call the functions of
this module, never a backend directly, so the switch covers the whole library.
This package imports no layers.
"""
import os

import numpy as np

from . import reference
from .reference import out_size

_BACKENDS = {"numpy": "reference", "reference": "reference", "numba": "numba"}
_active = reference


def _load(name):
    key = _BACKENDS.get(str(name).lower())
    if key is None:
        raise ValueError(f"unknown kernel backend {name!r}: expected 'numba' or 'numpy'")
    if key == "reference":
        return reference
    try:
        from . import numba_kernels
    except ImportError:  # Numba kernels not available: the NumPy twins serve
        return reference
    return numba_kernels


def set_backend(name):
    """Use the 'numba' kernels or their 'numpy' twins from now on; returns the previous name."""
    global _active
    previous = get_backend()
    _active = _load(name)
    return previous


def get_backend():
    """'numba' or 'numpy': the backend in use."""
    return "numpy" if _active is reference else "numba"


def im2col(x, kh, kw, sh, sw, ph, pw):
    """(N, H, W, C) -> (N*OH*OW, KH*KW*C). A 1x1 kernel without padding is just a (strided) reshape."""
    if kh == kw == 1 and ph == pw == 0:
        return x[:, ::sh, ::sw, :].reshape(-1, x.shape[3])
    return _active.im2col(x, kh, kw, sh, sw, ph, pw)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """(N*OH*OW, KH*KW*C) -> (N, H, W, C), summing overlaps; the adjoint of im2col."""
    if kh == kw == 1 and ph == pw == 0:
        n, h, w, c = x_shape
        if sh == sw == 1:
            return cols.reshape(x_shape)
        dx = np.zeros(x_shape, dtype=cols.dtype)
        dx[:, ::sh, ::sw, :] = cols.reshape(n, out_size(h, 1, sh, 0), out_size(w, 1, sw, 0), c)
        return dx
    return _active.col2im(cols, x_shape, kh, kw, sh, sw, ph, pw)


def maxpool_forward(x, kh, kw, sh, sw, ph, pw):
    return _active.maxpool_forward(x, kh, kw, sh, sw, ph, pw)


def maxpool_backward(grad_out, argmax, x_shape):
    return _active.maxpool_backward(grad_out, argmax, x_shape)


def avgpool_forward(x, kh, kw, sh, sw, ph, pw):
    return _active.avgpool_forward(x, kh, kw, sh, sw, ph, pw)


def avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw):
    return _active.avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw)


_active = _load(os.environ.get("MINITORCH_KERNELS", "numba"))
