"""Small maps as one dense matrix multiply: exact, no im2col, no padded taps.

On a 2x2 map with padding 1, a 3x3 window at each of the 4 output pixels sees
the whole map, and 5 of its 9 taps fall on padding: im2col + GEMM spends
36 C K multiply-adds per image, 20 of them on zeros. Written as a linear map
from the whole input image (H W C values) to the whole output image
(OH OW K values), the convolution is one GEMM with a dense weight D:

    D[(a, b, c), (i, j, k)] = w[k, c, a - i*sh + ph, b - j*sw + pw]   (0 where the tap
                                                                       falls outside w)
    forward    y = x @ D          x (N, H W C), y (N, OH OW K); D is stored as its
                                  transpose (OH OW, K, H W, C), whose blocks are
                                  w[:, :, p, q] as PyTorch lays it out
    backward   dx = g @ D^T,  dD = x^T @ g,  dw[k, c, p, q] = the sum of dD over
               the blocks that used tap (p, q)

For a 2x2 map with padding 1 every block of D is a real tap (16 C K
multiply-adds, the minimum); the form is exact for any kernel, stride and
padding, and the choice rule (``algorithms.py``) uses it where it measured faster.
"""
import numpy as np

from ._workspace import Workspace, pair

MAX_PIXELS = 16          # maps up to 4x4: D has (H W)(OH OW) blocks of C x K


class DenseSmallMap:
    """ConvAlgorithm for maps of at most 16 pixels (and a kernel larger than 1x1)."""

    name = "dense-small-map"

    def __init__(self, x_shape, weight_shape, stride, padding):
        self.stride, self.padding = pair(stride), pair(padding)
        self.workspace = Workspace(self.name)
        self._pairs, self._zeroed = {}, None

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = weight_shape[2:], pair(stride), pair(padding)
        h, w = x_shape[1], x_shape[2]
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        return kh * kw > 1 and h * w <= MAX_PIXELS and oh >= 1 and ow >= 1

    def _blocks(self, x_shape, kernel):
        """[(src pixel, dst pixel, tap row, tap col)] of D's non-zero blocks, and (OH, OW)."""
        key = (x_shape[1:3], kernel)
        if key not in self._pairs:
            (h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape[1:3], kernel, self.stride, self.padding
            oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            self._pairs[key] = ([(a * w + b, i * ow + j, p, q)
                                 for i in range(oh) for j in range(ow)
                                 for p in range(kh) for q in range(kw)
                                 for a, b in [(i * sh - ph + p, j * sw - pw + q)]
                                 if 0 <= a < h and 0 <= b < w], (oh, ow))
        return self._pairs[key]

    def forward(self, x, w):
        n, h, wd, c = x.shape
        k = w.shape[0]
        blocks, (oh, ow) = self._blocks(x.shape, w.shape[2:])
        ws = self.workspace
        token = ws.step()
        # D^T as (OH OW, K, H W, C): each block is w[:, :, p, q] as it is, (K, C)
        shape = (oh * ow, k, h * wd, c)
        dt = ws.get(("dt",) + shape, shape, x.dtype)
        if dt.base is not self._zeroed:                  # a new buffer: its zero blocks stay zero
            dt[...] = 0
            self._zeroed = dt.base
        wt = np.ascontiguousarray(w.transpose(2, 3, 0, 1))              # (kh, kw, K, C)
        for src, dst, p, q in blocks:
            dt[dst, :, src, :] = wt[p, q]
        dt2 = dt.reshape(oh * ow * k, h * wd * c)
        y = np.ascontiguousarray(x).reshape(n, -1) @ dt2.T
        return y.reshape(n, oh, ow, k), (x, dt2, token)

    def backward(self, g, saved, w, need_dx):
        x, dt2, token = saved
        self.workspace.check(token)
        n, h, wd, c = x.shape
        k, _, kh, kw = w.shape
        blocks, (oh, ow) = self._blocks(x.shape, (kh, kw))
        g2 = np.ascontiguousarray(g).reshape(n, -1)
        ddt = (g2.T @ x.reshape(n, -1)).reshape(oh * ow, k, h * wd, c)  # dD^T
        dwt = np.zeros((kh, kw, k, c), dtype=g.dtype)
        for src, dst, p, q in blocks:                                   # each tap: sum its blocks
            dwt[p, q] += ddt[dst, :, src, :]
        dw = np.ascontiguousarray(dwt.transpose(2, 3, 0, 1))
        dx = (g2 @ dt2).reshape(x.shape) if need_dx else None
        return dx, dw
