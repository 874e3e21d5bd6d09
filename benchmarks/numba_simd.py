"""Which vector registers the Numba kernels use on this machine (run by hand).

Numba compiles for the host processor (LLVM's ``-mcpu=host``). On an AVX-512
machine (Zen 4, family 25 model 17) the elementwise kernels should use 512-bit
``zmm`` registers; on an AVX2 one, 256-bit ``ymm``. This compiles every kernel
of ``kernels/numba_kernels.py`` and GELU's float32 kernel afresh (a temporary
Numba cache, so nothing comes from ``__pycache__``: cached functions show no
assembly) on small float32 inputs and counts the register names in each
one's assembly.

    python3 benchmarks/numba_simd.py
"""
import os
import re
import sys
import tempfile

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba_simd_")  # before numba loads
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import llvmlite.binding as llvm  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

from minitorch_cnn.kernels import gelu as G  # noqa: E402
from minitorch_cnn.kernels import numba_kernels as K  # noqa: E402


def exercise(rng):
    """Call every kernel once with float32 NHWC inputs, so each compiles its float32 version."""
    x = rng.standard_normal((4, 8, 8, 16)).astype(np.float32)
    scale, shift = np.ones(16, np.float32), np.zeros(16, np.float32)
    K.channel_stats(x)
    K.channel_sum(x)
    y = K.scale_shift(x, scale, shift, relu=True)
    K.batchnorm_backward(x, x, x.mean((0, 1, 2)).astype(np.float64), np.ones(16), scale, shift,
                         relu=True, training=True)
    K.relu_backward(x, y)
    cols = K.im2col(x, 3, 3, 1, 1, 1, 1)
    K.col2im(cols, x.shape, 3, 3, 1, 1, 1, 1)
    out, arg = K.maxpool_forward(x, 2, 2, 2, 2, 0, 0)
    K.maxpool_backward(out, arg, x.shape)
    K.avgpool_backward(K.avgpool_forward(x, 2, 2, 2, 2, 0, 0), x.shape, 2, 2, 2, 2, 0, 0)
    K.sgd_momentum_update(x.copy(), x, x.copy(), 0.1, 0.9, 0.0, 1e-4, True)
    G.forward_numba(x)


def main():
    feats = llvm.get_host_cpu_features()
    print(f"numba {numba.__version__}; LLVM host cpu {llvm.get_host_cpu_name()}; avx512f "
          f"{feats.get('avx512f')}, avx2 {feats.get('avx2')}")
    exercise(np.random.default_rng(0))
    kernels = {n: getattr(K, n) for n in dir(K)} | {"_gelu32": G._gelu32}
    print(f"{'kernel':22s} {'zmm':>5s} {'ymm':>5s} {'xmm':>5s}")
    for name, f in sorted(kernels.items()):
        if not isinstance(f, numba.core.registry.CPUDispatcher):
            continue
        for sig in f.signatures:
            asm = f.inspect_asm(sig)
            counts = [len(re.findall(rf"%{r}mm\d+", asm)) for r in "zyx"]
            print(f"{name:22s} {counts[0]:5d} {counts[1]:5d} {counts[2]:5d}  {sig[0]}")


if __name__ == "__main__":
    main()
