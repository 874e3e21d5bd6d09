"""Mini-batches for training and evaluation, reproducible down to the step.

The order of epoch ``e`` and the random augmentation of its step ``k`` are a
pure function of ``(seed, e)`` and ``(seed, e, k)``: nothing depends on how
many batches were drawn before. A training run that is stopped after step
``k`` of epoch ``e`` and resumed with ``loader.iter_epoch(e, start_step=k)``
therefore sees exactly the batches the uninterrupted run would have seen.
"""
import math

import numpy as np

# spawn_key tags that keep the loader's random streams apart from each other
_ORDER, _AUGMENT = 0x0D3, 0xA06


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x, y)``.

    ``x`` is float32 NHWC ``(B, H, W, C)``: uint8 images are divided by 255
    (so lie in [0, 1]), other images are cast to float32 unchanged; then
    ``transform(x, rng)`` is applied to the whole batch if given. ``y`` is
    ``(B,)`` int64. The last batch is smaller unless ``drop_last``.

    Parameters
    ----------
    dataset
        Anything with ``images`` ``(N, H, W, C)`` and ``labels`` ``(N,)``
        arrays (every dataset of this package), or failing that ``len()``
        and ``dataset[i] -> (image, label)``.
    batch_size : int
    shuffle : bool
        Visit the samples in a new random order every epoch.
    seed : int (>= 0)
        Seeds the order and the augmentation; see below.
    transform : callable ``(x, rng) -> x`` or None
        A batch transform, e.g. from :mod:`minitorch_cnn.data.transforms`;
        one with ``per_sample = True`` is called ``transform(x, rng,
        index=idx, epoch=e)`` with the batch's sample indices.
    drop_last : bool
        Skip the last batch when it is smaller than ``batch_size``.

    Epochs: ``for x, y in loader`` runs epoch ``loader.epoch`` and then adds
    one to it, so successive loops reshuffle. ``loader.set_epoch(e)`` pins the
    epoch for the next loop (like PyTorch's ``DistributedSampler``), and
    ``loader.iter_epoch(e, start_step=k)`` yields steps ``k, k+1, ...`` of
    epoch ``e`` without touching ``loader.epoch`` -- identical, batch for
    batch, to the tail of a full pass. ``len(loader)`` is the number of
    batches per epoch.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, transform=None,
                 drop_last=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable as transform(x, rng), got {transform!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.transform = transform
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._images, self._labels = self._arrays(dataset)

    @staticmethod
    def _arrays(dataset):
        images = getattr(dataset, "images", None)
        labels = getattr(dataset, "labels", None)
        if images is None or labels is None:  # a generic map-style dataset
            pairs = [dataset[i] for i in range(len(dataset))]
            images = np.stack([np.asarray(p[0]) for p in pairs])
            labels = np.asarray([p[1] for p in pairs])
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(f"DataLoader needs images (N, H, W, C) and labels (N,), got "
                             f"{images.shape} and {labels.shape}")
        return images, labels.astype(np.int64, copy=False)

    @property
    def num_samples(self):
        return self._images.shape[0]

    def __len__(self):
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch):
        """Make the next ``for ... in loader`` run epoch ``epoch``."""
        self.epoch = self._check_epoch(epoch)

    @staticmethod
    def _check_epoch(epoch):
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        return int(epoch)

    def order(self, epoch):
        """Sample indices of epoch ``epoch`` in visiting order, ``(N,)`` int64.

        ``arange(N)`` without shuffling, else a permutation that depends on
        ``(seed, epoch)`` only. The batches are consecutive slices of it.
        """
        epoch = self._check_epoch(epoch)
        n = self.num_samples
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        ss = np.random.SeedSequence(self.seed, spawn_key=(_ORDER, epoch))
        return np.random.default_rng(ss).permutation(n).astype(np.int64)

    def batch_rng(self, epoch, step):
        """The generator handed to ``transform`` for ``(epoch, step)``."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(_AUGMENT, int(epoch), int(step)))
        return np.random.default_rng(ss)

    def iter_epoch(self, epoch, start_step=0):
        """Yield the batches ``(x, y)`` of epoch ``epoch`` from step ``start_step`` on.

        ``0 <= start_step <= len(self)``; ``start_step == len(self)`` yields
        nothing. Does not change ``self.epoch``.
        """
        epoch = self._check_epoch(epoch)
        steps = len(self)
        if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) \
                or not 0 <= start_step <= steps:
            raise ValueError(f"start_step must be an int in [0, {steps}] (batches per epoch), "
                             f"got {start_step!r}")
        return self._generate(epoch, int(start_step))

    def _generate(self, epoch, start_step):
        order = self.order(epoch)
        b = self.batch_size
        for step in range(start_step, len(self)):
            idx = order[step * b:(step + 1) * b]
            yield self._batch(idx, epoch, step)

    def _batch(self, idx, epoch, step):
        x = self._images[idx]
        if x.dtype == np.uint8:
            x = x.astype(np.float32)
            x /= np.float32(255)
        else:
            x = x.astype(np.float32)
        if self.transform is not None:
            rng = self.batch_rng(epoch, step)
            x = self.transform(x, rng, index=idx, epoch=epoch) if getattr(
                self.transform, "per_sample", False) else self.transform(x, rng)
        return x, self._labels[idx]

    def __iter__(self):
        epoch = self.epoch
        self.epoch = epoch + 1
        return self._generate(epoch, 0)

    def __repr__(self):
        return (f"DataLoader(n={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
                f"transform={self.transform!r}, epoch={self.epoch})")
