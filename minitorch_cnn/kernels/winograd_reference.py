"""Winograd F(2x2, 3x3) and F(4x4, 3x3) tile transforms in plain NumPy: the twins of ``winograd_numba.py``.

A stride-1 3x3 convolution is cut into 2x2 output tiles; tile ``(ti, tj)``
reads the 4x4 input patch whose top-left pixel is ``(2 ti - ph, 2 tj - pw)``
(pixels outside the image are padding zeros). With the matrices

    B^T = [[1, 0, -1, 0],   G = [[1,    0,   0],    A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],        [1/2,  1/2, 1/2],         [0, 1, -1, -1]]
           [0, -1, 1, 0],        [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]       [0,    0,   1]]

a tile of the output is ``A^T [(G w G^T) * (B^T d B)] A`` (``*`` elementwise),
and summed over channels the 16 elementwise products become 16 matrix
multiplies, one per position of the 4x4 tile (docs/layers/conv2d.md derives it).

Layouts: the transformed input ``V`` is ``(16, P, C)`` and the transformed
output ``M`` is ``(16, P, K)``, with ``P = N * TH * TW`` tiles in the order
(image, tile row, tile column); index ``e = 4 i + j`` is position ``(i, j)``.
So ``M[e] = V[e] @ U[e]`` is one BLAS call per ``e`` (``np.matmul`` on the stack).
The filter transform is a single small GEMM and needs no kernel: see
``minitorch_cnn.kernels.winograd_filter``.

F(4x4, 3x3) is the same with 4x4 output tiles, 6x6 input patches and 36
multiplies (``F4x4``, 2.25 per output instead of 4): every function takes the
transform as ``f`` and reads the tile size from it; ``V`` is then ``(36, P, C)``.
Its matrices come from Toom-Cook with the interpolation points 0, 1, -1, 2, -1/2
and infinity, the set with the smallest float32 error of five measured
(benchmarks/winograd_error.py); B^T and A^T hold only dyadic fractions, so
they are exact in float32, and G's thirds and fifteenths are applied in float64.
"""
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


class Transform(NamedTuple):
    """The matrices of F(m x m, 3x3): B^T (a, a), G (a, 3), A^T (m, a), a = m + 2."""
    BT: np.ndarray
    G: np.ndarray
    AT: np.ndarray

    @property
    def m(self):
        return self.AT.shape[0]

    @property
    def a(self):
        return self.BT.shape[0]


F2x2 = Transform(BT, G, AT)
F4x4 = Transform(
    np.array([[1, 1.5, -2, -1.5, 1, 0], [0, -1, -2.5, -0.5, 1, 0], [0, 1, 0.5, -2.5, 1, 0],
              [0, -0.5, -1, 0.5, 1, 0], [0, 2, -1, -2, 1, 0], [0, 1, 1.5, -2, -1.5, 1]]),
    np.array([[1, 0, 0], [-1, -1, -1], [1, -1, 1], [1 / 5, 2 / 5, 4 / 5], [-16 / 5, 8 / 5, -4 / 5],
              [0, 0, 3]]) / np.array([[1], [3], [3], [3], [3], [3]]),
    np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -0.5, 0], [0, 1, 1, 4, 0.25, 0],
              [0, 1, -1, 8, -0.125, 1]]))


def _into(out, value):
    """value, or value copied into the given workspace ``out``."""
    if out is None:
        return value
    out[...] = value
    return out


def _padded(x, ph, pw, th, tw, m):
    """x (N, H, W, C) inside a zero frame of (N, m TH + 2, m TW + 2, C), offset by the padding."""
    n, h, w, c = x.shape
    xp = np.zeros((n, m * th + 2, m * tw + 2, c), dtype=x.dtype)
    rows, cols = min(h, m * th + 2 - ph), min(w, m * tw + 2 - pw)
    xp[:, ph:ph + rows, pw:pw + cols] = x[:, :rows, :cols]
    return xp


def input_transform(x, ph, pw, th, tw, out=None, f=F2x2):
    """x (N, H, W, C) -> V (a*a, N*TH*TW, C): B^T d B for every a x a input patch d."""
    n, _, _, c = x.shape
    d = sliding_window_view(_padded(x, ph, pw, th, tw, f.m), (f.a, f.a), axis=(1, 2))
    bt = f.BT.astype(x.dtype)
    v = np.einsum("ir,js,ntwcrs->ijntwc", bt, bt, d[:, ::f.m, ::f.m])
    return _into(out, v.reshape(f.a * f.a, n * th * tw, c))


def output_transform(m, n, oh, ow, th, tw, out=None, f=F2x2):
    """M (a*a, N*TH*TW, K) -> y (N, OH, OW, K): A^T m A per tile, cropped to the output size."""
    k = m.shape[2]
    at = f.AT.astype(m.dtype)
    y = np.einsum("ai,bj,ijntwk->ntawbk", at, at, m.reshape(f.a, f.a, n, th, tw, k))
    return _into(out, np.ascontiguousarray(y.reshape(n, f.m * th, f.m * tw, k)[:, :oh, :ow]))


def output_transform_adjoint(g, th, tw, out=None, f=F2x2):
    """g (N, OH, OW, K) -> dM (a*a, N*TH*TW, K): A g A^T per m x m tile of g (zeros past the edge)."""
    n, oh, ow, k = g.shape
    gp = np.zeros((n, f.m * th, f.m * tw, k), dtype=g.dtype)
    gp[:, :oh, :ow] = g
    at = f.AT.astype(g.dtype)
    dm = np.einsum("ai,bj,ntawbk->ijntwk", at, at, gp.reshape(n, th, f.m, tw, f.m, k))
    return _into(out, dm.reshape(f.a * f.a, n * th * tw, k))


def input_transform_adjoint(dv, x_shape, ph, pw, th, tw, out=None, f=F2x2):
    """dV (a*a, N*TH*TW, C) -> dx (N, H, W, C): B dv B^T per tile, added back where patches overlap."""
    n, h, w, c = x_shape
    m, a, bt = f.m, f.a, f.BT.astype(dv.dtype)
    dd = np.einsum("ir,js,ijntwc->ntwrsc", bt, bt, dv.reshape(a, a, n, th, tw, c))
    xp = np.zeros((n, m * th + 2, m * tw + 2, c), dtype=dv.dtype)
    for r in range(a):
        for s in range(a):
            xp[:, r:r + m * th:m, s:s + m * tw:m] += dd[:, :, :, r, s]
    dx = np.zeros(x_shape, dtype=dv.dtype) if out is None else out
    dx[...] = 0
    rows, cols = min(h, m * th + 2 - ph), min(w, m * tw + 2 - pw)
    dx[:, :rows, :cols] = xp[:, ph:ph + rows, pw:pw + cols]
    return dx
