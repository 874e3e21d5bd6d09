# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Training a small ResNet on the synthetic shapes
#
# The whole training loop, written out: data, augmentation, model, loss,
# backward, optimizer, schedule, evaluation. The model is the paper's CIFAR
# ResNet with n = 1 (`resnet8`: a 3×3 stem and one BasicBlock per stage); the
# data is `SyntheticShapes`, ten classes of shapes and textures generated
# from a seed, so nothing is downloaded. The images are drawn at 16×16 pixels
# by default, which makes every step four times cheaper than 32×32 and lets
# the run finish in about a minute on two cores.
#
# Writes to `runs/examples/` (`MINITORCH_EXAMPLE_OUT` changes it):
# `shapes_samples.png`, `training_curves.png`, `confusion_matrix.png` and the
# checkpoint `small_resnet.npz`, which `06_visualise_trained_network.py`
# loads. The page that explains every line: docs/training.md.
#
# Settings can be changed with environment variables: `EXAMPLE_EPOCHS`,
# `EXAMPLE_TRAIN_IMAGES`, `EXAMPLE_IMAGE_SIZE` (16 or 32), `EXAMPLE_LR`.
# `MINITORCH_EXAMPLE_FAST=1` (used by the tests) shrinks everything.

# %%
import os
import sys
import time
from pathlib import Path

try:
    import minitorch_cnn  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the repository next to this file
    sys.path.insert(0, str(Path(globals().get("__file__", Path.cwd() / "_")).resolve().parents[1]))

import numpy as np

from minitorch_cnn import data, models, nn, optim, viz
from minitorch_cnn.training import evaluate, save_checkpoint

FAST = os.environ.get("MINITORCH_EXAMPLE_FAST") == "1"
OUT = Path(os.environ.get("MINITORCH_EXAMPLE_OUT", "runs/examples"))
OUT.mkdir(parents=True, exist_ok=True)

EPOCHS = int(os.environ.get("EXAMPLE_EPOCHS", 1 if FAST else 3))
N_TRAIN = int(os.environ.get("EXAMPLE_TRAIN_IMAGES", 200 if FAST else 2000))
N_TEST = 100 if FAST else 500
SIZE = int(os.environ.get("EXAMPLE_IMAGE_SIZE", 16))
BATCH = 50
LR = float(os.environ.get("EXAMPLE_LR", 0.1))
SEED = 0

# %% [markdown]
# ## Data
#
# Every dataset of `minitorch_cnn.data` holds `images` (N, H, W, 3) uint8 in
# NHWC, `labels` (N,) and `classes`. The `DataLoader` turns them into float32
# batches in [0, 1] and applies a batch transform: for training, a random
# crop (zero padding of 2 pixels, then a random 16×16 window: shifts of up to
# ±2 pixels) and a random horizontal flip, then per-channel standardisation.
# Flips are safe here: no class changes under a mirror image (a diagonal
# stripe pattern stays a diagonal stripe pattern).

# %%
train_set = data.SyntheticShapes(n=N_TRAIN, seed=SEED, train=True, size=SIZE)
test_set = data.SyntheticShapes(n=N_TEST, seed=SEED, train=False, size=SIZE)
print(train_set, test_set)
print("classes:", train_set.classes)
viz.plot_dataset_samples(train_set, OUT / "shapes_samples.png", per_class=8)

pixels = train_set.images.reshape(-1, 3) / 255.0
mean, std = pixels.mean(axis=0), pixels.std(axis=0)
normalize = data.Normalize(mean, std)
augment = data.Compose([data.RandomCrop(SIZE, padding=SIZE // 8), data.RandomHorizontalFlip(),
                        normalize])
train_loader = data.DataLoader(train_set, BATCH, shuffle=True, seed=SEED, transform=augment,
                               drop_last=True)
test_loader = data.DataLoader(test_set, 250, transform=normalize)
x, y = next(iter(train_loader))
print("one batch:", x.shape, x.dtype, y.shape, y.dtype)

# %% [markdown]
# ## Model, loss, optimizer, schedule
#
# SGD with Nesterov momentum and weight decay, and a one-cycle schedule: the
# learning rate rises from `LR/25` to `LR` over the first 30 % of the steps,
# then falls to almost zero. The schedule is stepped once per iteration.

# %%
model = models.get_model("resnet8", num_classes=10, rng=np.random.default_rng(SEED))
print(f"ResNet-8: {sum(p.size for p in model.parameters()):,} parameters")
criterion = nn.CrossEntropyLoss(label_smoothing=0.05)
optimizer = optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
steps = EPOCHS * len(train_loader)
schedule = optim.make_scheduler("onecycle", optimizer, steps)

# %% [markdown]
# ## The loop
#
# One step is five lines: forward, loss, backward (the loss's gradient fed to
# the model's `backward`, which fills every `p.grad`), update, schedule — and
# `zero_grad()`, because backward passes *add* into `p.grad`.
# `history` has the trainer's format, so `viz.plot_training_curves` draws it.
#
# This loop runs the plain layers, the code you read. The trainer runs the same
# model on the fast path: `net = minitorch_cnn.compile(model)` once, then `net(x)`
# and `net.backward(...)` in place of `model(x)` and `model.backward(...)`; the
# same gradients, and on the seed model about 1.4× faster (docs/training.md).

# %%
history = {"step_loss": [], "epochs": []}
for epoch in range(EPOCHS):
    model.train()
    t0, correct, seen = time.perf_counter(), 0, 0
    for x, y in train_loader.iter_epoch(epoch):
        logits = model(x)
        loss = criterion(logits, y)
        model.backward(criterion.backward())
        optimizer.step()
        schedule.step()
        model.zero_grad()
        history["step_loss"].append(loss)
        correct += int((logits.argmax(axis=1) == y).sum())
        seen += len(y)
    seconds = time.perf_counter() - t0
    test_acc, per_class, confusion = evaluate(model, test_loader)
    history["epochs"].append({"epoch": epoch + 1, "train_acc": 100.0 * correct / seen,
                              "test_acc": test_acc, "lr": optimizer.lr, "seconds": seconds})
    print(f"epoch {epoch + 1}/{EPOCHS}: loss {np.mean(history['step_loss'][-len(train_loader):]):.3f}, "
          f"train accuracy {100.0 * correct / seen:.1f} % (augmented), test accuracy "
          f"{test_acc:.1f} %, {seen / seconds:.0f} images/s")

# %% [markdown]
# ## Results
#
# The curves (loss per step, accuracy per epoch), the confusion matrix on the
# test images, and a checkpoint with the weights and what is needed to use
# them again (the normalisation, the class names, the image size).

# %%
viz.plot_training_curves(history, OUT / "training_curves.png", eval_name="test")
viz.plot_confusion_matrix(confusion, test_set.classes, OUT / "confusion_matrix.png")
print("per-class test accuracy:",
      ", ".join(f"{c} {a:.0f} %" for c, a in zip(test_set.classes, per_class)))
save_checkpoint(OUT / "small_resnet.npz", model, optimizer, schedule,
                meta={"model": "resnet8", "image_size": SIZE, "classes": test_set.classes,
                      "mean": mean.tolist(), "std": std.tolist(), "history": history})
print("wrote", sorted(p.name for p in OUT.iterdir()))
