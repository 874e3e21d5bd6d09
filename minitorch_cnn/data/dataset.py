"""The in-memory dataset every loader in this package returns, and the
train/validation split helper.

All datasets here hold the whole split in two arrays:

* ``images``: ``(N, H, W, 3)`` uint8, NHWC, RGB;
* ``labels``: ``(N,)`` int64, values in ``range(len(classes))``;

plus ``classes``, the list of class names (``classes[label]`` names a label).
Indexing gives one ``(image, label)`` pair; the :class:`~.loader.DataLoader`
reads the arrays directly to build batches.
"""
import numpy as np


class ArrayDataset:
    """A labelled image set held in memory.

    Parameters
    ----------
    images : array (N, H, W, C)
        NHWC images, usually uint8 RGB.
    labels : array (N,)
        Integer class indices; stored as int64.
    classes : sequence of str
        Class names, ``classes[i]`` names label ``i``.
    """

    def __init__(self, images, labels, classes):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be NHWC (N, H, W, C), got shape {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels must have shape ({images.shape[0]},) to match "
                             f"{images.shape[0]} images, got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = list(classes)
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for "
                             f"{len(self.classes)} classes, got range "
                             f"[{self.labels.min()}, {self.labels.max()}]")

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        """``(image, label)``: image ``(H, W, C)`` (a view), label a Python int.

        A slice or an index array gives ``(images (k, H, W, C), labels (k,))``."""
        label = self.labels[i]
        return self.images[i], (int(label) if np.ndim(label) == 0 else label)

    def class_counts(self):
        """Number of images per class, ``(len(classes),)`` int64."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)

    def __repr__(self):
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return (f"{type(self).__name__}(n={len(self)}, image={shape} {self.images.dtype}, "
                f"classes={len(self.classes)})")


class Subset(ArrayDataset):
    """Some images of a dataset, copied out, with the same interface.

    ``indices`` (int64, sorted) are the positions of the kept images in the
    ``parent`` dataset, so ``subset.images[k] == parent.images[indices[k]]``.
    """

    def __init__(self, parent, indices):
        indices = np.asarray(indices, dtype=np.int64)
        super().__init__(parent.images[indices], parent.labels[indices], parent.classes)
        self.parent = parent
        self.indices = indices


def train_val_split(dataset, n_val, seed=0):
    """Hold out ``n_val`` random images of ``dataset`` for validation.

    Returns ``(train_subset, val_subset)``, two :class:`Subset` objects that
    together hold every image exactly once. Which images go where is a pure
    function of ``(len(dataset), n_val, seed)``; inside each subset the images
    keep their original order. ``0 <= n_val < len(dataset)``.

    CIFAR-10 copies without the official ``test_batch`` can use this as their
    test set, e.g. ``train, val = train_val_split(CIFAR10(root), 5000)``.
    """
    n = len(dataset)
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)):
        raise TypeError(f"n_val must be an int (a number of images), got {n_val!r}")
    if n_val < 0 or n_val >= n:
        raise ValueError(f"n_val must satisfy 0 <= n_val < len(dataset) = {n}, got {n_val}: "
                         f"the training part must keep at least one image")
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x5917,))).permutation(n)
    val = np.sort(order[:n_val])
    train = np.sort(order[n_val:])
    return Subset(dataset, train), Subset(dataset, val)
