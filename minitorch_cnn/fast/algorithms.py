"""Which convolution algorithm the fast path runs for a shape, and why (measured).

``choose(x_shape, weight_shape, stride, padding)`` returns a new algorithm
object (see fast/conv.py for the protocol). Every algorithm is exact (float64
parity with PyTorch in tests/test_fast_algorithms.py); they differ in speed
and memory only, so the rules encode measurements:

* stride-1 3x3 convolutions: Winograd F(2x2, 3x3) (``winograd.py``), or on
  maps of at most 2x2 pixels the dense form (``small_map.py``);
* everything else: im2col + GEMM (the teaching layer's method), with the
  im2col matrix rebuilt in backward instead of kept when O >= 128 and the
  kernel is larger than 1x1: +1 % time there, much less memory; for the
  seed's O = 64 layers rebuilding cost 12-30 % (docs/performance.md).
"""
from ._workspace import pair
from .im2col import Im2colGemm
from .small_map import DenseSmallMap
from .winograd import Winograd2x2

ALGORITHMS = {"im2col+gemm": Im2colGemm, Winograd2x2.name: Winograd2x2,
              DenseSmallMap.name: DenseSmallMap}


def choose(x_shape, weight_shape, stride, padding):
    """The algorithm for a convolution: x (N, H, W, C), weight (K, C, kh, kw).

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
    out_channels, _, kh, kw = weight_shape
    stride, padding = pair(stride), pair(padding)
    args = (x_shape, weight_shape, stride, padding)
    if (kh, kw) == (3, 3) and stride == (1, 1):
        if x_shape[1] * x_shape[2] <= 4 and DenseSmallMap.applies(*args):
            return DenseSmallMap(*args)
        if Winograd2x2.applies(*args):
            return Winograd2x2(*args)
    return Im2colGemm(*args, recompute=kh * kw > 1 and out_channels >= 128)
