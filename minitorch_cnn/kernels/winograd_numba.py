"""Winograd F(2x2, 3x3) tile transforms as Numba loops: the twins of ``winograd_reference.py``.

Same names, signatures and layouts (``V`` (16, P, C), ``M`` (16, P, K), tiles in
(image, tile row, tile column) order). Each kernel visits the tiles in memory
order and, inside a tile, runs along the channels, the contiguous axis of every
array involved, so LLVM vectorises the 4x4 arithmetic across channels.

Optimizations:

* a tile's 4x4 patch is first copied into a (4, 4, C) scratch (padding
  written as zeros there), so the transform itself has no bounds checks;
  the copy runs along whole contiguous ``4 * C`` rows where the patch lies
  inside the image;
* the transforms are written out as the additions they are (``B^T``, ``A^T``
  hold only 0 and +-1): rows first, then columns, 24 (input) or 12 (output)
  adds for a tile's 16 values;
* the output side goes through a (2, 2, K) scratch too: the arithmetic
  runs branch-free, and only the copy to or from the image knows that an
  edge tile of an odd-sized output has pixels missing.

Serial, with outputs allocated by NumPy, for the reasons given at the top of
``numba_kernels.py``.
"""
import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _tile(p, th, tw):
    """Tile p of the (image, tile row, tile column) order -> (image, tile row, tile column)."""
    b, rest = divmod(p, th * tw)
    ti, tj = divmod(rest, tw)
    return b, ti, tj


@_jit
def _gather(x, b, r0, c0, d):
    """d (4, 4, C) <- the 4x4 patch of image b at (r0, c0), zeros outside the image."""
    _, h, w, c = x.shape
    inside = c0 >= 0 and c0 + 4 <= w
    for u in range(4):
        r = r0 + u
        if r < 0 or r >= h:
            for v in range(4):
                for ch in range(c):
                    d[u, v, ch] = 0
        elif inside:
            for v in range(4):
                for ch in range(c):
                    d[u, v, ch] = x[b, r, c0 + v, ch]
        else:
            for v in range(4):
                col = c0 + v
                if col < 0 or col >= w:
                    for ch in range(c):
                        d[u, v, ch] = 0
                else:
                    for ch in range(c):
                        d[u, v, ch] = x[b, r, col, ch]


@_jit
def _input_transform(x, ph, pw, th, tw, v, d, t):
    n, _, _, c = x.shape
    for p in range(n * th * tw):
        b, ti, tj = _tile(p, th, tw)
        _gather(x, b, 2 * ti - ph, 2 * tj - pw, d)
        for j in range(4):                       # t = B^T d (over rows)
            for ch in range(c):
                t[0, j, ch] = d[0, j, ch] - d[2, j, ch]
                t[1, j, ch] = d[1, j, ch] + d[2, j, ch]
                t[2, j, ch] = d[2, j, ch] - d[1, j, ch]
                t[3, j, ch] = d[1, j, ch] - d[3, j, ch]
        for i in range(4):                       # V = t B (over columns)
            e = 4 * i
            for ch in range(c):
                v[e, p, ch] = t[i, 0, ch] - t[i, 2, ch]
                v[e + 1, p, ch] = t[i, 1, ch] + t[i, 2, ch]
                v[e + 2, p, ch] = t[i, 2, ch] - t[i, 1, ch]
                v[e + 3, p, ch] = t[i, 1, ch] - t[i, 3, ch]


@_jit
def _output_transform(m, th, tw, y, t):
    n, oh, ow, k = y.shape
    for p in range(n * th * tw):
        b, ti, tj = _tile(p, th, tw)
        r, col = 2 * ti, 2 * tj
        # t = A^T m (rows 0..3 -> 2), then y = t A (columns 0..3 -> 2)
        for ch in range(k):
            t00 = m[0, p, ch] + m[4, p, ch] + m[8, p, ch]
            t01 = m[1, p, ch] + m[5, p, ch] + m[9, p, ch]
            t02 = m[2, p, ch] + m[6, p, ch] + m[10, p, ch]
            t03 = m[3, p, ch] + m[7, p, ch] + m[11, p, ch]
            t10 = m[4, p, ch] - m[8, p, ch] - m[12, p, ch]
            t11 = m[5, p, ch] - m[9, p, ch] - m[13, p, ch]
            t12 = m[6, p, ch] - m[10, p, ch] - m[14, p, ch]
            t13 = m[7, p, ch] - m[11, p, ch] - m[15, p, ch]
            t[0, 0, ch] = t00 + t01 + t02
            t[0, 1, ch] = t01 - t02 - t03
            t[1, 0, ch] = t10 + t11 + t12
            t[1, 1, ch] = t11 - t12 - t13
        for a in range(min(2, oh - r)):          # the pixels of the tile that exist
            for q in range(min(2, ow - col)):
                for ch in range(k):
                    y[b, r + a, col + q, ch] = t[a, q, ch]


@_jit
def _output_transform_adjoint(g, th, tw, dm, t, s):
    n, oh, ow, k = g.shape
    for p in range(n * th * tw):
        b, ti, tj = _tile(p, th, tw)
        r, col = 2 * ti, 2 * tj
        for a in range(2):                       # t <- the 2x2 patch, zeros past the edge
            for q in range(2):
                if r + a < oh and col + q < ow:
                    for ch in range(k):
                        t[a, q, ch] = g[b, r + a, col + q, ch]
                else:
                    for ch in range(k):
                        t[a, q, ch] = 0
        for q in range(2):                       # s = A g (2 rows -> 4)
            for ch in range(k):
                s[0, q, ch] = t[0, q, ch]
                s[1, q, ch] = t[0, q, ch] + t[1, q, ch]
                s[2, q, ch] = t[0, q, ch] - t[1, q, ch]
                s[3, q, ch] = -t[1, q, ch]
        for i in range(4):                       # dM = s A^T (2 columns -> 4)
            e = 4 * i
            for ch in range(k):
                dm[e, p, ch] = s[i, 0, ch]
                dm[e + 1, p, ch] = s[i, 0, ch] + s[i, 1, ch]
                dm[e + 2, p, ch] = s[i, 0, ch] - s[i, 1, ch]
                dm[e + 3, p, ch] = -s[i, 1, ch]


@_jit
def _input_transform_adjoint(dv, ph, pw, th, tw, dx, t, d):
    n, h, w, c = dx.shape
    for p in range(n * th * tw):
        b, ti, tj = _tile(p, th, tw)
        for i in range(4):                       # t = dv B^T (over columns)
            e = 4 * i
            for ch in range(c):
                v0, v1 = dv[e, p, ch], dv[e + 1, p, ch]
                v2, v3 = dv[e + 2, p, ch], dv[e + 3, p, ch]
                t[i, 0, ch] = v0
                t[i, 1, ch] = v1 - v2 + v3
                t[i, 2, ch] = v2 + v1 - v0
                t[i, 3, ch] = -v3
        for j in range(4):                       # d = B t (over rows)
            for ch in range(c):
                d[0, j, ch] = t[0, j, ch]
                d[1, j, ch] = t[1, j, ch] - t[2, j, ch] + t[3, j, ch]
                d[2, j, ch] = t[2, j, ch] + t[1, j, ch] - t[0, j, ch]
                d[3, j, ch] = -t[3, j, ch]
        r0, c0 = 2 * ti - ph, 2 * tj - pw       # add the patch back onto dx
        for u in range(4):
            r = r0 + u
            if 0 <= r < h:
                for q in range(4):
                    col = c0 + q
                    if 0 <= col < w:
                        for ch in range(c):
                            dx[b, r, col, ch] += d[u, q, ch]


# --------------------------------------------------------------- wrappers
def input_transform(x, ph, pw, th, tw, out=None):
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    v = np.empty((16, n * th * tw, c), dtype=x.dtype) if out is None else out
    scratch = np.empty((2, 4, 4, c), dtype=x.dtype)
    _input_transform(x, ph, pw, th, tw, v, scratch[0], scratch[1])
    return v


def output_transform(m, n, oh, ow, th, tw, out=None):
    y = np.empty((n, oh, ow, m.shape[2]), dtype=m.dtype) if out is None else out
    _output_transform(np.ascontiguousarray(m), th, tw, y, np.empty((2, 2, m.shape[2]), m.dtype))
    return y


def output_transform_adjoint(g, th, tw, out=None):
    g = np.ascontiguousarray(g)
    n, _, _, k = g.shape
    dm = np.empty((16, n * th * tw, k), dtype=g.dtype) if out is None else out
    _output_transform_adjoint(g, th, tw, dm, np.empty((2, 2, k), g.dtype),
                              np.empty((4, 2, k), g.dtype))
    return dm


def input_transform_adjoint(dv, x_shape, ph, pw, th, tw, out=None):
    dx = np.zeros(x_shape, dtype=dv.dtype) if out is None else out
    if out is not None:
        dx[...] = 0
    scratch = np.empty((2, 4, 4, x_shape[3]), dtype=dv.dtype)
    _input_transform_adjoint(np.ascontiguousarray(dv), ph, pw, th, tw, dx, scratch[0], scratch[1])
    return dx
