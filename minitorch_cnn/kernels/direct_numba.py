"""Direct convolution for few input taps (a stem on RGB images), as Numba loops.

Twins of ``direct_reference.py``. When ``KH*KW*C`` is small (FastNet's 2x2
stem: 12) the im2col matrix is narrow and long, its copy runs in tiny pieces
(6 values per kernel row) and the GEMM that reads it is memory-bound, so
BLAS gains little. These loops keep one output pixel's ``K`` accumulators in
L1 and never write the patch matrix.

Optimizations: the innermost loop runs over the ``K`` output channels,
contiguous in ``y``/``g`` and in a row of ``wt``; padding taps are skipped,
not multiplied by zero. The weight gradient accumulates into one
``(KH*KW*C, K)`` array that stays in L1. Serial; outputs allocated by NumPy
(see ``numba_kernels.py``).
"""
import numba
import numpy as np

from .reference import out_size

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _direct_forward(x, wt, kh, kw, sh, sw, ph, pw, y):
    n, h, w, c = x.shape
    _, oh, ow, k = y.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                row = y[b, i, j]
                for t in range(k):
                    row[t] = 0
                for p in range(kh):
                    r = i * sh - ph + p
                    if 0 <= r < h:
                        for q in range(kw):
                            col = j * sw - pw + q
                            if 0 <= col < w:
                                base = (p * kw + q) * c
                                for ch in range(c):
                                    xv, wrow = x[b, r, col, ch], wt[base + ch]
                                    for t in range(k):
                                        row[t] += xv * wrow[t]


@_jit
def _direct_weight_grad(x, g, kh, kw, sh, sw, ph, pw, dwt):
    n, h, w, c = x.shape
    _, oh, ow, k = g.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                grow = g[b, i, j]
                for p in range(kh):
                    r = i * sh - ph + p
                    if 0 <= r < h:
                        for q in range(kw):
                            col = j * sw - pw + q
                            if 0 <= col < w:
                                base = (p * kw + q) * c
                                for ch in range(c):
                                    xv, drow = x[b, r, col, ch], dwt[base + ch]
                                    for t in range(k):
                                        drow[t] += xv * grow[t]


@_jit
def _direct_input_grad(g, wt, kh, kw, sh, sw, ph, pw, dx):
    n, h, w, c = dx.shape
    _, oh, ow, k = g.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                grow = g[b, i, j]
                for p in range(kh):
                    r = i * sh - ph + p
                    if 0 <= r < h:
                        for q in range(kw):
                            col = j * sw - pw + q
                            if 0 <= col < w:
                                base = (p * kw + q) * c
                                for ch in range(c):
                                    wrow, acc = wt[base + ch], 0.0
                                    for t in range(k):
                                        acc += grow[t] * wrow[t]
                                    dx[b, r, col, ch] += acc


def direct_forward(x, wt, kh, kw, sh, sw, ph, pw):
    x, wt = np.ascontiguousarray(x), np.ascontiguousarray(wt)
    n, h, w, _ = x.shape
    y = np.empty((n, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw), wt.shape[1]), x.dtype)
    _direct_forward(x, wt, kh, kw, sh, sw, ph, pw, y)
    return y


def direct_weight_grad(x, g, kh, kw, sh, sw, ph, pw):
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    dwt = np.zeros((kh * kw * x.shape[3], g.shape[3]), dtype=g.dtype)
    _direct_weight_grad(x, g, kh, kw, sh, sw, ph, pw, dwt)
    return dwt


def direct_input_grad(g, wt, x_shape, kh, kw, sh, sw, ph, pw):
    dx = np.zeros(x_shape, dtype=g.dtype)
    _direct_input_grad(np.ascontiguousarray(g), np.ascontiguousarray(wt), kh, kw, sh, sw, ph, pw,
                       dx)
    return dx
