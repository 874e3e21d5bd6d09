"""FastNet: a small VGG-style CIFAR-10 network chosen for time-to-accuracy on a CPU.

Not from the ResNet paper. It follows the line of fast CIFAR-10 training
nets -- David Page's DAWNBench ResNet-9 ("How to train your ResNet", 2018)
and Keller Jordan's airbench (2024) -- which reach 94 % in a few epochs by
working at low resolution early: a cheap stem, then three blocks that each
halve the map with a max-pool right after their first convolution::

    stem    Conv2d(3, s, 2x2, no padding) -> BN -> ReLU            32 -> 31
    block1  conv3x3(s, c1) -> MaxPool2d(2) -> BN -> ReLU
            -> conv3x3(c1, c1) -> BN -> ReLU                        31 -> 15
    block2  the same, c1 -> c2                                      15 -> 7
    block3  the same, c2 -> c3                                       7 -> 3
    head    MaxPool2d(3) -> Flatten -> Linear(c3, num_classes)        3 -> 1

All convolutions are bias-free (BatchNorm follows each). No residual
connections: at this depth (7 convolutions) plain BatchNorm networks train
well. Keys: ``stem.0.weight``, ``stem.1.*``, ``block1.0.weight``,
``block1.2.*`` (BN after the pool), ``block1.4.weight``, ``block1.5.*``, ...,
``fc.weight``, ``fc.bias``.

===============  ============  ==========  ========================
model            widths        parameters  multiply-adds (32x32)
===============  ============  ==========  ========================
fastnet          64, 256, 256  1,972,826   118,147,360
fastnet_small    32, 128, 128  498,138     33,066,272
===============  ============  ==========  ========================
"""
import numpy as np

from ..nn import BatchNorm2d, Chain, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from ._init import kaiming_normal_conv_


def _block(cin, cout, dtype, rng):
    """conv3x3 -> max-pool 2 -> BN -> ReLU -> conv3x3 -> BN -> ReLU (the pool halves the map
    before the normalisation, so BN and ReLU touch a quarter of the pixels)."""
    return Sequential(
        Conv2d(cin, cout, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        MaxPool2d(2),
        BatchNorm2d(cout, dtype=dtype),
        ReLU(inplace=True),
        Conv2d(cout, cout, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        BatchNorm2d(cout, dtype=dtype),
        ReLU(inplace=True))


class FastNet(Chain):
    """stem -> block1 -> block2 -> block3 -> pool -> flatten -> fc; NHWC input (N, 32, 32, 3).

    ``widths = (c1, c2, c3)`` are the blocks' channels, ``stem`` the stem's.
    """

    def __init__(self, num_classes=10, *, widths=(64, 256, 256), stem=24, dtype=np.float32,
                 rng=None):
        super().__init__()
        self.widths, self.stem_channels = tuple(int(w) for w in widths), int(stem)
        if len(self.widths) != 3:
            raise ValueError(f"FastNet: widths must be three channel counts, got {widths!r}")
        self.stem = Sequential(
            Conv2d(3, self.stem_channels, 2, padding=0, bias=False, dtype=dtype, rng=rng),
            BatchNorm2d(self.stem_channels, dtype=dtype),
            ReLU(inplace=True))
        cin = self.stem_channels
        for i, cout in enumerate(self.widths, start=1):
            setattr(self, f"block{i}", _block(cin, cout, dtype, rng))
            cin = cout
        self.pool = MaxPool2d(3)
        self.flatten = Flatten()
        self.fc = Linear(cin, num_classes, dtype=dtype, rng=rng)
        kaiming_normal_conv_(self, rng)

    def stages(self):
        return (self.stem, self.block1, self.block2, self.block3, self.pool, self.flatten,
                self.fc)

    def extra_repr(self):
        return f"widths={self.widths}, stem={self.stem_channels}"


def fastnet(num_classes=10, **kw):
    """FastNet with widths 64, 256, 256 (1,972,826 parameters)."""
    return FastNet(num_classes, widths=(64, 256, 256), **kw)


def fastnet_small(num_classes=10, **kw):
    """FastNet with widths 32, 128, 128 (498,138 parameters)."""
    return FastNet(num_classes, widths=(32, 128, 128), **kw)
