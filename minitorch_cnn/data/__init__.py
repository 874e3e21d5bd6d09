"""Datasets, batching and augmentation, all in NumPy.

Every dataset holds its split in memory with one interface: ``images``
``(N, H, W, 3)`` uint8 NHWC, ``labels`` ``(N,)`` int64, ``classes`` (names),
``len(ds)`` and ``ds[i] -> (image, label)``.

* :class:`CIFAR10` -- the official python release, folder or ``.tar.gz``;
* :class:`ImageFolder` -- ``root/<class>/*.png|jpg|jpeg``;
* :class:`SyntheticShapes` / :func:`synthetic` -- a CIFAR-shaped dataset
  generated from a seed, for work without a download;
* :func:`train_val_split` -- hold out a validation set;
* :class:`DataLoader` -- float32 NHWC batches, reproducible per
  ``(seed, epoch, step)`` so training can resume mid-epoch;
* :mod:`.transforms` -- batch augmentation (``RandomCrop``,
  ``RandomHorizontalFlip``, ``AlternatingFlip``, ``Normalize``, ``Compose``).

Typical use::

    from minitorch_cnn.data import (CIFAR10, DataLoader, train_val_split, Compose,
                                    RandomCrop, RandomHorizontalFlip, Normalize,
                                    CIFAR10_MEAN, CIFAR10_STD)
    train, val = train_val_split(CIFAR10("data"), n_val=5000)
    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
                       Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    loader = DataLoader(train, batch_size=128, shuffle=True, seed=0, transform=augment)
    for epoch in range(start_epoch, epochs):
        loader.set_epoch(epoch)
        for x, y in loader:     # x (128, 32, 32, 3) float32, y (128,) int64
            ...
"""
from .cifar10 import CIFAR10, download_cifar10
from .dataset import ArrayDataset, Subset, train_val_split
from .folder import ImageFolder
from .loader import DataLoader
from .shapes import SyntheticShapes, synthetic
from .transforms import (CIFAR10_MEAN, CIFAR10_STD, AlternatingFlip, Compose, Normalize,
                         RandomCrop, RandomHorizontalFlip)

__all__ = [
    "ArrayDataset", "Subset", "train_val_split",
    "CIFAR10", "download_cifar10", "ImageFolder", "SyntheticShapes", "synthetic",
    "DataLoader",
    "Compose", "RandomCrop", "RandomHorizontalFlip", "AlternatingFlip", "Normalize",
    "CIFAR10_MEAN", "CIFAR10_STD",
]
