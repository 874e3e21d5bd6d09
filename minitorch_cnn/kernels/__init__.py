"""The performance core: im2col/col2im, pooling and fused elementwise kernels.

Two interchangeable backends with identical signatures:

* ``numpy``  -- ``reference.py``: short pure-NumPy twins, easy to read and to
  step through with a debugger;
* ``numba``  -- ``numba_kernels.py``: compiled Numba loops, the default.

Choose with the environment variable ``MINITORCH_KERNELS=numpy|numba`` (read at
import), at run time with :func:`set_backend`, or for a block of code with
``with use_backend("numpy"): ...``. Layers call the functions of this module,
never a backend directly, so the switch covers the whole library.
``NUMBA_DISABLE_JIT=1`` also works: the Numba kernels then run as plain Python.

Shortcuts that need no kernel live here, in front of both backends: a 1x1
convolution without padding needs no im2col (stride 1: the NHWC array *is* the
column matrix; stride s: a strided subsample), and its col2im is a reshape
(stride 1) or a strided scatter. This package imports no layers.
"""
import contextlib
import os
import warnings

import numpy as np

from . import reference
from .reference import out_size

_NAMES = {"numpy": "numpy", "reference": "numpy", "numba": "numba"}
_active = reference


def _load(name):
    key = _NAMES.get(str(name).strip().lower())
    if key is None:
        raise ValueError(f"unknown kernel backend {name!r}: expected 'numba' or 'numpy'")
    if key == "numpy":
        return reference
    try:
        from . import numba_kernels
    except ImportError as err:  # no Numba: the NumPy twins serve, and we say so
        warnings.warn(f"minitorch_cnn: Numba kernels unavailable ({err}); using the NumPy "
                      "reference kernels", RuntimeWarning, stacklevel=3)
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


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend("numpy"): ...`` -- switch for a block, then switch back."""
    previous = set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


# --------------------------------------------------------------- convolution
def im2col(x, kh, kw, sh, sw, ph, pw):
    """(N, H, W, C) -> (N*OH*OW, KH*KW*C), rows ordered (kernel row, kernel col, channel).

    A 1x1 kernel without padding is a view (stride 1, contiguous x) or a
    strided subsample: no kernel needed.
    """
    if kh == kw == 1 and ph == pw == 0:
        if sh != 1 or sw != 1:
            x = x[:, ::sh, ::sw, :]
        return np.ascontiguousarray(x).reshape(-1, x.shape[3])
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


# ------------------------------------------------------------------- pooling
def maxpool_forward(x, kh, kw, sh, sw, ph, pw):
    """-> (out, argmax), both (N, OH, OW, C); argmax = flat input index row * W + col."""
    return _active.maxpool_forward(x, kh, kw, sh, sw, ph, pw)


def maxpool_backward(grad_out, argmax, x_shape):
    return _active.maxpool_backward(grad_out, argmax, x_shape)


def avgpool_forward(x, kh, kw, sh, sw, ph, pw):
    return _active.avgpool_forward(x, kh, kw, sh, sw, ph, pw)


def avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw):
    return _active.avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw)


# ----------------------------------------------------- BatchNorm, ReLU fused
def channel_stats(x):
    """Per-channel (mean, biased variance) of x (..., C), in x's dtype."""
    return _active.channel_stats(x)


def channel_sum(a):
    """Per-channel sum of a (..., C), accumulated in float64, in a's dtype."""
    return _active.channel_sum(a)


def scale_shift(x, scale, shift, relu=False):
    """x * scale + shift per channel, then max(., 0) if relu (BatchNorm [+ ReLU] forward)."""
    return _active.scale_shift(x, scale, shift, relu)


def batchnorm_backward(grad_out, x, mean, inv_std, scale, shift, relu=False, training=True):
    """BatchNorm [+ fused ReLU] backward -> (dx, dgamma, dbeta)."""
    return _active.batchnorm_backward(grad_out, x, mean, inv_std, scale, shift, relu, training)


def relu_backward(grad_out, y):
    """grad_out where ReLU's output y > 0, else 0."""
    return _active.relu_backward(grad_out, y)


# ------------------------------------------------- Winograd F(2x2, 3x3) tiles
# Twins in winograd_reference.py / winograd_numba.py, following the backend in use.
def _winograd():
    if _active is reference:
        from . import winograd_reference
        return winograd_reference
    from . import winograd_numba
    return winograd_numba


def _transform(f):
    """f, or F(2x2, 3x3) when none is given."""
    from .winograd_reference import F2x2
    return F2x2 if f is None else f


def winograd_filter(w, f=None):
    """w (K, C, 3, 3) -> U^T (a*a, K, C), U[a i + j] = (G w G^T)[i, j]: one small GEMM, no kernel.

    ``f`` is the transform (``winograd_reference.F2x2``, the default, or ``F4x4``).
    Returned as U's transpose, the layout the GEMM writes directly; use
    ``.transpose(0, 2, 1)`` for U (a*a, C, K): BLAS takes transposed operands
    without a copy.
    """
    k, c = w.shape[:2]
    gg = _kron_g(_transform(f), w.dtype)                       # (a*a, 9): (i,j) x (p,q)
    wt = w.reshape(k * c, 9).T.astype(gg.dtype, copy=False)      # a copy only for float64
    return (gg @ wt).astype(w.dtype, copy=False).reshape(-1, k, c)


def winograd_filter_adjoint(dut, f=None):
    """dU^T (a*a, K, C) -> dw (K, C, 3, 3): G^T du G, the adjoint of winograd_filter."""
    _, k, c = dut.shape
    gg = _kron_g(_transform(f), dut.dtype)
    du = dut.reshape(-1, k * c).T.astype(gg.dtype, copy=False)   # a copy only for float64
    return (du @ gg).astype(dut.dtype, copy=False).reshape(k, c, 3, 3)


def _kron_g(f, dtype):
    """G (x) G in ``dtype`` where G is exact in it (F(2x2): halves), else in float64
    (F(4x4): thirds and fifteenths, applied in float64 and the result cast once)."""
    gg = np.kron(f.G, f.G)
    cast = gg.astype(dtype)
    return cast if np.array_equal(cast, gg) else gg


def winograd_input(x, ph, pw, th, tw, out=None, f=None):
    """x (N, H, W, C) -> V (a*a, N*TH*TW, C), B^T d B for each a x a patch (into ``out`` if given)."""
    return _winograd().input_transform(x, ph, pw, th, tw, out, f=_transform(f))


def winograd_output(m, n, oh, ow, th, tw, out=None, f=None):
    """M (a*a, N*TH*TW, K) -> y (N, OH, OW, K), A^T m A for each tile (into ``out`` if given)."""
    return _winograd().output_transform(m, n, oh, ow, th, tw, out, f=_transform(f))


def winograd_output_adjoint(g, th, tw, out=None, f=None):
    """g (N, OH, OW, K) -> dM (a*a, N*TH*TW, K), A g A^T: the adjoint of winograd_output."""
    return _winograd().output_transform_adjoint(g, th, tw, out, f=_transform(f))


def winograd_input_adjoint(dv, x_shape, ph, pw, th, tw, out=None, f=None):
    """dV (a*a, N*TH*TW, C) -> dx (N, H, W, C), B dv B^T summed over overlapping patches."""
    return _winograd().input_transform_adjoint(dv, x_shape, ph, pw, th, tw, out, f=_transform(f))


_active = _load(os.environ.get("MINITORCH_KERNELS", "numba"))


def sgd_momentum_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov):
    """In place: SGD with momentum for a parameter whose momentum buffer exists."""
    return _active.sgd_momentum_update(p, g, buf, lr, momentum, dampening, weight_decay,
                                       nesterov)
