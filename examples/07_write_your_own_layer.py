# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Write your own layer
#
# Every layer of minitorch_cnn follows one contract (`nn.Module`): `forward(x)`
# computes the output and keeps in a *cache* what the backward pass will need;
# `backward(grad_out)` takes that cache back, **adds** the gradients of the
# layer's parameters into `Parameter.grad` and **returns** the gradient with
# respect to its input. Here we write two layers that the library does not
# have, the way its own layers are written:
#
# 1. `PReLU`, a LeakyReLU whose negative slope is learned, one per channel:
#    a `Parameter`, a cache, an accumulated parameter gradient;
# 2. `Dropout`: different in training and evaluation, with a random mask in
#    its cache;
#
# then check them: a float64 gradient check with a random upstream gradient,
# a PyTorch parity test (skipped when PyTorch is not installed), and a small
# model with an explicit `forward`/`backward` that trains with them, on the
# plain layers and through `minitorch_cnn.compile`. It writes
# `own_layer.png` to `runs/examples/` (set `MINITORCH_EXAMPLE_OUT` to change
# the folder). Page: docs/write_your_own_layer.md.

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
from minitorch_cnn import data, nn, optim
from minitorch_cnn.nn import Cache, check_grad, check_input
from minitorch_cnn.nn.init import default_rng

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"   # CI: fewer training steps
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(1)

# %% [markdown]
# ## 1. A layer with a parameter: PReLU
#
# $y = x$ where $x > 0$ and $y = a_c x$ elsewhere, with one learned slope
# $a_c$ per channel $c$ (the last axis: activations are NHWC). With $G$ the
# upstream gradient,
#
# $$\frac{\partial L}{\partial x} = G \odot \bigl(\mathbb{1}[x > 0] + a_c\,\mathbb{1}[x \le 0]\bigr),
# \qquad \frac{\partial L}{\partial a_c} = \sum_{\text{all but } c} G \odot x \odot \mathbb{1}[x \le 0].$$
#
# The slope touches every value of its channel, so its gradient is a sum over
# the batch and the pixels. What the layer keeps: its input `x` (both
# gradients need it). The docs page derives both formulas.

# %%
class PReLU(nn.Module):
    r"""y = x where x > 0, else a * x, with a learned slope a per channel (PyTorch's PReLU).

    Shapes: x (..., C) -> y (..., C), NHWC: the channel is the last axis;
    weight (num_parameters,), num_parameters = 1 (one slope shared) or C.
    Backward, G = dL/dy:  dx = G where x > 0, else a G;
                          da = sum of G x over the entries where x <= 0
                               (per channel, over every other axis).
    With ``weight.requires_grad = False`` it is a LeakyReLU of slope ``init``.
    """

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.weight = nn.Parameter(np.full(self.num_parameters, init, dtype=dtype))  # registered
        self._cache = None

    def forward(self, x):
        channels = self.num_parameters if self.num_parameters > 1 else None
        check_input(self, x, channels=channels, dtype=self.weight.dtype)
        y = np.where(x > 0, x, self.weight.data * x)
        self._cache = Cache(y.shape, x=x)                 # what backward needs, by name
        return y

    def backward(self, grad_out):
        x = check_grad(self, grad_out).x                  # checks the shape, frees the cache
        a = self.weight.data
        negative = x <= 0
        da = np.where(negative, grad_out * x, 0)
        axes = tuple(range(x.ndim - 1)) if self.num_parameters > 1 else None
        self.weight.grad += da.sum(axis=axes).reshape(self.weight.shape)   # ADD, never assign
        return np.where(negative, a * grad_out, grad_out)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


prelu = PReLU(4)
print(prelu, dict(prelu.named_parameters()))
print("state_dict keys:", list(prelu.state_dict()))       # 'weight', as PyTorch's PReLU

# %% [markdown]
# The checks come for free with `check_input` and `check_grad`, the helpers
# the library's own layers use, so a student's layer fails the way theirs do:

# %%
try:
    prelu.backward(np.ones((2, 4), np.float32))                         # backward before forward
except RuntimeError as err:
    print(f"RuntimeError: {err}")
for bad in (lambda: prelu(np.ones((2, 4, 4, 3), np.float32)),          # 3 channels, not 4
            lambda: prelu(np.ones((2, 4), np.float64)),                # float64 into float32
            lambda: prelu(np.ones((2, 4), np.int64))):                 # not floating point
    try:
        bad()
    except (TypeError, ValueError) as err:
        print(f"{type(err).__name__}: {err}")
prelu(rng.standard_normal((2, 4)).astype(np.float32))
try:
    prelu.backward(np.ones((3, 4), np.float32))                        # not the output's shape
except ValueError as err:
    print(f"ValueError: {err}")

# %% [markdown]
# ## 2. The gradient check
#
# `mt.gradcheck` deep-copies the layer, casts it to float64 and compares
# `backward` with centred differences of $L = \sum y \odot G$ for a random
# $G$, for the input and for every parameter. Keep the inputs away from 0,
# where PReLU has a kink (docs/layers/relu.md shows what a difference across
# the kink gives). Stride is irrelevant here, but the shape is not: a
# non-square NHWC batch, and slopes that are not all equal.

# %%
x = rng.standard_normal((2, 5, 3, 4))
x[np.abs(x) < 1e-3] = 0.5                                  # no entry within 1e-3 of the kink
prelu.weight.data[:] = [0.25, -0.5, 0.1, 2.0]
errors = mt.gradcheck(prelu, x)
print("PReLU(4):", {k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) < 1e-8
shared = mt.gradcheck(PReLU(), x)                          # one slope for every channel
print("PReLU(1):", {k: f"{v:.1e}" for k, v in shared.items()})
assert max(shared.values()) < 1e-8

# %% [markdown]
# Gradients accumulate: two backward passes before `zero_grad()` give twice
# the gradient, exactly as PyTorch's `loss.backward()` twice would. A layer
# that *assigned* `self.weight.grad = ...` would pass the check above (one
# backward from a zeroed gradient) and still be wrong wherever gradients
# accumulate: several batches summed before one optimizer step, or one
# Parameter shared by two layers.

# %%
layer = PReLU(4).to(np.float64)
g = rng.standard_normal(x.shape)
layer(x)
layer.backward(g)
once = layer.weight.grad.copy()
layer(x)
layer.backward(g)
np.testing.assert_allclose(layer.weight.grad, 2 * once)
layer.zero_grad()
print("accumulates: grad after two backward passes = 2 x grad after one")

# %% [markdown]
# ## 3. A layer that behaves differently in training: Dropout
#
# In training, each value is kept with probability $1 - p$ and scaled by
# $1/(1 - p)$, so that $\mathbb{E}[y] = x$; in evaluation it is the identity
# (`model.train()` / `model.eval()` set `self.training` on every module).
# The mask $m \in \{0, 1/(1-p)\}$ is drawn in `forward` and is exactly what
# `backward` needs: $y = m \odot x$ is linear in $x$, so $\partial L/\partial x = m \odot G$.
# The random generator is not model state and not a buffer: PyTorch does not
# save it in `state_dict` either.

# %%
class Dropout(nn.Module):
    r"""Training: y = x * m, m = [u >= p] / (1 - p), u ~ U(0, 1) per entry; eval: y = x.

    Backward: dx = G * m (the mask drawn by forward, kept in the cache).
    ``rng``: a numpy Generator (default: the one ``minitorch_cnn.manual_seed`` seeds).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: expected a drop probability 0 <= p < 1, got {p!r}")
        self.p = float(p)
        self.rng = default_rng(rng)
        self._cache = None

    def draw_mask(self, shape, dtype):
        """0 where a value is dropped, 1 / (1 - p) where it is kept."""
        keep = self.rng.random(shape) >= self.p
        return keep.astype(dtype) / dtype.type(1 - self.p)

    def forward(self, x):
        check_input(self, x)
        mask = self.draw_mask(x.shape, x.dtype) if self.training and self.p > 0 else None
        y = x if mask is None else x * mask
        self._cache = Cache(y.shape, mask=mask)
        return y

    def backward(self, grad_out):
        mask = check_grad(self, grad_out).mask
        return grad_out if mask is None else grad_out * mask

    def extra_repr(self):
        return f"p={self.p}"


drop = Dropout(0.25, rng=np.random.default_rng(0))
ones = np.ones((400, 50), np.float32)
kept = drop(ones)
print(f"train: kept {np.mean(kept > 0):.3f} of the values (expected 0.75), "
      f"mean {kept.mean():.3f} (expected 1)")
assert abs(np.mean(kept > 0) - 0.75) < 0.01 and abs(kept.mean() - 1) < 0.02
g = rng.standard_normal(ones.shape).astype(np.float32)
np.testing.assert_array_equal(drop.backward(g), g * kept)            # dx = G * m
drop.eval()
assert drop(ones) is ones                                              # eval: the identity
drop.train()

# %% [markdown]
# A random layer cannot be gradient-checked as it is: every forward of the
# check would draw a new mask. Check the deterministic part instead: a
# subclass whose `draw_mask` returns one fixed mask. (That is why the mask is
# drawn in a method of its own.)

# %%
class FixedMaskDropout(Dropout):
    def __init__(self, p, mask):
        super().__init__(p)
        self.mask = mask

    def draw_mask(self, shape, dtype):
        return self.mask.astype(dtype)


mask = Dropout(0.5, rng=np.random.default_rng(2)).draw_mask(x.shape, x.dtype)
errors = mt.gradcheck(FixedMaskDropout(0.5, mask), x)
print("Dropout, fixed mask:", {k: f"{v:.1e}" for k, v in errors.items()})
assert errors["input"] < 1e-8

# %% [markdown]
# ## 4. PyTorch parity, as a test
#
# PyTorch is the oracle: same weights in, same outputs and gradients out, in
# float64. The function below is written as a pytest test: copied into a file
# of `tests/`, the suite's `torch` fixture (tests/conftest.py) hands it the
# torch module, or skips it with a message when PyTorch is not installed.
# Here we call it ourselves, and skip the same way. Note the layouts:
# PyTorch's PReLU reads channels from axis 1 (NCHW), ours from the last axis,
# so the input goes in transposed and the output comes back transposed.

# %%
def test_prelu_matches_torch(torch):
    rng = np.random.default_rng(3)
    ours = PReLU(4).to(np.float64)
    ours.weight.data[:] = rng.uniform(-1, 1, 4)
    theirs = torch.nn.PReLU(4).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 5, 3, 4))                             # NHWC, non-square
    g = rng.standard_normal(x.shape)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # NCHW for PyTorch
    yt = theirs(xt)
    yt.backward(torch.from_numpy(g.transpose(0, 3, 1, 2)))
    y = ours(x)
    ours.zero_grad()
    dx = ours.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)


def test_dropout_matches_torch(torch):
    """Masks are random, so compare what is not: given PyTorch's mask, the same maths."""
    x = np.random.default_rng(4).uniform(0.5, 1.5, (64, 32))          # no zeros: y == 0 marks a drop
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.dropout(xt, p=0.25, training=True)
    yt.backward(torch.ones_like(yt))
    mask = (yt.detach().numpy() != 0) / (1 - 0.25)
    ours = FixedMaskDropout(0.25, mask)
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.backward(np.ones_like(x)), xt.grad.numpy(), rtol=1e-12)


try:
    import torch
except ImportError:
    torch = None
if torch is None:
    print("PyTorch is not installed: parity tests skipped (`pip install -e .[torch]`)")
else:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                       # tiny tensors
    try:
        test_prelu_matches_torch(torch)
        test_dropout_matches_torch(torch)
    finally:
        torch.set_num_threads(threads)
    print(f"PyTorch {torch.__version__}: PReLU and Dropout agree in float64")

# %% [markdown]
# ## 5. Inside a model, on both paths
#
# A model is a `Module` whose `forward` calls its layers and whose `backward`
# calls their `backward` in reverse order: the chain rule, one line per
# layer. Nothing in the new layers needs to be registered anywhere else.

# %%
class SmallNet(nn.Module):
    """conv-BN-PReLU, max-pool, conv-BN-ReLU, global average, dropout, fc."""

    def __init__(self, num_classes=10, width=8, rng=None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False, rng=rng)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = PReLU(width)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False, rng=rng)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = Dropout(0.25, rng=rng)
        self.fc = nn.Linear(2 * width, num_classes, rng=rng)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.pool(x)
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.flatten(self.avgpool(x))
        return self.fc(self.dropout(x))

    def backward(self, grad_out):
        g = self.dropout.backward(self.fc.backward(grad_out))
        g = self.avgpool.backward(self.flatten.backward(g))
        g = self.conv2.backward(self.bn2.backward(self.relu2.backward(g)))
        g = self.pool.backward(g)
        return self.conv1.backward(self.bn1.backward(self.act1.backward(g)))


tiny = SmallNet(num_classes=3, width=3, rng=np.random.default_rng(5))
tiny.dropout.p = 0.0                # deterministic for the check (the mask was checked above)
errors = mt.gradcheck(tiny, rng.standard_normal((2, 8, 6, 3)))         # non-square, stride 2
worst = max(errors.values())
print(f"SmallNet: worst relative error {worst:.1e} over {len(errors)} tensors")
assert worst < 1e-6
small = SmallNet(rng=np.random.default_rng(5))
print(mt.summary(small, (16, 16, 3)))

# %% [markdown]
# `minitorch_cnn.compile(model)` runs the same model, with the same
# Parameters, faster: it lends each `Conv2d`, `BatchNorm2d` and `ReLU` a fast
# twin and fuses what a trace of `forward` shows is safe
# ([docs/fast_path.md](../docs/fast_path.md)). Layers it does not know —
# ours — run as themselves, and nothing is fused across them: `bn2` does the
# work of `relu2`, but `bn1` leaves `act1` alone.

# %%
fast = mt.compile(small, input_shape=(16, 16, 3))
print(fast)
print(fast.describe())
assert fast.fusion_counts()["bn_relu"] == 1                         # bn2 + relu2 only
assert small.act1 not in fast.plan.fast and small.dropout not in fast.plan.fast

# %% [markdown]
# Train the model on the synthetic shapes from the same start, once on the
# plain layers and once compiled, with the same batches and the same dropout
# masks (each run reseeds the generator). In float64 the two paths are one
# computation: their losses agree to the last digits, step after step, and we
# assert it. In float32 they are not bit-for-bit the same sums (the compiled
# path fuses and reorders, and BLAS kernels round differently on different
# CPUs), so the curves drift apart by rounding that training amplifies; we
# draw them side by side and assert nothing about them.

# %%
shapes = data.SyntheticShapes(n=100 if FAST else 1000, seed=0, size=16)
images = shapes.images.astype(np.float64) / 255.0
images = (images - images.mean(axis=(0, 1, 2))) / images.std(axis=(0, 1, 2))
labels = shapes.labels
steps, batch = (15, 50) if FAST else (150, 50)
start = SmallNet(rng=np.random.default_rng(6)).state_dict()


def train(compiled, dtype):
    model = SmallNet().to(dtype)
    model.load_state_dict(start)
    model.dropout.rng = np.random.default_rng(7)          # the same masks on both paths
    runner = mt.compile(model) if compiled else model
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    order = np.random.default_rng(8)
    losses = []
    for _ in range(steps):
        idx = order.choice(len(images), batch, replace=False)
        loss = criterion(runner(images[idx].astype(dtype)), labels[idx])
        model.zero_grad()
        runner.backward(criterion.backward())
        opt.step()
        losses.append(float(loss))
    return np.array(losses), model


runs = {(dtype, compiled): train(compiled, dtype)
        for dtype in (np.float64, np.float32) for compiled in (False, True)}
for dtype in (np.float64, np.float32):
    (plain_losses, plain_model), (fast_losses, _) = runs[dtype, False], runs[dtype, True]
    print(f"{np.dtype(dtype).name}: loss {plain_losses[0]:.3f} -> {plain_losses[-1]:.3f} (plain), "
          f"{fast_losses[0]:.3f} -> {fast_losses[-1]:.3f} (compiled); "
          f"largest difference {np.abs(plain_losses - fast_losses).max():.1e}")
(plain64, plain_model), (fast64, fast_model) = runs[np.float64, False], runs[np.float64, True]
np.testing.assert_allclose(fast64, plain64, rtol=1e-10)          # one truth, in float64
np.testing.assert_allclose(fast_model.act1.weight.data, plain_model.act1.weight.data, rtol=1e-10)
print("learned PReLU slopes:", np.round(plain_model.act1.weight.data, 3))

# %%
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
t = np.linspace(-3, 3, 601)
for a, colour in ((0.25, "C0"), (-0.5, "C1")):
    demo = PReLU(init=a).to(np.float64)
    ax1.plot(t, demo(t), color=colour, label=f"y, a = {a}")
    ax1.plot(t, demo.backward(np.ones_like(t)), "--", color=colour, label=f"dy/dx, a = {a}")
ax1.set(xlabel="x", title="PReLU: forward and backward")
ax1.legend(fontsize=8)
ax2.plot(runs[np.float32, False][0], "o-", ms=3, label="plain layers, float32")
ax2.plot(runs[np.float32, True][0], "x--", ms=4, label="minitorch_cnn.compile, float32")
ax2.plot(plain64, ":", color="k", label="both paths, float64")
ax2.set(xlabel="step", ylabel="training loss", title="SmallNet with PReLU and Dropout")
ax2.legend(fontsize=8)
for dtype, marker in ((np.float32, "o-"), (np.float64, "x-")):
    gap = np.abs(runs[dtype, True][0] - runs[dtype, False][0])
    ax3.semilogy(np.maximum(gap, 1e-17), marker, ms=3, label=np.dtype(dtype).name)
ax3.set(xlabel="step", ylabel="|compiled - plain| loss (0 drawn at 1e-17)",
        title="The two paths: rounding only")
ax3.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "own_layer.png", dpi=100)
plt.close(fig)
print("wrote", OUT / "own_layer.png")
