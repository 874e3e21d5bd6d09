# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Loading PyTorch weights
#
# minitorch_cnn keeps PyTorch's parameter names and shapes (only the
# activations are NHWC), so a PyTorch `state_dict` loads without any
# transposes. This walkthrough writes the seed document's model in PyTorch,
# saves its weights with `torch.save`, loads them into
# `minitorch_cnn.models.resnet50_layer4`, compares the outputs, and sends
# weights back the other way. It draws `pytorch_vs_minitorch_logits.png` in
# `runs/examples/`. Without PyTorch it does the half that needs no torch.
# Page: docs/resnet.md (section "Moving weights to and from PyTorch").

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

from minitorch_cnn import interop, models

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
BATCH = 2 if FAST else 8

try:
    import torch
    from torch import nn as tnn
    torch.set_num_threads(1)     # small tensors; leave the cores to NumPy's BLAS
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the torch half (pip install torch to run it)")

# %% [markdown]
# ## The seed's model in PyTorch
#
# Written from the seed document: `conv1x1`/`conv3x3` are Conv2d (with its
# default bias) + BatchNorm2d + ReLU; the block adds the main path to a
# shortcut that, because of `is not`, is always a 1×1 projection; the stages
# downsample in their *last* block; the head is `AvgPool2d((1, 1), stride=2)`
# and `Linear(1024, 10)`.

# %%
if torch is not None:
    def t_conv1x1(i, o, stride, padding):
        return tnn.Sequential(tnn.Conv2d(i, o, 1, stride, padding), tnn.BatchNorm2d(o),
                              tnn.ReLU(inplace=True))

    def t_conv3x3(i, o, stride, padding):
        return tnn.Sequential(tnn.Conv2d(i, o, 3, stride, padding), tnn.BatchNorm2d(o),
                              tnn.ReLU(inplace=True))

    class TorchResidualBlock(tnn.Module):
        def __init__(self, in_channels, middle_channels, out_channels, downsample=False):
            super().__init__()
            self.downsample = downsample
            s = 2 if downsample else 1
            self.layer = tnn.Sequential(t_conv1x1(in_channels, middle_channels, s, 0),
                                        t_conv3x3(middle_channels, middle_channels, 1, 1),
                                        t_conv1x1(middle_channels, out_channels, 1, 0))
            if downsample:
                self.downsize = t_conv1x1(in_channels, out_channels, 2, 0)
            else:
                self.make_equal_channel = t_conv1x1(in_channels, out_channels, 1, 0)

        def forward(self, x):
            out = self.layer(x)
            if self.downsample:
                return out + self.downsize(x)
            if x.size() is not out.size():          # the seed's test: always true
                x = self.make_equal_channel(x)
            return out + x

    class TorchResNet50_layer4(tnn.Module):  # noqa: N801 -- the seed's name
        def __init__(self, num_classes=10):
            super().__init__()
            self.layer1 = tnn.Sequential(tnn.Conv2d(3, 64, 7, 2, 3), tnn.BatchNorm2d(64),
                                         tnn.ReLU(inplace=True), tnn.MaxPool2d(3, 2, 0))

            def stage(cin, mid, cout, n, down_last):
                return tnn.Sequential(*[TorchResidualBlock(cin if i == 0 else cout, mid, cout,
                                                           down_last and i == n - 1)
                                        for i in range(n)])
            self.layer2 = stage(64, 64, 256, 3, True)
            self.layer3 = stage(256, 128, 512, 4, True)
            self.layer4 = stage(512, 256, 1024, 6, False)
            self.fc = tnn.Linear(1024, num_classes)
            self.avgpool = tnn.AvgPool2d((1, 1), stride=2)

        def forward(self, x):
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).view(x.size(0), -1))

    torch.manual_seed(0)
    theirs = TorchResNet50_layer4()
    # a few training-mode passes give the BatchNorms non-trivial running statistics
    with torch.no_grad():
        for _ in range(2):
            theirs(torch.randn(16, 3, 32, 32))
    theirs.eval()
    ckpt = OUT / "seed_model_torch.ckpt"
    torch.save(theirs.state_dict(), ckpt)
    print(f"saved {len(theirs.state_dict())} tensors to {ckpt}")

# %% [markdown]
# ## Into minitorch_cnn
#
# `interop.load_state_dict` reads the torch file (with `weights_only=True`),
# checks every key and shape before writing anything, and copies the arrays.
# The same keys, the same shapes: `layer2.0.layer.0.0.weight` is
# `(64, 64, 1, 1)` in both.

# %%
if torch is not None:
    ours = interop.load_state_dict(models.resnet50_layer4(), ckpt).eval()
    images = np.random.default_rng(0).standard_normal((BATCH, 32, 32, 3)).astype(np.float32)
    ours_logits = ours(images)                                      # NHWC in
    with torch.no_grad():
        nchw = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())  # NHWC -> NCHW for torch
        their_logits = theirs(nchw).numpy()
    diff = np.abs(ours_logits - their_logits).max()
    print(f"logits {ours_logits.shape}: largest difference {diff:.2e} "
          f"(largest logit {np.abs(their_logits).max():.2f})")
    assert diff < 1e-3 * max(1.0, np.abs(their_logits).max())
    print("same predictions:", (ours_logits.argmax(1) == their_logits.argmax(1)).all())

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(their_logits.ravel(), ours_logits.ravel(), s=12)
    lims = [their_logits.min() - 0.1, their_logits.max() + 0.1]
    ax.plot(lims, lims, "k--", lw=0.8)
    ax.set(xlabel="PyTorch logit", ylabel="minitorch_cnn logit",
           title=f"Seed model, same weights\nmax |difference| = {diff:.1e}")
    fig.tight_layout()
    fig.savefig(OUT / "pytorch_vs_minitorch_logits.png", dpi=100)
    plt.close(fig)
    print("wrote", OUT / "pytorch_vs_minitorch_logits.png")

# %% [markdown]
# ## Wrong weights for the model: one error listing everything
#
# The paper variant (`resnet50_layer4_paper`) has no `make_equal_channel`
# where shapes match, so the seed's checkpoint has keys it does not know.
# Loading is all or nothing, and the error lists every offending key.
# `strict=False` loads the common keys and ignores the rest.

# %%
seed_state = models.resnet50_layer4().state_dict()
paper = models.resnet50_layer4_paper()
try:
    interop.load_state_dict(paper, seed_state)
except interop.StateDictMismatchError as err:
    print(f"StateDictMismatchError: {len(err.unexpected)} unexpected keys, e.g. {err.unexpected[:2]}")
interop.load_state_dict(paper, seed_state, strict=False)
print("strict=False: the shared keys were loaded")

# %% [markdown]
# ## And back: our weights into PyTorch
#
# `interop.export_npz` writes our `state_dict` with PyTorch's keys; PyTorch
# loads it with `torch.from_numpy`. (The `.npz` route needs no torch on the
# machine that writes it.)

# %%
mine = models.resnet50_layer4(rng=np.random.default_rng(1))
path = interop.export_npz(mine, OUT / "seed_model_ours.npz")
print("exported", path)
if torch is not None:
    back = TorchResNet50_layer4()
    with np.load(path) as z:
        back.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
    back.eval()
    mine.eval()
    with torch.no_grad():
        t_out = back(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    print(f"PyTorch with our weights: max |difference| {np.abs(t_out - mine(images)).max():.2e}")
else:
    again = interop.load_state_dict(models.resnet50_layer4(), path)
    print("reloaded our own export; keys:", len(again.state_dict()))
