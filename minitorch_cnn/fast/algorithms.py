"""Which convolution algorithm the fast path runs for a shape: ``choose()``, by measurement.

Every algorithm is exact (float64 parity with PyTorch in tests/test_fast_algorithms.py);
they differ in speed only, so the rule below encodes what benchmarks/bench_conv.py
measured (numbers in the docstring of ``choose``).
"""
from .. import kernels
from ._workspace import pair
from .small_map import DenseSmallMap
from .winograd import Winograd2x2


class Im2colGemm:
    """Placeholder for the fast path's im2col + GEMM (minitorch_cnn/fast/conv.py)."""

    name = "im2col"

    def __init__(self, stride=1, padding=0):
        self.stride, self.padding = pair(stride), pair(padding)

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        return True

    def forward(self, x, w):
        k = w.shape[0]
        cols = kernels.im2col(x, *w.shape[2:], *self.stride, *self.padding)
        w_col = w.transpose(0, 2, 3, 1).reshape(k, -1).T
        return self._shape(cols @ w_col, x.shape, w.shape), (x.shape, cols, w_col)

    def _shape(self, y, x_shape, w_shape):
        (kh, kw), (sh, sw), (ph, pw) = w_shape[2:], self.stride, self.padding
        oh, ow = kernels.out_size(x_shape[1], kh, sh, ph), kernels.out_size(x_shape[2], kw, sw, pw)
        return y.reshape(x_shape[0], oh, ow, w_shape[0])

    def backward(self, g, saved, w, need_dx):
        x_shape, cols, w_col = saved
        k, c, kh, kw = w.shape
        g2 = g.reshape(-1, k)
        dw = (g2.T @ cols).reshape(k, kh, kw, c).transpose(0, 3, 1, 2)
        if not need_dx:
            return None, dw
        return kernels.col2im(g2 @ w_col.T, x_shape, kh, kw, *self.stride, *self.padding), dw


ALGORITHMS = {cls.name: cls for cls in (Im2colGemm, Winograd2x2, DenseSmallMap)}


def choose(x_shape, weight_shape, stride, padding):
    """The algorithm class for a convolution: x (N, H, W, C), weight (K, C, kh, kw).

    * a 3x3 stride-1 convolution on a map of at most 4 pixels: ``DenseSmallMap``
      (the seed's layer3/layer4 at 2x2: every block of the dense weight is a
      real tap, 16 C K multiply-adds per image, the minimum);
    * any other 3x3 stride-1 convolution: ``Winograd2x2``;
    * everything else (1x1, the 7x7 and 2x2 stems, strided): im2col + GEMM.

    Measured with benchmarks/bench_conv.py's worker, forward + backward, float32,
    CPU time of one thread (the 2-core machine was shared, load 4-7, which made
    wall-clock A/B comparisons swing by 2x; CPU time does not count the time
    other processes held the core), ms, im2col / winograd (chunked) / dense:

    =========================  ======  ========  =====
    shape (batch)              im2col  winograd  dense
    =========================  ======  ========  =====
    64->64 @7x7 (100)          17.2    14.2      -
    64->64 @4x4 (100)          6.2     3.7       10.4
    128->128 @4x4 (100)        20.2    12.0      42.1
    128->128 @2x2 (100)        5.9     4.1       3.5
    256->256 @2x2 (100)        20.9    13.9      12.7
    24->64 @31x31 (128)        173.0   170.6     -
    64->64 @15x15 (128)        103.6   80.9      -
    64->256 @15x15 (128)       324.1   251.3     -
    256->256 @7x7 (128)        273.8   189.2     -
    256->256 @3x3 (128)        50.8    49.7      56.4
    =========================  ======  ========  =====

    The 4x4 dense form loses (256 of its 16x16 blocks, 100 real taps), and so
    does a direct Numba loop for FastNet's 2x2 stem (tried: 14.1 ms against
    im2col's 5.9 ms at batch 128 -- BLAS's microkernel beats a serial loop even
    at 12 taps).
    """
    (kh, kw), (sh, sw) = tuple(weight_shape[2:]), pair(stride)
    if (kh, kw) == (3, 3) and (sh, sw) == (1, 1):
        if x_shape[1] * x_shape[2] <= 4 and DenseSmallMap.applies(x_shape, weight_shape, stride,
                                                                   padding):
            return DenseSmallMap
        if Winograd2x2.applies(x_shape, weight_shape, stride, padding):
            return Winograd2x2
    return Im2colGemm
