"""Pictures with matplotlib (Agg backend, so it works without a screen).

Every function draws one figure, saves it as a PNG at ``path`` and returns
``path``. Figures are saved at ``dpi=100`` without cropping, so a figure of
``figsize=(w, h)`` inches is exactly ``(100 w) x (100 h)`` pixels; each
function's docstring gives its default size.

* :func:`plot_training_curves` -- loss per step and accuracy per epoch (the trainer calls it);
* :func:`plot_runs`            -- several runs' loss and accuracy curves on shared axes;
* :func:`plot_filters`         -- first-layer convolution filters as an image grid;
* :func:`plot_feature_maps`    -- the activations of any layer for one image;
* :func:`plot_confusion_matrix`-- true class against predicted class;
* :func:`plot_im2col`          -- how im2col turns windows of a small NHWC input into rows;
* :func:`plot_dataset_samples` -- a grid of example images per class, with class names.

Arrays follow the package's conventions: images are NHWC, convolution
weights PyTorch's ``(out, in, kh, kw)``.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402

DPI = 100

__all__ = ["plot_training_curves", "plot_runs", "plot_filters", "plot_feature_maps",
           "plot_confusion_matrix", "plot_im2col", "plot_dataset_samples", "first_conv",
           "capture_activation", "DPI"]


def _save(fig, path, tight=True):
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ training
def plot_training_curves(history, path, eval_name="validation"):
    """Training loss per step (with a moving average) and accuracy per epoch.

    ``history`` is the trainer's: ``{"step_loss": [...], "epochs": [{"epoch",
    "train_acc", "<eval_name>_acc", ...}, ...]}``. 1000 x 400 pixels.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    losses = np.asarray(history.get("step_loss", []), dtype=float)
    if losses.size:
        ax_loss.plot(np.arange(1, losses.size + 1), losses, lw=0.5, alpha=0.4, label="step")
        k = max(1, min(50, losses.size // 10))
        ax_loss.plot(*_moving_average(losses, k), lw=1.5, label=f"mean of {k}")
        ax_loss.legend()
    ax_loss.set(xlabel="step", ylabel="training loss", title="Loss")
    rows = history.get("epochs", [])
    if rows:
        epochs = [r["epoch"] for r in rows]
        ax_acc.plot(epochs, [r["train_acc"] for r in rows], "o-", label="train (during the epoch)")
        key = f"{eval_name}_acc"
        ax_acc.plot(epochs, [r.get(key, np.nan) for r in rows], "s-", label=eval_name)
        ax_acc.legend()
        ax_acc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    return _save(fig, path)


def _moving_average(values, k):
    """(x, y) of the mean of each k consecutive values; x is the last one's 1-based index."""
    values = np.asarray(values, dtype=float)
    k = max(1, min(k, values.size))
    return np.arange(k, values.size + 1), np.convolve(values, np.ones(k) / k, mode="valid")


def plot_runs(histories, path, eval_name="validation", smooth=20):
    """Several runs side by side: training loss per step (a moving average of
    ``smooth`` steps) and ``<eval_name>`` accuracy per epoch, one colour per run.

    ``histories`` maps a label to a history as in :func:`plot_training_curves`
    (a run's ``metrics.json``). 1000 x 400 pixels.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    key = f"{eval_name}_acc"
    for label, history in histories.items():
        losses = history.get("step_loss", [])
        if len(losses):
            ax_loss.plot(*_moving_average(losses, smooth), lw=1.2, label=label)
        rows = [r for r in history.get("epochs", []) if r.get(key) is not None]
        if rows:
            ax_acc.plot([r["epoch"] for r in rows], [r[key] for r in rows], "o-", ms=3,
                        label=label)
    ax_loss.set(xlabel="step", ylabel=f"training loss (mean of {smooth} steps)", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel=f"{eval_name} accuracy (%)", title="Accuracy")
    ax_acc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------ helpers
def _grid(n, ncols=None):
    ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
    return ncols, max(1, math.ceil(n / ncols))


def _stretch(a):
    """Scale an array to [0, 1] (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = a.min(), a.max()
    return np.full_like(a, 0.5) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


def first_conv(model):
    """The first ``Conv2d`` of a model, in registration order (the stem)."""
    from .nn import Conv2d
    for _, m in model.named_modules():
        if isinstance(m, Conv2d):
            return m
    raise ValueError(f"{type(model).__name__} has no Conv2d")


def capture_activation(model, x, layer):
    """Run ``model(x)`` in eval mode and return the output of ``layer``.

    ``layer`` is a dotted name from ``model.named_modules()`` (``"layer1.0"``,
    ``"layer2.1.layer.1"``) or a module object of the model. The model's
    training flag is restored afterwards. There are no hooks in this
    framework: for the duration of the call the layer's ``forward`` is
    shadowed by an instance attribute that records its result.
    """
    target = layer
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named:
            options = ", ".join(n for n in list(named)[1:12] if n)
            raise KeyError(f"no layer named {layer!r}; some names: {options}, ...")
        target = named[layer]
    seen = {}
    original = target.forward

    def recording_forward(*args, **kwargs):
        out = original(*args, **kwargs)
        seen["out"] = out
        return out

    was_training = model.training
    model.eval()
    object.__setattr__(target, "forward", recording_forward)
    try:
        model(x)
    finally:
        object.__delattr__(target, "forward")
        model.train(was_training)
    if "out" not in seen:
        raise RuntimeError(f"layer {layer!r} did not run in the model's forward pass")
    return seen["out"]


# ------------------------------------------------------------------ filters
def plot_filters(weight, path, ncols=8, max_filters=64, title=None):
    """First-layer filters as a grid of small images.

    ``weight`` is a ``Conv2d``, a model (its first ``Conv2d`` is used) or an
    array in PyTorch's layout ``(out, in, kh, kw)``. With 3 input channels
    each filter is shown in colour (RGB, each filter stretched to [0, 1] on
    its own); otherwise as a grey image of the mean over input channels.
    Size: ``ncols`` x ``rows`` inches plus 0.4 inch for the title, where
    ``rows = ceil(min(out, max_filters) / ncols)`` (default 64 filters:
    800 x 840 pixels).
    """
    from .nn import Module
    if isinstance(weight, Module):
        conv = weight if hasattr(weight, "kernel_size") else first_conv(weight)
        weight = conv.weight.data
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a weight of shape (out, in, kh, kw), got {w.shape}")
    n = min(w.shape[0], max_filters)
    ncols = min(ncols, n)
    rows = math.ceil(n / ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(ncols, rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        f = w[i]                                         # (in, kh, kw)
        if f.shape[0] == 3:
            ax.imshow(_stretch(f.transpose(1, 2, 0)), interpolation="nearest")
        else:
            ax.imshow(_stretch(f.mean(axis=0)), cmap="gray", interpolation="nearest")
    kh, kw = w.shape[2:]
    fig.suptitle(title or f"{n} of {w.shape[0]} filters, {kh}x{kw}x{w.shape[1]}", fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.4 / (rows + 0.4) * 0.9,
                        wspace=0.1, hspace=0.1)
    return _save(fig, path, tight=False)


# ------------------------------------------------------------------ feature maps
def plot_feature_maps(model, image, layer, path, max_maps=16, ncols=8, show_input=None):
    """The activations of ``layer`` for one image, one panel per channel.

    ``image`` is one input ``(H, W, C)`` (or ``(1, H, W, C)``), already
    transformed as the model expects. ``layer`` is a dotted module name or a
    module (see :func:`capture_activation`). The ``max_maps`` channels with the
    largest mean activation are shown, strongest first, each with its own
    colour scale. ``show_input`` (an ``(H, W, 3)`` image for display, e.g. the
    uint8 original) adds it as the first panel.
    Size: ``ncols`` x ``1.1 rows`` inches plus 0.4 for the title, with
    ``rows = ceil(panels / ncols)`` (default 16 maps: 800 x 260 pixels).
    """
    x = np.asarray(image)
    if x.ndim == 3:
        x = x[None]
    out = capture_activation(model, x, layer)
    if out.ndim != 4:
        raise ValueError(f"plot_feature_maps: layer {layer!r} outputs shape {out.shape}, "
                         f"not an NHWC feature map")
    maps = out[0]                                        # (h, w, c)
    order = np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:max_maps]
    panels = [("input", show_input)] if show_input is not None else []
    panels += [(f"ch {c}", maps[:, :, c]) for c in order]
    ncols = min(ncols, len(panels))
    rows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(ncols, 1.1 * rows + 0.4), squeeze=False)
    for ax, (label, a) in zip(axes.flat, panels + [("", None)] * (rows * ncols - len(panels))):
        ax.axis("off")
        if a is None:
            continue
        a = np.asarray(a)
        if a.ndim == 3:
            ax.imshow(a if a.dtype == np.uint8 else _stretch(a), interpolation="nearest")
        else:
            ax.imshow(a, cmap="viridis", interpolation="nearest")
        ax.set_title(label, fontsize=7, pad=2)
    name = layer if isinstance(layer, str) else type(layer).__name__
    fig.suptitle(f"{name}: {maps.shape[2]} channels of {maps.shape[0]}x{maps.shape[1]}, "
                 f"the {len(order)} most active", fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02,
                        top=1 - 0.4 / (1.1 * rows + 0.4) * 0.9, wspace=0.08, hspace=0.3)
    return _save(fig, path, tight=False)


# ------------------------------------------------------------------ confusion matrix
def plot_confusion_matrix(confusion, classes, path, normalize=True, figsize=(7, 6)):
    """Rows: true class, columns: predicted class (``evaluate``'s third result).

    With ``normalize`` each row is shown as percentages of that class (the
    diagonal is the per-class accuracy); the counts are written in the cells
    when there are at most 12 classes. Default 700 x 600 pixels.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    k = cm.shape[0]
    if cm.shape != (k, k) or len(classes) != k:
        raise ValueError(f"plot_confusion_matrix: expected a ({len(classes)}, {len(classes)}) "
                         f"matrix for {len(classes)} classes, got {cm.shape}")
    shown = 100.0 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=figsize)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    fig.colorbar(im, ax=ax, label="% of the true class" if normalize else "count")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true",
           title=f"Confusion matrix, accuracy {100 * np.trace(cm) / max(cm.sum(), 1):.1f} %")
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    if k <= 12:
        top = 100.0 if normalize else max(shown.max(), 1.0)
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > 0.6 * top else "black")
    return _save(fig, path)


# ------------------------------------------------------------------ im2col
def plot_im2col(path, height=4, width=4, channels=2, kernel=2, stride=1, padding=0,
                highlight=1, figsize=(12, 5)):
    """How im2col lays out a small NHWC input: each window becomes one row.

    The input is one image ``(1, height, width, channels)`` holding
    ``0, 1, 2, ...`` in memory order (NHWC, so the channels of a pixel are
    neighbours). Left: the input, one panel per channel, with window number
    ``highlight`` outlined. Right: ``im2col(x)``, shape
    ``(OH*OW, kernel*kernel*channels)``; every cell shows the input value it
    copies and is coloured by the input pixel it came from, so the
    (kernel row, kernel column, channel) order of a row is visible, and the
    highlighted window's row is outlined. Default 1200 x 500 pixels.
    """
    from .kernels import reference
    from matplotlib.patches import Rectangle
    x = np.arange(height * width * channels, dtype=np.float64).reshape(1, height, width, channels)
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    pixel = np.pad(np.arange(height * width, dtype=np.float64).reshape(1, height, width, 1),
                   pad, constant_values=-1)              # which pixel each position is (-1: pad)
    k, s, p = kernel, stride, padding
    cols = reference.im2col(x, k, k, s, s, p, p)
    oh = reference.out_size(height, k, s, p)
    ow = reference.out_size(width, k, s, p)
    src = reference.windows(pixel, k, k, s, s, 0, 0)     # (1, OH, OW, k, k, 1), already padded
    src = np.repeat(src.reshape(oh * ow, k * k), channels, axis=1)  # (rows, k*k*C)
    cmap = plt.get_cmap("tab20")

    def colour(pix):
        return (0.92, 0.92, 0.92) if pix < 0 else cmap(int(pix) % 20)[:3]

    fig = plt.figure(figsize=figsize)
    gs = fig.add_gridspec(1, channels + 1, width_ratios=[1] * channels + [max(2, channels) * 1.6])
    hp, wp = height + 2 * p, width + 2 * p
    r0, c0 = divmod(highlight, ow)
    for c in range(channels):
        ax = fig.add_subplot(gs[0, c])
        ax.set_xlim(-0.5, wp - 0.5)
        ax.set_ylim(hp - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
        for i in range(hp):
            for j in range(wp):
                ii, jj = i - p, j - p
                inside = 0 <= ii < height and 0 <= jj < width
                pix = ii * width + jj if inside else -1
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colour(pix),
                                       edgecolor="white"))
                ax.text(j, i, f"{int(x[0, ii, jj, c])}" if inside else "0", ha="center",
                        va="center", fontsize=9)
        ax.add_patch(Rectangle((c0 * s - 0.5, r0 * s - 0.5), k, k, fill=False, lw=3,
                               edgecolor="black"))
        ax.set_title(f"input channel {c}\nx[0, :, :, {c}]", fontsize=9)
    ax = fig.add_subplot(gs[0, channels])
    rows, ncol = cols.shape
    ax.set_xlim(-0.5, ncol - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    for i in range(rows):
        for j in range(ncol):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colour(src[i, j]),
                                   edgecolor="white"))
            ax.text(j, i, f"{int(cols[i, j])}", ha="center", va="center", fontsize=8)
    ax.add_patch(Rectangle((-0.5, highlight - 0.5), ncol, 1, fill=False, lw=3, edgecolor="black"))
    ax.set_xticks(range(ncol))
    ax.set_xticklabels([f"{a},{b},{c}" for a in range(k) for b in range(k) for c in range(channels)],
                       rotation=90, fontsize=7)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([f"({i // ow},{i % ow})" for i in range(rows)], fontsize=7)
    ax.set_xlabel("column = (kernel row, kernel col, channel)")
    ax.set_ylabel("row = output position (i, j)")
    ax.set_title(f"im2col: ({rows}, {ncol}) = (N*OH*OW, kh*kw*C); "
                 f"kernel {k}, stride {s}, padding {p}", fontsize=10)
    return _save(fig, path)


# ------------------------------------------------------------------ datasets
def plot_dataset_samples(dataset, path, per_class=8, seed=0, classes=None):
    """A grid of random examples: one row per class, named on the left.

    ``dataset`` has ``images`` (N, H, W, C) uint8 (or floats in [0, 1]),
    ``labels`` (N,) and ``classes`` (every dataset of ``minitorch_cnn.data``
    does). ``classes`` picks a subset of class indices to show.
    Size: ``per_class + 1.5`` x ``rows + 0.4`` inches (10 classes, 8 per
    class: 950 x 1040 pixels).
    """
    images, labels = np.asarray(dataset.images), np.asarray(dataset.labels)
    names = list(dataset.classes)
    shown = list(range(len(names))) if classes is None else list(classes)
    rng = np.random.default_rng(seed)
    rows = len(shown)
    fig, axes = plt.subplots(rows, per_class, figsize=(per_class + 1.5, rows + 0.4),
                             squeeze=False)
    for r, cls in enumerate(shown):
        idx = np.flatnonzero(labels == cls)
        pick = rng.choice(idx, size=min(per_class, idx.size), replace=False) if idx.size else []
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(pick):
                img = images[pick[c]]
                ax.imshow(img.squeeze() if img.shape[-1] == 1 else img,
                          cmap="gray" if img.shape[-1] == 1 else None, interpolation="nearest")
        axes[r, 0].set_ylabel(names[cls], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{type(dataset).__name__}: {len(labels)} images, {len(names)} classes",
                 fontsize=10)
    fig.subplots_adjust(left=1.4 / (per_class + 1.5), right=0.99, bottom=0.01,
                        top=1 - 0.4 / (rows + 0.4) * 0.9, wspace=0.05, hspace=0.05)
    return _save(fig, path, tight=False)
