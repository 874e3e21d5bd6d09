# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # The seed's ResidualBlock, built by hand
#
# The seed document (a student's PyTorch project) fills in a bottleneck
# `ResidualBlock` and stacks 13 of them into `ResNet50_layer4`. Here we build
# the same block from `minitorch_cnn.nn` layers, write its backward pass —
# the one line that makes a residual network residual — check it against the
# library's `models.ResidualBlock` and against finite differences, look at the
# seed's `is not` quirk, count what a bottleneck saves, and measure how the
# gradient travels through a deep stack with and without shortcuts
# (`residual_gradient_flow.png` in `runs/examples/`). Page: docs/resnet.md.

# %%
import os
import sys
from pathlib import Path

try:
    import minitorch_cnn  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the repository next to this file
    sys.path.insert(0, str(Path(globals().get("__file__", Path.cwd() / "_")).resolve().parents[1]))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import models, nn

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"   # CI: a shallower stack
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The helpers and the block, as in the seed
#
# The seed's `conv1x1(in, out, stride, padding)` and `conv3x3(...)` are
# `Conv2d` + `BatchNorm2d` + `ReLU`. The block's main path `layer` is the
# bottleneck 1×1 → 3×3 → 1×1; the shortcut is `downsize` (stride 2) when the
# block downsamples and `make_equal_channel` otherwise.

# %%
def conv1x1(in_channels, out_channels, stride, padding):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, padding=padding,
                                   rng=rng),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def conv3x3(in_channels, out_channels, stride, padding):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding,
                                   rng=rng),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class MyResidualBlock(nn.Module):
    def __init__(self, in_channels, middle_channels, out_channels, downsample=False):
        super().__init__()
        self.downsample = downsample
        first_stride = 2 if downsample else 1
        self.layer = nn.Sequential(
            conv1x1(in_channels, middle_channels, first_stride, 0),
            conv3x3(middle_channels, middle_channels, 1, 1),
            conv1x1(middle_channels, out_channels, 1, 0))
        if downsample:
            self.downsize = conv1x1(in_channels, out_channels, 2, 0)
        else:
            self.make_equal_channel = conv1x1(in_channels, out_channels, 1, 0)

    def shortcut(self):
        return self.downsize if self.downsample else self.make_equal_channel

    def forward(self, x):
        # the seed: `if x.size() is not out.size(): x = self.make_equal_channel(x)` -- always true
        return self.layer(x) + self.shortcut()(x)

    def backward(self, grad_out):
        # y = F(x) + S(x): the sum passes grad_out to both terms unchanged, and since x fed
        # both paths, the two gradients with respect to x add up.
        return self.layer.backward(grad_out) + self.shortcut().backward(grad_out)


# %% [markdown]
# ## Same keys, same numbers as the library's block

# %%
mine = MyResidualBlock(64, 64, 256, downsample=False)
lib = models.ResidualBlock(64, 64, 256, downsample=False)
assert list(mine.state_dict()) == list(lib.state_dict())
print(len(mine.state_dict()), "state_dict keys, e.g.", list(mine.state_dict())[:3])
lib.load_state_dict(mine.state_dict())

x = rng.standard_normal((4, 7, 7, 64)).astype(np.float32)
y_mine, y_lib = mine(x), lib(x)
np.testing.assert_allclose(y_mine, y_lib, rtol=1e-5, atol=1e-5)
g = rng.standard_normal(y_mine.shape).astype(np.float32)
np.testing.assert_allclose(mine.backward(g), lib.backward(g), rtol=1e-4, atol=1e-5)
print("forward and backward agree with models.ResidualBlock:", y_mine.shape)

# %% [markdown]
# A downsampling block halves the resolution in both paths (stride 2 on the
# first 1×1 convolution and on `downsize`): 7×7 → 4×4.

# %%
down = MyResidualBlock(64, 32, 128, downsample=True)
print("downsampling block:", x.shape, "->", down(x).shape)

# %% [markdown]
# ## Gradient check of the hand-made block
#
# Small channel counts keep the finite differences quick (one forward pass
# per perturbed number, two per number in all).

# %%
small = MyResidualBlock(3, 2, 4, downsample=True)
xs = np.random.default_rng(1).standard_normal((2, 5, 5, 3))
errors = mt.gradcheck(small, xs)
worst = max(v for k, v in errors.items() if not k.endswith(".0.bias"))
print(f"input: {errors['input']:.1e}, worst parameter (conv biases excluded): {worst:.1e}")
assert errors["input"] < 1e-6 and worst < 1e-6
print("conv biases before BatchNorm:", {k: f"{v:.1e}" for k, v in errors.items()
                                        if k.endswith(".0.bias")})

# %% [markdown]
# The errors of order 1 for the convolution biases are
# not a bug: a bias in front of BatchNorm is removed again by the mean
# subtraction, its true gradient is exactly 0, and both sides of the
# comparison are rounding noise (docs/layers/batchnorm.md).
#
# ## The `is not` quirk
#
# `x.size() is not out.size()` asks whether two objects are *the same
# object*, and each `.size()` call makes a new `torch.Size`, so it is always
# true. With `!=` the identity shortcut would be used whenever the shapes
# match. (Python caches small integers and some tuples, so `is` on values can
# even *seem* to work, which makes the bug hard to spot.)

# %%
try:
    import torch
    t = torch.zeros(2, 3)
    print("t.size() is not t.size():", t.size() is not t.size(), "  t.size() != t.size():",
          t.size() != t.size())
except ImportError:
    a, b = [2, 3], [2, 3]
    print("without torch, the same with lists: a is not b:", a is not b, "  a != b:", a != b)

seed = models.resnet50_layer4()
paper = models.resnet50_layer4_paper()
n_seed = sum(p.size for p in seed.parameters())
n_paper = sum(p.size for p in paper.parameters())
print(f"seed model: {n_seed:,} parameters; with identity shortcuts: {n_paper:,} "
      f"({100 * (n_seed - n_paper) / n_seed:.0f} % fewer)")

# %% [markdown]
# ## Why a bottleneck
#
# At 256 channels, the paper's basic block (two 3×3 convolutions) and its
# bottleneck (1×1 down to 64, 3×3 at 64, 1×1 back up to 256) compared:

# %%
basic = models.BasicBlock(256, 256)
bottleneck = models.Bottleneck(256, 64)
for name, block in (("basic 3x3-3x3 at 256", basic), ("bottleneck 1x1-3x3-1x1", bottleneck)):
    s = mt.summary(block, (8, 8, 256))
    print(f"{name:24s} {s.total_params:>9,} parameters {s.total_macs:>12,} MACs on 8x8")

# %% [markdown]
# About 17 times fewer multiply-adds for the same input and output width: the
# expensive 3×3 convolution runs on a quarter of the channels.
#
# ## Why the shortcut helps the gradient
#
# Stack D blocks. Through a plain stack the gradient at the bottom is the
# product of D Jacobians, so its size changes geometrically with depth. With
# identity shortcuts, $x_{l+1} = x_l + F_l(x_l)$, so
# $\partial L/\partial x_l = \partial L/\partial x_{l+1}\,(I + \partial F_l/\partial x_l)$:
# the gradient from the top always arrives through the identity term,
# whatever the convolutions do. We measure the gradient norm at the input of
# every block of a freshly initialised stack of paper-style blocks
# (conv-BN-ReLU-conv-BN, then ReLU), with and without the shortcut.

# %%
depth, width = (10, 8) if FAST else (20, 16)


class PlainBlock(models.BasicBlock):
    """BasicBlock without its shortcut: y = relu(bn2(conv2(relu(bn1(conv1 x)))))."""

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out)

    def backward(self, grad_out):
        g = self.relu2.backward(grad_out)
        return self.conv1.backward(self.bn1.backward(self.relu1.backward(
            self.conv2.backward(self.bn2.backward(g)))))


xg = np.random.default_rng(2).standard_normal((8, 8, 8, width)).astype(np.float32)
gtop = np.random.default_rng(3).standard_normal(xg.shape).astype(np.float32)
curves = {}
for name, block in (("plain", PlainBlock), ("residual", models.BasicBlock)):
    stack = nn.Sequential(*[block(width, width, rng=np.random.default_rng(10 + i))
                            for i in range(depth)])
    stack(xg)
    norms, g = [], gtop
    for b in reversed(list(stack)):
        g = b.backward(g)
        norms.append(float(np.linalg.norm(g)))
    curves[name] = np.array(norms[::-1]) / np.linalg.norm(gtop)
    ratio = curves[name][0] / curves[name][-1]
    print(f"{name:8s}: |dL/dx| at block 1 / at block {depth} = {ratio:8.1f}"
          f"  ({ratio ** (1 / (depth - 1)):.2f} per block)")

fig, ax = plt.subplots(figsize=(6, 4))
for name, c in curves.items():
    ax.semilogy(np.arange(1, depth + 1), c, "o-", label=name)
ax.set(xlabel="block (1 = next to the input)", ylabel="|dL/d input of block| / |dL/d output|",
       title=f"Gradient through {depth} blocks at initialisation")
ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "residual_gradient_flow.png", dpi=100)
plt.close(fig)
print("wrote", OUT / "residual_gradient_flow.png")

# %% [markdown]
# With BatchNorm, a plain stack does not make the gradient vanish at
# initialisation: it makes it *grow* by a roughly constant factor per block,
# so the bottom layers get gradients orders of magnitude larger than the top
# ones and no single learning rate suits both. The residual stack changes it
# far less per block. Either way the lesson is the same: without shortcuts
# the gradient's scale is a product over the depth, with them it has a path
# that is not multiplied by anything.
