"""Winograd F(2x2, 3x3) and F(4x4, 3x3) tile transforms as Numba loops: the twins of ``winograd_reference.py``.

Same names, signatures and layouts (``V`` (a*a, P, C), ``M`` (a*a, P, K), tiles in
(image, tile row, tile column) order). F(2x2) and F(4x4) each have four
kernels, their matrices written out as the additions and multiplies they are. Each kernel visits the tiles in memory
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
  edge tile of an odd-sized output has pixels missing;
* F(4x4)'s kernels go through the tiles in blocks of about ``BLOCK_BYTES``
  (a few to a few dozen tiles, held in the core's L2 cache): one pass over
  the block's tiles for the rows of each tile, then one pass per row of six
  of V (or M) for the columns, so each of V's 36 rows is written (read) in
  runs of whole blocks. Tile by tile, each tile wrote 36 short runs, far
  apart in memory: at batch 2,000 on a Zen 4, 64->256 @15x15, the output
  adjoint took 116 ms a chunk tile by tile and 29 ms in blocks, and all
  four kernels took 1.5-4x less on FastNet's layers; the same arithmetic in
  the same order, so the results are bit for bit the same. F(2x2)'s 16 rows
  measured no faster in blocks (0.9-1.4x the time), so its kernels stay tile
  by tile.

Outputs are allocated by NumPy, for the reasons given at the top of
``numba_kernels.py``. F(2x2)'s kernels are serial, as those are; F(4x4)'s,
10-50 ms each on a large batch, take a range of tiles so that ``_in_halves``
can run two halves of the batch's images on two threads at once.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .winograd_reference import F2x2, F4x4

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _tile(p, th, tw):
    """Tile p of the (image, tile row, tile column) order -> (image, tile row, tile column)."""
    b, rest = divmod(p, th * tw)
    ti, tj = divmod(rest, tw)
    return b, ti, tj


@_jit
def _gather(x, b, r0, c0, d):
    """d (a, a, C) <- the a x a patch of image b at (r0, c0), zeros outside the image."""
    _, h, w, c = x.shape
    a = d.shape[0]
    inside = c0 >= 0 and c0 + a <= w
    for u in range(a):
        r = r0 + u
        if r < 0 or r >= h:
            for v in range(a):
                for ch in range(c):
                    d[u, v, ch] = 0
        elif inside:
            for v in range(a):
                for ch in range(c):
                    d[u, v, ch] = x[b, r, c0 + v, ch]
        else:
            for v in range(a):
                col = c0 + v
                if col < 0 or col >= w:
                    for ch in range(c):
                        d[u, v, ch] = 0
                else:
                    for ch in range(c):
                        d[u, v, ch] = x[b, r, col, ch]


@_jit
def _scatter_add(dx, b, r0, c0, d):
    """The a x a patch d (a, a, C) added onto image b of dx at (r0, c0), inside the image only:
    the adjoint of _gather."""
    _, h, w, c = dx.shape
    a = d.shape[0]
    for u in range(a):
        r = r0 + u
        if 0 <= r < h:
            for q in range(a):
                col = c0 + q
                if 0 <= col < w:
                    for ch in range(c):
                        dx[b, r, col, ch] += d[u, q, ch]


@_jit
def _tile_in(g, b, row, col, q):
    """q (m, m, K) <- the m x m output tile of g at (row, col), zeros past the edge."""
    _, oh, ow, k = g.shape
    m = q.shape[0]
    for a in range(m):
        for c in range(m):
            if row + a < oh and col + c < ow:
                for ch in range(k):
                    q[a, c, ch] = g[b, row + a, col + c, ch]
            else:
                for ch in range(k):
                    q[a, c, ch] = 0


@_jit
def _tile_out(s, y, b, row, col):
    """y's m x m output tile at (row, col) <- s (m, m, K), the pixels of it that exist."""
    _, oh, ow, k = y.shape
    m = s.shape[0]
    for a in range(min(m, oh - row)):
        for c in range(min(m, ow - col)):
            for ch in range(k):
                y[b, row + a, col + c, ch] = s[a, c, ch]


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
    n, k = y.shape[0], y.shape[3]
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
        _tile_out(t, y, b, r, col)               # the pixels of the tile that exist


@_jit
def _output_transform_adjoint(g, th, tw, dm, t, s):
    n, k = g.shape[0], g.shape[3]
    for p in range(n * th * tw):
        b, ti, tj = _tile(p, th, tw)
        _tile_in(g, b, 2 * ti, 2 * tj, t)        # t <- the 2x2 patch, zeros past the edge
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
    n, c = dx.shape[0], dx.shape[3]
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
        _scatter_add(dx, b, 2 * ti - ph, 2 * tj - pw, d)   # the patch back onto dx


# ------------------------------------------------------------- F(4x4, 3x3)
# The rows of F4x4's matrices (winograd_reference.py), written out as the
# multiply-adds they are; each helper maps one vector of six (or four) values
# per channel, so a tile is two passes of it: over rows, then over columns.
# The coefficients are float32 (all are exact binary fractions), so float32 tiles
# stay float32 and float64 tiles float64, as in the NumPy twin.
_H, _Q, _E = np.float32(0.5), np.float32(0.25), np.float32(0.125)
_2, _4, _8, _3H, _5H = np.float32(2), np.float32(4), np.float32(8), np.float32(1.5), np.float32(2.5)


@_jit
def _bt6(d0, d1, d2, d3, d4, d5):
    """B^T d."""
    return (d0 + _3H * d1 - _2 * d2 - _3H * d3 + d4,
            d4 - d1 - _5H * d2 - _H * d3,
            d1 + _H * d2 - _5H * d3 + d4,
            _H * d3 - _H * d1 - d2 + d4,
            _2 * d1 - d2 - _2 * d3 + d4,
            d1 + _3H * d2 - _2 * d3 - _3H * d4 + d5)


@_jit
def _b6(t0, t1, t2, t3, t4, t5):
    """B t: the adjoint of _bt6."""
    return (t0,
            _3H * t0 - t1 + t2 - _H * t3 + _2 * t4 + t5,
            _H * t2 - _2 * t0 - _5H * t1 - t3 - t4 + _3H * t5,
            _H * t3 - _3H * t0 - _H * t1 - _5H * t2 - _2 * t4 - _2 * t5,
            t0 + t1 + t2 + t3 + t4 - _3H * t5,
            t5)


@_jit
def _at6(m0, m1, m2, m3, m4, m5):
    """A^T m (six values -> four)."""
    return (m0 + m1 + m2 + m3 + m4,
            m1 - m2 + _2 * m3 - _H * m4,
            m1 + m2 + _4 * m3 + _Q * m4,
            m1 - m2 + _8 * m3 - _E * m4 + m5)


@_jit
def _a4(g0, g1, g2, g3):
    """A g (four values -> six): the adjoint of _at6."""
    return (g0,
            g0 + g1 + g2 + g3,
            g0 - g1 + g2 - g3,
            g0 + _2 * g1 + _4 * g2 + _8 * g3,
            g0 - _H * g1 + _Q * g2 - _E * g3,
            g3)


@_jit
def _input_transform4(x, ph, pw, th, tw, v, d, t, lo, hi):
    c, nb = x.shape[3], t.shape[0]
    for p0 in range(lo, hi, nb):                 # tiles lo..hi-1, a block at a time
        size = min(nb, hi - p0)
        for q in range(size):                    # t[q] = B^T d (over rows), per tile
            b, ti, tj = _tile(p0 + q, th, tw)
            _gather(x, b, 4 * ti - ph, 4 * tj - pw, d)
            for j in range(6):
                for ch in range(c):
                    (t[q, 0, j, ch], t[q, 1, j, ch], t[q, 2, j, ch], t[q, 3, j, ch],
                     t[q, 4, j, ch], t[q, 5, j, ch]) = _bt6(d[0, j, ch], d[1, j, ch], d[2, j, ch],
                                                            d[3, j, ch], d[4, j, ch], d[5, j, ch])
        for i in range(6):                       # V = t B (over columns), per row of V
            e = 6 * i
            for q in range(size):
                p = p0 + q
                for ch in range(c):
                    (v[e, p, ch], v[e + 1, p, ch], v[e + 2, p, ch], v[e + 3, p, ch],
                     v[e + 4, p, ch], v[e + 5, p, ch]) = _bt6(
                        t[q, i, 0, ch], t[q, i, 1, ch], t[q, i, 2, ch], t[q, i, 3, ch],
                        t[q, i, 4, ch], t[q, i, 5, ch])


@_jit
def _output_transform4(m, th, tw, y, t, s, lo, hi):
    k, nb = y.shape[3], t.shape[0]
    for p0 in range(lo, hi, nb):                 # tiles lo..hi-1, a block at a time
        size = min(nb, hi - p0)
        for j in range(6):                       # t = A^T m (rows 6 -> 4), per column of M
            for q in range(size):
                p = p0 + q
                for ch in range(k):
                    t[q, 0, j, ch], t[q, 1, j, ch], t[q, 2, j, ch], t[q, 3, j, ch] = _at6(
                        m[j, p, ch], m[6 + j, p, ch], m[12 + j, p, ch], m[18 + j, p, ch],
                        m[24 + j, p, ch], m[30 + j, p, ch])
        for q in range(size):                    # y = t A (columns 6 -> 4), per tile
            b, ti, tj = _tile(p0 + q, th, tw)
            for i in range(4):
                for ch in range(k):
                    s[i, 0, ch], s[i, 1, ch], s[i, 2, ch], s[i, 3, ch] = _at6(
                        t[q, i, 0, ch], t[q, i, 1, ch], t[q, i, 2, ch], t[q, i, 3, ch],
                        t[q, i, 4, ch], t[q, i, 5, ch])
            _tile_out(s, y, b, 4 * ti, 4 * tj)   # the pixels of the tile that exist


@_jit
def _output_transform_adjoint4(g, th, tw, dm, s, t, lo, hi):
    k, nb = g.shape[3], t.shape[0]
    for p0 in range(lo, hi, nb):                 # tiles lo..hi-1, a block at a time
        size = min(nb, hi - p0)
        for q in range(size):                    # t[q] = A g (rows 4 -> 6), per tile
            b, ti, tj = _tile(p0 + q, th, tw)
            _tile_in(g, b, 4 * ti, 4 * tj, s)    # s <- the 4x4 patch, zeros past the edge
            for j in range(4):
                for ch in range(k):
                    (t[q, 0, j, ch], t[q, 1, j, ch], t[q, 2, j, ch], t[q, 3, j, ch],
                     t[q, 4, j, ch], t[q, 5, j, ch]) = _a4(s[0, j, ch], s[1, j, ch],
                                                           s[2, j, ch], s[3, j, ch])
        for i in range(6):                       # dM = t A^T (columns 4 -> 6), per row of dM
            e = 6 * i
            for q in range(size):
                p = p0 + q
                for ch in range(k):
                    (dm[e, p, ch], dm[e + 1, p, ch], dm[e + 2, p, ch], dm[e + 3, p, ch],
                     dm[e + 4, p, ch], dm[e + 5, p, ch]) = _a4(
                        t[q, i, 0, ch], t[q, i, 1, ch], t[q, i, 2, ch], t[q, i, 3, ch])


@_jit
def _input_transform_adjoint4(dv, ph, pw, th, tw, dx, d, t, lo, hi):
    c, nb = dx.shape[3], t.shape[0]
    for p0 in range(lo, hi, nb):                 # tiles lo..hi-1, a block at a time
        size = min(nb, hi - p0)
        for i in range(6):                       # t = dv B^T (over columns), per row of dV
            e = 6 * i
            for q in range(size):
                p = p0 + q
                for ch in range(c):
                    (t[q, i, 0, ch], t[q, i, 1, ch], t[q, i, 2, ch], t[q, i, 3, ch],
                     t[q, i, 4, ch], t[q, i, 5, ch]) = _b6(
                        dv[e, p, ch], dv[e + 1, p, ch], dv[e + 2, p, ch], dv[e + 3, p, ch],
                        dv[e + 4, p, ch], dv[e + 5, p, ch])
        for q in range(size):                    # d = B t (over rows), per tile
            b, ti, tj = _tile(p0 + q, th, tw)
            for j in range(6):
                for ch in range(c):
                    (d[0, j, ch], d[1, j, ch], d[2, j, ch], d[3, j, ch], d[4, j, ch],
                     d[5, j, ch]) = _b6(t[q, 0, j, ch], t[q, 1, j, ch], t[q, 2, j, ch],
                                        t[q, 3, j, ch], t[q, 4, j, ch], t[q, 5, j, ch])
            _scatter_add(dx, b, 4 * ti - ph, 4 * tj - pw, d)   # the patch back onto dx


# --------------------------------------------------------------- wrappers
BLOCK_BYTES = 256 << 10
THREADS = 2 if (os.cpu_count() or 1) >= 2 else 1   # for F(4x4)'s kernels: see _in_halves
_worker = {}                                       # process id -> its one worker thread


def _in_halves(images, per_image, run):
    """``run(lo, hi)`` over the tiles of ``images`` images, ``per_image`` tiles each.

    With ``THREADS = 2`` and two images or more, the second half of the images
    runs on a worker thread while this thread runs the first (the kernels
    release the GIL). Halves of whole images: the input adjoint's patches of
    two images never overlap, so the two threads never write the same value,
    and every value is computed as in one pass. F(4x4)'s kernels are
    memory-bound, yet two threads took the preset's transforms from 1.23-1.36
    to 0.74-0.81 s a step (with OpenBLAS's worker asleep after its multiplies:
    ``OPENBLAS_THREAD_TIMEOUT`` in ``minitorch_cnn/_threading.py``).
    """
    split = images // 2 * per_image if THREADS > 1 else 0
    if split == 0:
        run(0, images * per_image)
        return
    pool = _worker.get(os.getpid())              # a forked child makes its own
    if pool is None:
        pool = _worker[os.getpid()] = ThreadPoolExecutor(1, "minitorch-winograd")
    later = pool.submit(run, split, images * per_image)
    try:
        run(0, split)
    finally:
        later.result()


def _block(shape, c, dtype):
    """F(4x4)'s scratch for a block of tiles, (n,) + shape + (C,): n tiles fill about
    ``BLOCK_BYTES``, so that the block stays in the core's L2 cache."""
    n = max(1, BLOCK_BYTES // (shape[0] * shape[1] * c * np.dtype(dtype).itemsize))
    return np.empty((n,) + shape + (c,), dtype=dtype)


def _check(f):
    if f is not F2x2 and f is not F4x4:
        raise ValueError(f"winograd_numba has kernels for F2x2 and F4x4 only, not {f!r}")
    return f is F2x2


def input_transform(x, ph, pw, th, tw, out=None, f=F2x2):
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    v = np.empty((f.a * f.a, n * th * tw, c), dtype=x.dtype) if out is None else out
    if _check(f):
        _input_transform(x, ph, pw, th, tw, v, *np.empty((2, 4, 4, c), x.dtype))
    else:
        _in_halves(n, th * tw, lambda lo, hi: _input_transform4(
            x, ph, pw, th, tw, v, np.empty((f.a, f.a, c), x.dtype),
            _block((f.a, f.a), c, x.dtype), lo, hi))
    return v


def output_transform(m, n, oh, ow, th, tw, out=None, f=F2x2):
    k = m.shape[2]
    y = np.empty((n, oh, ow, k), dtype=m.dtype) if out is None else out
    m = np.ascontiguousarray(m)
    if _check(f):
        _output_transform(m, th, tw, y, np.empty((2, 2, k), m.dtype))
    else:
        _in_halves(n, th * tw, lambda lo, hi: _output_transform4(
            m, th, tw, y, _block((f.m, f.a), k, m.dtype), np.empty((f.m, f.m, k), m.dtype),
            lo, hi))
    return y


def output_transform_adjoint(g, th, tw, out=None, f=F2x2):
    g = np.ascontiguousarray(g)
    n, _, _, k = g.shape
    dm = np.empty((f.a * f.a, n * th * tw, k), dtype=g.dtype) if out is None else out
    if _check(f):
        _output_transform_adjoint(g, th, tw, dm, np.empty((2, 2, k), g.dtype),
                                  np.empty((4, 2, k), g.dtype))
    else:
        _in_halves(n, th * tw, lambda lo, hi: _output_transform_adjoint4(
            g, th, tw, dm, np.empty((f.m, f.m, k), g.dtype), _block((f.a, f.m), k, g.dtype),
            lo, hi))
    return dm


def input_transform_adjoint(dv, x_shape, ph, pw, th, tw, out=None, f=F2x2):
    dx = np.zeros(x_shape, dtype=dv.dtype) if out is None else out
    if out is not None:
        dx[...] = 0
    dv, c = np.ascontiguousarray(dv), x_shape[3]
    if _check(f):
        _input_transform_adjoint(dv, ph, pw, th, tw, dx, *np.empty((2, 4, 4, c), dv.dtype))
    else:
        _in_halves(x_shape[0], th * tw, lambda lo, hi: _input_transform_adjoint4(
            dv, ph, pw, th, tw, dx, np.empty((f.a, f.a, c), dv.dtype),
            _block((f.a, f.a), c, dv.dtype), lo, hi))
    return dx
