"""A stem on RGB images: direct loops instead of a narrow im2col matrix.

FastNet's 2x2 stem (3 -> 24 channels, 32x32 -> 31x31) has only 12 taps:
its im2col matrix is 12 values wide and 492,032 rows long at batch 512, the
copy runs 6 values at a time and the GEMM that reads it is memory-bound.
The direct kernels (``minitorch_cnn/kernels/direct_numba.py``) skip the
matrix in all three passes. Measured (see ``algorithms.py``), they pay off
only for that few taps: the seed's 7x7 stem (147 taps, 64 channels) stays on
im2col + GEMM, where BLAS's two threads beat one serial loop.
"""
from .. import kernels
from ._workspace import pair

MAX_TAPS = 32


class DirectFewTaps:
    """ConvAlgorithm for kernels with at most 32 taps (KH*KW*C), any stride and padding."""

    name = "direct-few-taps"

    def __init__(self, stride=1, padding=0):
        self.stride, self.padding = pair(stride), pair(padding)

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = weight_shape[2:], pair(stride), pair(padding)
        return (weight_shape[1] * kh * kw <= MAX_TAPS and (x_shape[1] + 2 * ph - kh) // sh >= 0
                and (x_shape[2] + 2 * pw - kw) // sw >= 0)

    def _args(self, w):
        return (*w.shape[2:], *self.stride, *self.padding)

    def forward(self, x, w):
        wt = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])           # (KH*KW*C, K)
        return kernels.direct_forward(x, wt, *self._args(w)), x

    def backward(self, g, saved, w, need_dx):
        x, (k, c, kh, kw) = saved, w.shape
        dwt = kernels.direct_weight_grad(x, g, *self._args(w))
        dw = dwt.reshape(kh, kw, c, k).transpose(3, 2, 0, 1).copy()
        if not need_dx:
            return None, dw
        wt = w.transpose(2, 3, 1, 0).reshape(-1, k)
        return kernels.direct_input_grad(g, wt, x.shape, *self._args(w)), dw
