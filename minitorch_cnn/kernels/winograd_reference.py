"""Winograd F(2x2, 3x3) tile transforms in plain NumPy: the twins of ``winograd_numba.py``.

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
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _into(out, value):
    """value, or value copied into the given workspace ``out``."""
    if out is None:
        return value
    out[...] = value
    return out


def _padded(x, ph, pw, th, tw):
    """x (N, H, W, C) inside a zero frame of (N, 2 TH + 2, 2 TW + 2, C), offset by the padding."""
    n, h, w, c = x.shape
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    rows, cols = min(h, 2 * th + 2 - ph), min(w, 2 * tw + 2 - pw)
    xp[:, ph:ph + rows, pw:pw + cols] = x[:, :rows, :cols]
    return xp


def input_transform(x, ph, pw, th, tw, out=None):
    """x (N, H, W, C) -> V (16, N*TH*TW, C): B^T d B for every 4x4 input patch d."""
    n, _, _, c = x.shape
    d = sliding_window_view(_padded(x, ph, pw, th, tw), (4, 4), axis=(1, 2))[:, ::2, ::2]
    v = np.einsum("ir,js,ntwcrs->ijntwc", BT.astype(x.dtype), BT.astype(x.dtype), d)
    return _into(out, v.reshape(16, n * th * tw, c))


def output_transform(m, n, oh, ow, th, tw, out=None):
    """M (16, N*TH*TW, K) -> y (N, OH, OW, K): A^T m A per tile, cropped to the output size."""
    k = m.shape[2]
    at = AT.astype(m.dtype)
    y = np.einsum("ai,bj,ijntwk->ntawbk", at, at, m.reshape(4, 4, n, th, tw, k))
    return _into(out, np.ascontiguousarray(y.reshape(n, 2 * th, 2 * tw, k)[:, :oh, :ow]))


def output_transform_adjoint(g, th, tw, out=None):
    """g (N, OH, OW, K) -> dM (16, N*TH*TW, K): A g A^T per 2x2 tile of g (zeros past the edge)."""
    n, oh, ow, k = g.shape
    gp = np.zeros((n, 2 * th, 2 * tw, k), dtype=g.dtype)
    gp[:, :oh, :ow] = g
    at = AT.astype(g.dtype)
    dm = np.einsum("ai,bj,ntawbk->ijntwk", at, at, gp.reshape(n, th, 2, tw, 2, k))
    return _into(out, dm.reshape(16, n * th * tw, k))


def input_transform_adjoint(dv, x_shape, ph, pw, th, tw, out=None):
    """dV (16, N*TH*TW, C) -> dx (N, H, W, C): B dv B^T per tile, added back where patches overlap."""
    n, h, w, c = x_shape
    bt = BT.astype(dv.dtype)
    dd = np.einsum("ir,js,ijntwc->ntwrsc", bt, bt, dv.reshape(4, 4, n, th, tw, c))
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=dv.dtype)
    for r in range(4):
        for s in range(4):
            xp[:, r:r + 2 * th:2, s:s + 2 * tw:2] += dd[:, :, :, r, s]
    dx = np.zeros(x_shape, dtype=dv.dtype) if out is None else out
    dx[...] = 0
    rows, cols = min(h, 2 * th + 2 - ph), min(w, 2 * tw + 2 - pw)
    dx[:, :rows, :cols] = xp[:, ph:ph + rows, pw:pw + cols]
    return dx
