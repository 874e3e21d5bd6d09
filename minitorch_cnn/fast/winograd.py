"""Winograd F(2x2, 3x3) and F(4x4, 3x3): a stride-1 3x3 convolution in 16 (36) matrix multiplies over 2x2 (4x4) tiles.

Direct convolution spends 9 multiply-adds per output pixel and channel pair;
F(2x2, 3x3) spends 16 per 2x2 tile, i.e. 4, a 2.25x saving, for the price of
cheap additions (the tile transforms, ``minitorch_cnn/kernels/winograd_*.py``).
All three passes run in the transformed domain (docs/layers/conv2d.md):

    forward      V = B^T d B (input),  U = G w G^T (filter),  M[e] = V[e] @ U[e],
                 y = A^T m A
    backward     dM = A g A^T  (the adjoint of the output transform), then
                 dU[e] = V[e]^T @ dM[e]   -> dw = G^T du G,
                 dV[e] = dM[e] @ U[e]^T   -> dx = B dv B^T, added back over
                                             overlapping patches

so the input gradient needs no flipped kernel and no second tiling: it reuses
the forward's U and the backward's dM.

F(4x4, 3x3) is the same code with 6x6 patches, 36 GEMMs and 2.25 multiplies per
output (``Winograd4x4``). It rounds more: its transforms hold larger
coefficients (up to 8 and 5/2), so its float32 error is 3-8x im2col + GEMM's,
about 4e-6 of the output's scale (docs/layers/conv2d.md), within issue 14's
1e-5 for it but beyond the 2x that F(2x2) keeps; float64 results are exact
to 1e-12 like every algorithm's.
"""
import numpy as np

from .. import kernels
from ..kernels.winograd_reference import F2x2, F4x4
from ._workspace import Workspace, pair


SHARED_WORKSPACE = Workspace("winograd-2x2")


class Winograd2x2:
    """ConvAlgorithm for 3x3 kernels, stride 1, any padding up to 2.

    The transformed arrays are 4x the size of the input and the output (16
    values per 2x2 tile): 738 MB for FastNet's first 3x3 layer at batch 512.
    So the batch runs in chunks of images whose V and M together fill about
    ``CHUNK_BYTES``, in one workspace that every Winograd layer of the process
    shares (layers run one at a time, and nothing in it outlives a call), and
    backward recomputes V from the input (the input transform is a few per
    cent of the layer's time). Measured (batch 128, ms forward + backward,
    2 threads, wall / CPU): 64->256 @15x15: 710/701 with 16 MB chunks,
    555/558 with 64 MB, 383/426 with 256 MB, 395/419 in one pass;
    256->256 @7x7: 890/925, 364/375, 366/379, 402/406. Small chunks lose
    because each costs 48 BLAS calls, whose threads must meet every time.
    """

    name = "winograd-2x2"
    TRANSFORM = F2x2
    CHUNK_BYTES = 256 << 20
    KEEP_V = False

    def __init__(self, x_shape, weight_shape, stride, padding):
        self.stride, self.padding = pair(stride), pair(padding)
        self.workspace = SHARED_WORKSPACE

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        (ph, pw), h, w = pair(padding), x_shape[1], x_shape[2]
        return (tuple(weight_shape[2:]) == (3, 3) and pair(stride) == (1, 1)
                and 0 <= ph <= 2 and 0 <= pw <= 2 and h + 2 * ph >= 3 and w + 2 * pw >= 3)

    def _plan(self, x_shape, k, itemsize):
        """Output size, tiles per image and images per chunk."""
        (ph, pw), (n, h, w, c), f = self.padding, x_shape, self.TRANSFORM
        oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
        th, tw = -(-oh // f.m), -(-ow // f.m)
        per_image = f.a * f.a * th * tw * (c + k) * itemsize
        return oh, ow, th, tw, max(1, min(n, self.CHUNK_BYTES // per_image))

    def _chunks(self, x, k, th, tw, chunk):
        """(first image, last image + 1, V and M workspaces for the chunk)."""
        n, c, e = x.shape[0], x.shape[3], self.TRANSFORM.a ** 2
        for b0 in range(0, n, chunk):
            b1 = min(n, b0 + chunk)
            p = (b1 - b0) * th * tw
            yield (b0, b1, self.workspace.get("v", (e, p, c), x.dtype),
                   self.workspace.get("m", (e, p, k), x.dtype))

    def forward(self, x, w):
        (ph, pw), (n, k), f = self.padding, (x.shape[0], w.shape[0]), self.TRANSFORM
        oh, ow, th, tw, chunk = self._plan(x.shape, k, x.itemsize)
        u = kernels.winograd_filter(w, f).transpose(0, 2, 1)             # (a*a, C, K) view
        y, kept = np.empty((n, oh, ow, k), dtype=x.dtype), []
        for b0, b1, v, m in self._chunks(x, k, th, tw, chunk):
            if self.KEEP_V:
                v = np.empty_like(v)                                     # outlives the call
                kept.append(v)
            kernels.winograd_input(x[b0:b1], ph, pw, th, tw, out=v, f=f)
            np.matmul(v, u, out=m)                                       # a*a GEMMs
            kernels.winograd_output(m, b1 - b0, oh, ow, th, tw, out=y[b0:b1], f=f)
        return y, (x, u, kept)

    def backward(self, g, saved, w, need_dx):
        (x, u, kept), (ph, pw), k, f = saved, self.padding, w.shape[0], self.TRANSFORM
        _, _, th, tw, chunk = self._plan(x.shape, k, x.itemsize)
        dut = np.zeros((f.a * f.a, k, x.shape[3]), dtype=x.dtype)        # dU^T, summed over chunks
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
        for i, (b0, b1, v, dm) in enumerate(self._chunks(x, k, th, tw, chunk)):
            kernels.winograd_output_adjoint(g[b0:b1], th, tw, out=dm, f=f)
            if kept:
                v = kept[i]
            else:
                kernels.winograd_input(x[b0:b1], ph, pw, th, tw, out=v, f=f)
            dut += np.matmul(dm.transpose(0, 2, 1), v)
            if need_dx:
                dv = np.matmul(dm, u.transpose(0, 2, 1), out=v)          # V is used up
                kernels.winograd_input_adjoint(dv, (b1 - b0,) + x.shape[1:], ph, pw, th, tw,
                                               out=dx[b0:b1], f=f)
        return dx, kernels.winograd_filter_adjoint(dut, f)


class Winograd4x4(Winograd2x2):
    """ConvAlgorithm F(4x4, 3x3): Winograd2x2's passes with 6x6 patches and 36 GEMMs.

    V and M take 36 values per 4x4 tile, 2.25x the input and output (F(2x2):
    4x), so a chunk holds more images; the workspace is the same shared one.
    Each chunk's V is kept from forward for backward (``KEEP_V``) instead of
    recomputed: about 0.4 s of a batch-2,000 training step, for V's memory.
    """

    name = "winograd-4x4"
    TRANSFORM = F4x4
    KEEP_V = True
