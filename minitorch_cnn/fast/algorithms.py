"""Which convolution algorithm the fast path runs for a shape, and why (measured).

``choose(x_shape, weight_shape, stride, padding)`` returns a new algorithm
object (see fast/conv.py for the protocol). Every algorithm is exact (float64
parity with PyTorch in tests/test_fast_algorithms.py); they differ in speed,
memory and float32 rounding, so the rules encode measurements (of speed, and for
``F4X4_MIN_CHANNELS`` of accuracy too):

* stride-1 3x3 convolutions: Winograd F(4x4, 3x3) or F(2x2, 3x3) (``winograd.py``)
  where they measured faster, on small maps the dense form (``small_map.py``);
* everything else: im2col + GEMM (the teaching layer's method), with the
  im2col matrix rebuilt in backward instead of kept when O >= 128 and the
  kernel is larger than 1x1: +1 % time there, much less memory; for the
  seed's O = 64 layers rebuilding cost 12-30 % (docs/performance.md).
"""
from ._workspace import pair
from .im2col import Im2colGemm
from .small_map import DenseSmallMap
from .winograd import Winograd2x2, Winograd4x4

F4X4_MIN_TILES = 512    # F(4x4)'s 36 GEMMs need this many rows (4x4 tiles in the batch)
F4X4_MIN_CHANNELS = 64  # ... and this long an inner dimension (input channels)
ALGORITHMS = {"im2col+gemm": Im2colGemm, Winograd2x2.name: Winograd2x2,
              Winograd4x4.name: Winograd4x4, DenseSmallMap.name: DenseSmallMap}


def choose(x_shape, weight_shape, stride, padding):
    """The algorithm for a convolution: x (N, H, W, C), weight (K, C, kh, kw).

    * a 3x3 stride-1 convolution with C >= ``F4X4_MIN_CHANNELS`` input channels, an
      output of at least 3x3 and at least ``F4X4_MIN_TILES`` 4x4 output tiles in the
      batch: ``Winograd4x4`` (FastNet's five 3x3 layers at batch 512 and
      2,000; 2.25 multiplies per output instead of F(2x2)'s 4, and V and M
      2.25x the input and output instead of 4x, but 36 GEMMs whose rows are the
      tiles, too short below a few hundred: the seed model's layers at batch
      100, 100-400 tiles, measured slower with it);
    * otherwise, on a map of at most 9 pixels: ``DenseSmallMap``
      (the seed's layer3/layer4 at 2x2: every block of the dense weight is a
      real tap, 16 C K multiply-adds per image, the minimum; at 3x3 as many
      multiply-adds as im2col's, in one GEMM without the copy);
    * a 3x3 stride-1 convolution with C >= 128 input channels, or C >= 64 and
      either an output of even height and width or K >= 256 output channels:
      ``Winograd2x2``;
    * everything else (1x1, the 7x7 and 2x2 stems, strided, 3x3s with few
      input channels): im2col + GEMM.

    Measured with benchmarks/bench_conv.py on a quiet 2-core Zen 3 EPYC
    (2026-12-01), forward + backward, float32, two threads, wall clock, ms, in
    two runs (OpenBLAS as it is / Haswell kernels forced, which on this Zen 3 are
    the kernels it picks anyway; benchmarks/results/2026-12-01_epyc-2core-kvm_conv-algorithms_2threads-wall_quiet_*.txt):

    ============================  ===========  ===========  =========  ===========
    shape (batch)                 im2col       winograd     dense      PyTorch
    ============================  ===========  ===========  =========  ===========
    64->64 @7x7 (100)             12.2 / 13.0  14.7 / 16.1  -          11.5 / 9.0
    64->64 @4x4 (100)             4.5 / 3.6    3.4 / 2.4    6.8 / 6.1  4.7 / 3.3
    128->128 @4x4 (100)           12.4 / 12.5  10.7 / 8.5   35 / 26    13.1 / 14.9
    128->128 @2x2 (100)           4.0 / 3.0    3.5 / 2.9    2.9 / 2.0  7.7 / 6.8
    256->256 @2x2 (100)           11.4 / 12.3  10.9 / 12.6  8.7 / 9.7  21.8 / 22.4
    24->64 @31x31 (512)           501 / 532    617 / 709    -          724 / 675
    64->64 @15x15 (512)           277 / 281    278 / 269    -          254 / 273
    64->256 @15x15 (512)          744 / 731    711 / 721    -          1080 / 1110
    256->256 @7x7 (512)           665 / 661    498 / 521    -          862 / 843
    256->256 @3x3 (512)           120 / 117    164 / 121    117 / 122  159 / 154
    ============================  ===========  ===========  =========  ===========

    Winograd's 16 GEMMs have C as their inner dimension (im2col's has 9 C), so
    they need C >= 64 to run near the GEMM's speed; and an odd output wastes part
    of its last tiles (a 7x7 output is tiled as 8x8: 49 of 64 values used). The
    rule keeps it where both runs measured it at least as fast. (On one thread
    of the loaded machine, CPU time, Winograd had won every shape.) A direct
    Numba loop for FastNet's 2x2 stem lost to im2col (14.1 against 5.9 ms at
    batch 128). So did im2col + GEMM a block of images at a time (the matrix
    still in cache for its GEMM, rebuilt per block in backward): at one thread
    it cut the seed's 7x7 stem forward from 11.7 to 8.3 ms (CPU time), but at
    two threads its small GEMMs lost, 18-30 against 16 ms forward + backward
    for blocks of 0.25-4 MB, and 34-75 against 31-32 ms for FastNet's 2x2 stem
    (quiet, 2026-12-01 evening).

    Measured again on a quiet 2-core Zen 4 EPYC (2026-12-06, AVX-512, FastNet's
    layers at batch 512 and 2,000; table in docs/performance_log.md, "Zen 4 and a
    batch of 2,000"). Two choices changed with it, each backed by the Zen 3 runs too: a 15x15
    output wastes only 1 - 225/256 of its tiles, and with K = 4 C the 16 GEMMs
    are wide enough that Winograd won 64->256 @15x15 on both processors (0.90x
    im2col here, 0.96-0.99x on Zen 3), while 64->64 @15x15 stays with im2col
    (1.02-1.12x here, a tie there); and on the 3x3 map the dense form, as many
    multiply-adds as im2col and no copy, beat Winograd (0.82-0.91x) and tied
    im2col on Zen 3, so the dense form now takes maps of up to 9 pixels.

    F(4x4) took C >= 64 until its tile transforms ran in blocks of tiles that stay in
    L2 (kernels/winograd_numba.py, 2026-12-06, same Zen 4): since then it wins with
    fewer input channels too, forward + backward, ms, F(4x4) / im2col: 24->64 @31x31
    222 / 335 at batch 512 and 875 / 1348 at 2,000 (PyTorch 488 and 1969);
    16->16 @32x32 (batch 128) 21 / 37; 32->32 @16x16 (128) 12 / 22; but 8->16
    @32x32 (512) 76 / 74 and 3->16 61 / 40. It took C >= 16 for a day and went back
    to C >= 64 (2026-12-07) for accuracy, not speed: --preset cifar10-muon with F(4x4)
    on its 24->64 layer ended at 89.78 / 89.94 / 89.92 / 90.68 % over seeds 0-3, with
    im2col there at 90.46 / 90.16 / 89.86 / 90.92 % (docs/results.md, Run 5f). Weak
    evidence (3 seeds of 4, +0.27 points on average, paired t = 1.8), but the layer's
    2 minutes a run are affordable: the run meets its time without them.
    """
    out_channels, in_channels, kh, kw = weight_shape
    stride, padding = pair(stride), pair(padding)
    args = (x_shape, weight_shape, stride, padding)
    if (kh, kw) == (3, 3) and stride == (1, 1):
        oh, ow = x_shape[1] + 2 * padding[0] - 2, x_shape[2] + 2 * padding[1] - 2
        tiles = x_shape[0] * -(-oh // 4) * -(-ow // 4)               # rows of F(4x4)'s GEMMs
        if (in_channels >= F4X4_MIN_CHANNELS and min(oh, ow) >= 3 and tiles >= F4X4_MIN_TILES
                and Winograd4x4.applies(*args)):
            return Winograd4x4(*args)
        if x_shape[1] * x_shape[2] <= 9 and DenseSmallMap.applies(*args):
            return DenseSmallMap(*args)
        even = oh % 2 == 0 and ow % 2 == 0
        if ((in_channels >= 128 or (in_channels >= 64 and (even or out_channels >= 256)))
                and Winograd2x2.applies(*args)):
            return Winograd2x2(*args)
    return Im2colGemm(*args, recompute=kh * kw > 1 and out_channels >= 128)
