"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution in 16 matrix multiplies over 2x2 tiles.

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
"""
import numpy as np

from .. import kernels
from ._workspace import Workspace, pair


class Winograd2x2:
    """ConvAlgorithm for 3x3 kernels, stride 1, any padding up to 2."""

    name = "winograd-2x2"

    def __init__(self, stride=1, padding=1):
        self.stride, self.padding = pair(stride), pair(padding)
        self.workspace = Workspace(self.name)

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        (ph, pw), h, w = pair(padding), x_shape[1], x_shape[2]
        return (tuple(weight_shape[2:]) == (3, 3) and pair(stride) == (1, 1)
                and 0 <= ph <= 2 and 0 <= pw <= 2 and h + 2 * ph >= 3 and w + 2 * pw >= 3)

    @staticmethod
    def _tiles(x_shape, padding):
        (ph, pw), (n, h, w, _) = padding, x_shape
        oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
        return oh, ow, (oh + 1) // 2, (ow + 1) // 2

    def forward(self, x, w):
        ph, pw = self.padding
        n, _, _, c = x.shape
        k = w.shape[0]
        oh, ow, th, tw = self._tiles(x.shape, (ph, pw))
        ws, p = self.workspace, n * th * tw
        token = ws.step()
        u = kernels.winograd_filter(w).transpose(0, 2, 1)                # (16, C, K) view
        v = kernels.winograd_input(x, ph, pw, th, tw, out=ws.get("v", (16, p, c), x.dtype))
        m = np.matmul(v, u, out=ws.get("m", (16, p, k), x.dtype))        # 16 GEMMs
        y = kernels.winograd_output(m, n, oh, ow, th, tw)
        return y, (x.shape, (ph, pw), v, u, token)

    def backward(self, g, saved, w, need_dx):
        x_shape, (ph, pw), v, u, token = saved
        self.workspace.check(token)
        _, _, th, tw = self._tiles(x_shape, (ph, pw))
        dm = kernels.winograd_output_adjoint(g, th, tw, out=self.workspace.get(
            "m", (16, v.shape[1], g.shape[3]), g.dtype))                  # M is free now
        dw = kernels.winograd_filter_adjoint(np.matmul(dm.transpose(0, 2, 1), v))  # dU^T
        if not need_dx:
            return None, dw
        dv = np.matmul(dm, u.transpose(0, 2, 1), out=v)                  # V is free now
        return kernels.winograd_input_adjoint(dv, x_shape, ph, pw, th, tw), dw
