"""Data augmentation and normalisation on whole NHWC float batches.

Every transform is a callable ``t(x, rng) -> x'`` where ``x`` is a float
batch ``(N, H, W, C)`` and ``rng`` a ``numpy.random.Generator``; random
transforms draw all they need from ``rng`` in a fixed order, so the same
generator state always gives the same output (the :class:`~.loader.DataLoader`
seeds one per batch from ``(seed, epoch, step)``). Inputs are never modified.
A transform that depends on *which* images it sees (:class:`AlternatingFlip`)
sets ``per_sample = True`` and is called ``t(x, rng, index=..., epoch=...)``
with the dataset indices of the batch and the epoch (the loader and
``Compose`` pass them on).

The usual CIFAR-10 training pipeline, on images already scaled to [0, 1]::

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
             Normalize(CIFAR10_MEAN, CIFAR10_STD)])

and for evaluation just ``Normalize(CIFAR10_MEAN, CIFAR10_STD)``. Crop pads
with zeros, so put it before ``Normalize`` to pad with black as torchvision's
``RandomCrop(32, padding=4)`` on a PIL image does.

Speed, per 100 x 32 x 32 x 3 float32 batch on a shared 2-core CPU:
RandomCrop 0.4 ms, RandomHorizontalFlip 0.5 ms, Normalize 0.25 ms, the
pipeline above 1.2 ms (a 10,000-image epoch of batches: 0.2 s in all).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# per-channel mean and standard deviation of the CIFAR-10 training images in [0, 1]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _check_batch(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name} expects an NHWC batch (N, H, W, C), got shape {x.shape}")


class Compose:
    """Apply ``transforms`` one after the other, all with the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        self.per_sample = any(getattr(t, "per_sample", False) for t in self.transforms)

    def __call__(self, x, rng, **where):
        for t in self.transforms:
            x = t(x, rng, **where) if getattr(t, "per_sample", False) else t(x, rng)
        return x

    def __repr__(self):
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


class RandomCrop:
    """Pad, then cut a random ``size`` window out of each image.

    ``(N, H, W, C) -> (N, size_h, size_w, C)``. Each image gets its own offset,
    uniform over every window of the padded ``(H + 2p, W + 2p)`` image, so
    with ``size == H`` and ``padding=4`` the content shifts by -4..4 pixels in
    each direction. ``padding_mode``: "zeros", or "reflect" (mirror the image
    about its edge pixels, which are not repeated: NumPy's and PyTorch's
    "reflect"; airbench's 2-pixel translation), so that no black border is
    learnt.
    """

    MODES = {"zeros": "constant", "reflect": "reflect"}

    def __init__(self, size=32, padding=4, padding_mode="zeros"):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        self.padding = int(padding)
        if self.padding < 0 or len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"bad RandomCrop(size={size}, padding={padding})")
        if padding_mode not in self.MODES:
            raise ValueError(f"RandomCrop: padding_mode must be 'zeros' or 'reflect', "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode

    def __call__(self, x, rng):
        _check_batch(x, "RandomCrop")
        n, h, w, c = x.shape
        p, (sh, sw) = self.padding, self.size
        if sh > h + 2 * p or sw > w + 2 * p:
            raise ValueError(f"RandomCrop size {self.size} is larger than the padded "
                             f"image {h + 2 * p}x{w + 2 * p}")
        top = rng.integers(0, h + 2 * p - sh + 1, size=n)
        left = rng.integers(0, w + 2 * p - sw + 1, size=n)
        if self.padding_mode == "reflect" and p >= min(h, w):
            raise ValueError(f"RandomCrop: reflect padding {p} needs images larger than "
                             f"{p} pixels, got {h}x{w}")
        padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode=self.MODES[self.padding_mode])
        # a strided view of every window, (N, offsets_y, offsets_x, C, sh, sw), no copy;
        # pick one window per image, then back to NHWC (no Python loop over images)
        windows = sliding_window_view(padded, (sh, sw), axis=(1, 2))
        crops = windows[np.arange(n), top, left]            # (N, C, sh, sw)
        return np.ascontiguousarray(crops.transpose(0, 2, 3, 1))

    def __repr__(self):
        mode = "" if self.padding_mode == "zeros" else f", padding_mode={self.padding_mode!r}"
        return f"RandomCrop(size={self.size}, padding={self.padding}{mode})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (independently)."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability, got {p}")
        self.p = p

    def __call__(self, x, rng):
        _check_batch(x, "RandomHorizontalFlip")
        flip = rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip, :, ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class AlternatingFlip:
    """Mirror each image in every other epoch: airbench's flip (Jordan 2024).

    A random half of the images (each with probability 1/2, drawn once from
    ``seed`` for the ``n`` images of the data set) is mirrored in even
    epochs, the other half in odd ones. Every image is thus seen both ways
    in any two consecutive epochs, where independent random flips show about
    a quarter of them the same way twice. Needs the batch's dataset
    ``index`` and the ``epoch`` (``per_sample``); ``rng`` is not used.
    """

    per_sample = True

    def __init__(self, n, seed=0):
        ss = np.random.SeedSequence(int(seed), spawn_key=(0xF11B,))
        self.first = np.random.default_rng(ss).random(int(n)) < 0.5   # flipped in epoch 0

    def __call__(self, x, rng=None, *, index, epoch):
        _check_batch(x, "AlternatingFlip")
        index = np.asarray(index)
        if index.shape != (x.shape[0],) or (index.size and not
                                            0 <= index.min() <= index.max() < self.first.size):
            raise ValueError(f"AlternatingFlip: expected {x.shape[0]} indices into its "
                             f"{self.first.size} images, got {index.shape} {index[:5]}")
        flip = self.first[index] != bool(int(epoch) % 2)
        out = x.copy()
        out[flip] = x[flip, :, ::-1]
        return out

    def __repr__(self):
        return f"AlternatingFlip(n={self.first.size})"


class Normalize:
    """``(x - mean) / std`` per channel (the last axis); keeps float32 float32.

    ``mean`` and ``std`` are sequences of one value per channel, e.g.
    :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`. ``rng`` is ignored.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape or np.any(self.std <= 0):
            raise ValueError(f"mean and std need one value per channel and std > 0, "
                             f"got mean={mean}, std={std}")

    def __call__(self, x, rng=None):
        _check_batch(x, "Normalize")
        if x.shape[-1] != self.mean.size:
            raise ValueError(f"Normalize has {self.mean.size} channels, the batch has "
                             f"{x.shape[-1]} (NHWC: channels last)")
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        n, h, w, c = x.shape
        # broadcasting over a length-3 last axis is slow in numpy; work on (N*H, W*C)
        # rows with the per-channel constants tiled W times instead (same result)
        mean = np.tile(self.mean.astype(dtype), w)
        scale = np.tile((1.0 / self.std).astype(dtype), w)
        out = np.subtract(x.reshape(n * h, w * c), mean, dtype=dtype)
        np.multiply(out, scale, out=out)
        return out.reshape(n, h, w, c)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"
