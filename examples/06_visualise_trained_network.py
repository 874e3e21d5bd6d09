# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # What has the network learned?
#
# Pictures of a trained network: its first-layer filters, the feature maps of
# a few layers for one image, and its confusion matrix. It uses the
# checkpoint that `04_train_small_resnet.py` writes
# (`runs/examples/small_resnet.npz`); without one, it first trains a small
# network for a few seconds (less well, so the pictures are noisier).
# Set `EXAMPLE_CHECKPOINT` to use another checkpoint of the same model.
#
# Writes `filters.png`, `feature_maps_stem.png`, `feature_maps_layer3.png`,
# `confusion_trained.png` and `test_samples.png` to `runs/examples/`.
# The functions are in `minitorch_cnn.viz`; the page is docs/training.md
# ("Reading the pictures").

# %%
import os
import sys
from pathlib import Path

try:
    import minitorch_cnn  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the repository next to this file
    sys.path.insert(0, str(Path(globals().get("__file__", Path.cwd() / "_")).resolve().parents[1]))

import numpy as np

from minitorch_cnn import data, models, nn, optim, viz
from minitorch_cnn.training import evaluate, load_checkpoint

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)
CHECKPOINT = Path(os.environ.get("EXAMPLE_CHECKPOINT", OUT / "small_resnet.npz"))

# %% [markdown]
# ## The trained model
#
# A checkpoint holds the weights under PyTorch's key names (`model/...`) and
# a `meta` record; `04` stored the image size, the class names and the
# normalisation there.

# %%
model = models.get_model("resnet8", num_classes=10, rng=np.random.default_rng(0))
if CHECKPOINT.exists():
    state = load_checkpoint(CHECKPOINT)
    model.load_state_dict(state["model"])
    meta = state["meta"]
    size, mean, std = meta["image_size"], meta["mean"], meta["std"]
    print(f"loaded {CHECKPOINT}; test accuracy when saved: "
          f"{meta['history']['epochs'][-1]['test_acc']:.1f} %")
else:
    size = 16
    train_set = data.SyntheticShapes(n=100 if FAST else 1000, seed=0, size=size)
    pixels = train_set.images.reshape(-1, 3) / 255.0
    mean, std = pixels.mean(axis=0).tolist(), pixels.std(axis=0).tolist()
    loader = data.DataLoader(train_set, 50, shuffle=True, transform=data.Normalize(mean, std))
    criterion = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for x, y in loader:
        criterion(model(x), y)
        model.backward(criterion.backward())
        opt.step()
        model.zero_grad()
    print(f"no checkpoint at {CHECKPOINT}: trained one epoch on {len(train_set)} images instead")
model.eval()
normalize = data.Normalize(mean, std)

# %% [markdown]
# ## First-layer filters
#
# The stem's 16 filters, 3×3×3 each, shown as tiny RGB images (each scaled
# to its own range). A 3×3 filter is too small to look like much; look for
# filters that are a colour contrast (one colour against its complement) or a
# light-to-dark edge in some direction — the network needs both, since the
# classes are defined by shape and the colours are random.

# %%
print(viz.plot_filters(model, OUT / "filters.png"))

# %% [markdown]
# ## Feature maps for one image
#
# The activations after the stem (`relu`, 16 channels at full resolution)
# and after the third stage (`layer3`, 64 channels at a quarter of it), for
# one test image, strongest channels first. We pick the first shape (not a
# texture) that the network classifies correctly.

# %%
test_set = data.SyntheticShapes(n=100 if FAST else 500, seed=0, train=False, size=size)
test_x = normalize(test_set.images.astype(np.float32) / 255.0)
predicted = model(test_x).argmax(axis=1)
shape_classes = [test_set.classes.index(c) for c in ("disc", "ring", "square", "frame", "triangle",
                                                     "cross")]
good = np.flatnonzero((predicted == test_set.labels) & np.isin(test_set.labels, shape_classes))
index = int(good[0]) if good.size else 0
image = test_set.images[index]
x = normalize(image[None].astype(np.float32) / 255.0)
print(viz.plot_feature_maps(model, x, "relu", OUT / "feature_maps_stem.png", show_input=image))
print(viz.plot_feature_maps(model, x, "layer3", OUT / "feature_maps_layer3.png", show_input=image))
probs = np.exp(model(x) - model(x).max())
probs /= probs.sum()
print("prediction for this image:", test_set.classes[int(probs.argmax())],
      f"({100 * probs.max():.0f} %), true class:", test_set.classes[test_set.labels[index]])

# %% [markdown]
# ## Which classes does it confuse?

# %%
accuracy, per_class, confusion = evaluate(
    model, data.DataLoader(test_set, 250, transform=normalize))
print(f"test accuracy {accuracy:.1f} %")
print(viz.plot_confusion_matrix(confusion, test_set.classes, OUT / "confusion_trained.png"))
print(viz.plot_dataset_samples(test_set, OUT / "test_samples.png", per_class=6))
