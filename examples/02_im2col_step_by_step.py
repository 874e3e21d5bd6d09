# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # im2col, step by step
#
# A convolution is a dot product between the kernel and every window of the
# input. im2col copies every window into one row of a matrix, so that the
# whole convolution becomes one matrix multiply. This walkthrough builds it by
# hand on a tiny NHWC input, checks it against the library, runs the backward
# pass as two matrix multiplies and a col2im, and draws the picture
# (`im2col.png` in `runs/examples/`). The derivation: docs/layers/conv2d.md.

# %%
import os
import sys
from pathlib import Path

try:
    import minitorch_cnn  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the repository next to this file
    sys.path.insert(0, str(Path(globals().get("__file__", Path.cwd() / "_")).resolve().parents[1]))

import numpy as np

from minitorch_cnn import kernels, nn, viz

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"   # CI: a smaller batch at the end
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
np.set_printoptions(linewidth=120)

# %% [markdown]
# ## A 4×4 image with 2 channels
#
# NHWC: `x[n, i, j, c]`. We fill it with 0, 1, 2, ... in memory order, so the
# two channels of pixel (i, j) hold the consecutive numbers `2(4i + j)` and
# `2(4i + j) + 1`: the channels of a pixel are neighbours in memory.

# %%
N, H, W, C = 1, 4, 4, 2
x = np.arange(N * H * W * C, dtype=np.float64).reshape(N, H, W, C)
print("channel 0:\n", x[0, :, :, 0])
print("channel 1:\n", x[0, :, :, 1])

# %% [markdown]
# ## im2col by hand
#
# Kernel 2×2, stride 1, no padding: the output is 3×3, so there are 9
# windows. Row `(i, j)` of the column matrix is the window at output position
# (i, j), read in the order (kernel row p, kernel column q, channel c).

# %%
kh = kw = 2
sh = sw = 1
OH, OW = (H - kh) // sh + 1, (W - kw) // sw + 1
cols = np.zeros((N * OH * OW, kh * kw * C))
for n in range(N):
    for i in range(OH):
        for j in range(OW):
            row = (n * OH + i) * OW + j
            for p in range(kh):
                for q in range(kw):
                    for c in range(C):
                        cols[row, (p * kw + q) * C + c] = x[n, i * sh + p, j * sw + q, c]
print(cols.shape)
print(cols)

# %% [markdown]
# Every window row `p` is `kw * C = 4` consecutive numbers (e.g. `0 1 2 3`):
# in NHWC one window row is a single contiguous run of memory, which is why
# im2col is cheap in this layout. The library's kernels give the same matrix
# (the NumPy twin and the Numba kernel alike):

# %%
for backend in ("numpy", "numba"):
    previous = kernels.set_backend(backend)
    np.testing.assert_array_equal(kernels.im2col(x, kh, kw, sh, sw, 0, 0), cols)
    kernels.set_backend(previous)
print("kernels.im2col == the loops above, with both backends")

# %% [markdown]
# ## The convolution is one matrix multiply
#
# The weight has PyTorch's layout `(O, C, kh, kw)`. Rearranged to
# `(kh, kw, C, O)` and flattened to `(kh*kw*C, O)` its rows have the same
# (p, q, c) order as the columns of `cols`. Then `cols @ W_col` is the
# output, one row per output pixel, and a reshape makes it NHWC.

# %%
rng = np.random.default_rng(0)
conv = nn.Conv2d(C, 3, kernel_size=2, bias=False, rng=rng).to(np.float64)
W_col = conv.weight.data.transpose(2, 3, 1, 0).reshape(-1, 3)
y_gemm = (cols @ W_col).reshape(N, OH, OW, 3)
np.testing.assert_allclose(y_gemm, conv(x))
print("cols (9, 8) @ W_col (8, 3) -> (9, 3) -> y", y_gemm.shape, "== Conv2d(x)")

# %% [markdown]
# ## Backward: two matrix multiplies and col2im
#
# With `G = dL/dy` as a `(9, 3)` matrix: `dW_col = cols.T @ G`,
# `dcols = G @ W_col.T`, and `dx = col2im(dcols)`, which adds every row back
# onto the pixels it was copied from. A pixel in k windows collects k terms.

# %%
G = rng.standard_normal((N, OH, OW, 3))
conv(x)
conv.zero_grad()
dx = conv.backward(G)
Gm = G.reshape(-1, 3)
dW = (cols.T @ Gm).reshape(kh, kw, C, 3).transpose(3, 2, 0, 1)
np.testing.assert_allclose(conv.weight.grad, dW)
dcols = Gm @ W_col.T
dx_hand = np.zeros_like(x)
for i in range(OH):
    for j in range(OW):
        patch = dcols[i * OW + j].reshape(kh, kw, C)
        dx_hand[0, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += patch
np.testing.assert_allclose(dx, dx_hand)
np.testing.assert_allclose(kernels.col2im(dcols, x.shape, kh, kw, sh, sw, 0, 0), dx_hand)
print("weight.grad and the input gradient match the hand computation")

# %% [markdown]
# How many windows does each pixel belong to? col2im of a matrix of ones
# counts them: corners 1, edges 2, the inside 4.

# %%
counts = kernels.col2im(np.ones_like(cols), x.shape, kh, kw, sh, sw, 0, 0)
print(counts[0, :, :, 0])

# %% [markdown]
# ## 1×1 convolutions need no copy
#
# A 1×1 window is one pixel, and `cols` is a reshape of x — a view that
# shares memory with it.

# %%
cols_1x1 = kernels.im2col(x, 1, 1, 1, 1, 0, 0)
print(cols_1x1.shape, "shares memory with x:", np.shares_memory(cols_1x1, x))

# %% [markdown]
# ## The cost: memory
#
# For the seed model's first layer (7×7, stride 2, padding 3) on a batch of
# 100 CIFAR images, the column matrix is 12 times the size of the input:

# %%
xb = np.zeros((10 if FAST else 100, 32, 32, 3), dtype=np.float32)
big = kernels.im2col(xb, 7, 7, 2, 2, 3, 3)
print(f"x {xb.shape}: {xb.nbytes / 1e6:.1f} MB -> cols {big.shape}: {big.nbytes / 1e6:.1f} MB")

# %% [markdown]
# ## The picture

# %%
path = viz.plot_im2col(OUT / "im2col.png", height=4, width=4, channels=2, kernel=2, stride=1)
print("wrote", path)
path = viz.plot_im2col(OUT / "im2col_stride2_pad1.png", height=4, width=4, channels=1, kernel=3,
                       stride=2, padding=1, highlight=0, figsize=(10, 4))
print("wrote", path)
