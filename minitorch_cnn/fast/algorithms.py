"""Which convolution algorithm the fast path runs for a shape, and why (measured).

``choose(x_shape, weight_shape, stride, padding)`` returns a new algorithm
object (see fast/conv.py for the protocol). The rules, each from a
measurement quoted in docs/performance.md:

* im2col + GEMM for everything (the teaching layer's method);
* with the im2col matrix rebuilt in backward instead of kept when
  O >= 128 and the kernel is larger than 1x1: +1 % time there, much less
  memory; for the seed's O = 64 layers rebuilding cost 12-30 %.
"""
from .im2col import Im2colGemm


def choose(x_shape, weight_shape, stride, padding):
    out_channels, _, kh, kw = weight_shape
    return Im2colGemm(x_shape, weight_shape, stride, padding,
                      recompute=kh * kw > 1 and out_channels >= 128)
