# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Gradient checking, step by step
#
# Every layer of minitorch_cnn has a hand-written `backward`. How do we know
# it is right? We compare it with the derivative measured numerically:
#
# $$\frac{\partial L}{\partial v} \approx \frac{L(v + h) - L(v - h)}{2h}.$$
#
# This script (it also opens as a notebook: every `# %%` is a cell)
#
# 1. measures a derivative numerically and picks the step $h$;
# 2. gradient-checks every layer with `minitorch_cnn.gradcheck`;
# 3. breaks a backward pass on purpose and watches the check catch it;
# 4. shows why the check runs in float64.
#
# It writes `gradcheck_step_size.png` to `runs/examples/` (set
# `MINITORCH_EXAMPLE_OUT` to change the folder). Pages: docs/layers/*.md.

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
import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import nn
from minitorch_cnn.gradcheck import numerical_gradient, relative_error

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"   # CI: smaller inputs
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
# Seed 1, not 0: gradcheck draws its random upstream gradient G from seed 0, and an
# input drawn from the same seed would *equal* G. For BatchNorm, L = sum(y * x) is then
# almost constant (its gradient is of order eps) and the relative error is all noise.
rng = np.random.default_rng(1)

# %% [markdown]
# ## 1. A numerical derivative, and the choice of h
#
# For $f(x) = \sin x$ the exact derivative is $\cos x$. The centred difference
# has a truncation error $\approx h^2 f'''/6$ that shrinks with $h$, and a
# rounding error $\approx \varepsilon_{\text{machine}} |f| / h$ that grows as
# $h$ shrinks. In float64 ($\varepsilon \approx 10^{-16}$) the two balance near
# $h \approx 10^{-5}$; `gradcheck` uses $h = 10^{-6}$.

# %%
x0 = 1.0
hs = np.logspace(-12, -1, 45)
err64 = [abs((np.sin(x0 + h) - np.sin(x0 - h)) / (2 * h) - np.cos(x0)) for h in hs]
x32 = np.float32(x0)
err32 = [abs(float((np.sin(x32 + np.float32(h)) - np.sin(x32 - np.float32(h))) / np.float32(2 * h))
             - np.cos(x0)) if np.float32(h) > 0 else np.nan for h in hs]
best = hs[int(np.nanargmin(err64))]
print(f"float64: smallest error {min(err64):.1e} at h = {best:.0e}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(hs, err64, "o-", ms=3, label="float64")
ax.loglog(hs, err32, "s-", ms=3, label="float32")
ax.axvline(1e-6, color="grey", ls="--", lw=1, label="gradcheck's h")
ax.set(xlabel="step h", ylabel="|numerical - exact|", title="Centred difference of sin at x = 1")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "gradcheck_step_size.png", dpi=100)
plt.close(fig)
print("wrote", OUT / "gradcheck_step_size.png")

# %% [markdown]
# ## 2. Check every layer
#
# `mt.gradcheck(module, x)` deep-copies the module, casts it to float64, draws
# a random upstream gradient $G$ and compares, for the input and for every
# parameter, `backward`'s answer with centred differences of
# $L = \sum y \odot G$. It returns one relative error per tensor.
# (Why a random $G$ and not all ones: the outputs of softmax and BatchNorm sum
# to a constant, so with $G = 1$ their check would pass even with a wrong
# backward.)

# %%
size = 5 if FAST else 7
x = rng.standard_normal((2, size, size, 3))
layers = {
    "Conv2d 3x3 s2 p1": nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng),
    "Conv2d 1x1 s2": nn.Conv2d(3, 4, 1, stride=2, rng=rng),
    "BatchNorm2d (train)": nn.BatchNorm2d(3),
    "ReLU": nn.ReLU(),
    "MaxPool2d 3x3 s2": nn.MaxPool2d(3, stride=2),
    "AvgPool2d 2x2": nn.AvgPool2d(2),
    "AdaptiveAvgPool2d(1)": nn.AdaptiveAvgPool2d(1),
    "Conv-BN-ReLU": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False, rng=rng),
                                  nn.BatchNorm2d(4), nn.ReLU()),
}
worst = 0.0
for name, layer in layers.items():
    errors = mt.gradcheck(layer, x)
    worst = max(worst, max(errors.values()))
    print(f"{name:22s} " + "  ".join(f"{k}: {v:.1e}" for k, v in errors.items()))
print("Linear               ", mt.gradcheck(nn.Linear(6, 3, rng=rng), rng.standard_normal((4, 6))))
assert worst < 1e-6, worst

# %% [markdown]
# ## 3. A wrong backward pass, caught
#
# A classic mistake in BatchNorm's backward: treat the batch mean and variance
# as constants, i.e. return $\gamma g / \sqrt{\sigma^2 + \epsilon}$ in training
# mode too. That is the *evaluation-mode* gradient. The forward pass is right,
# the network would even train a little — and the check fails loudly.

# %%
class ForgetfulBatchNorm(nn.BatchNorm2d):
    """Wrong on purpose: ignores that mean and variance depend on x."""

    def forward(self, x):
        axes = (0, 1, 2)
        self.saved_inv_std = 1.0 / np.sqrt(x.var(axis=axes) + self.eps)
        self.saved_x_hat = (x - x.mean(axis=axes)) * self.saved_inv_std
        return super().forward(x)

    def backward(self, grad_out):
        self._cache = None                       # what the real backward would consume
        axes = (0, 1, 2)
        self.bias.grad += grad_out.sum(axis=axes)
        self.weight.grad += (grad_out * self.saved_x_hat).sum(axis=axes)
        return grad_out * self.weight.data * self.saved_inv_std


errors = mt.gradcheck(ForgetfulBatchNorm(3), x)
print("forgetful BatchNorm:", {k: f"{v:.1e}" for k, v in errors.items()})
assert errors["input"] > 1e-2            # the input gradient is wrong...
assert errors["weight"] < 1e-6           # ...while gamma's and beta's are right
print("correct BatchNorm:  ", {k: f"{v:.1e}" for k, v in mt.gradcheck(nn.BatchNorm2d(3), x).items()})

# %% [markdown]
# The parameter gradients pass and only the input gradient fails: exactly the
# part of the derivation (the paths through $\mu$ and $\sigma^2$) that was
# left out. docs/layers/batchnorm.md derives the correct form.

# %% [markdown]
# ## 4. Why float64
#
# The same check in float32, by hand with `numerical_gradient`, on BatchNorm
# (smooth but curved, so a large h has a truncation error). Float32 rounds at
# about $10^{-7}$ relative; divided by $2h$ that noise swamps the derivative
# for small h, and a large h is inaccurate: no h gets anywhere near float64's
# $10^{-9}$, and a subtle bug could hide in the difference.

# %%
bn = nn.BatchNorm2d(3)                                   # float32 parameters
x32 = (x * 2 + 1).astype(np.float32)
G = rng.standard_normal(x32.shape).astype(np.float32)
bn(x32)
dx = bn.backward(G)
for h in (1e-1, 1e-2, 1e-3, 1e-4):
    numeric = numerical_gradient(lambda: float((bn(x32) * G).sum(dtype=np.float32)), x32, h=h)
    print(f"float32, h={h:.0e}: relative error {relative_error(dx, numeric):.1e}")
print(f"float64 (gradcheck, h=1e-6): {mt.gradcheck(bn, x32.astype(np.float64))['input']:.1e}")
