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

``fastnet_whiten`` adds the initialisation and head tricks of airbench
(Jordan 2024, after Page 2018 and hlb-CIFAR10), which let the same network
learn in fewer epochs:

* a **whitening stem**: the 2x2 stem convolution is set from the training
  images (:meth:`FastNet.init_from_data`: its 12 filters are the eigenvectors
  of the covariance of 2x2x3 patches, divided by the square roots of the
  eigenvalues, and 12 more are their negatives, so the ReLU after it loses
  nothing) and then frozen (``requires_grad = False``); it has a learnable
  bias, and no BatchNorm follows it;
* **identity ("dirac") initialisation**: in every 3x3 convolution the first
  ``in_channels`` filters start as the identity, the rest keep PyTorch's
  default initialisation, so each block starts close to passing its input on;
* BatchNorm weights frozen at 1 (the biases still learn);
* logits scaled by 1/9 (:class:`~minitorch_cnn.nn.Scale` after ``fc``).

Differences from airbench: ReLU instead of GELU, BatchNorm eps 1e-5, and
``fc`` keeps its bias. Extra keys: ``stem.0.bias``; no ``stem.1.*``.

``airbench94`` is airbench94's network exactly (Jordan 2024, ``airbench94.py``):
``fastnet_whiten`` with GELU activations (the exact erf form, ``nn.GELU``),
BatchNorm with eps 1e-12 and momentum 0.4 (airbench writes 0.6 in the other
convention, the weight of the old running average: PyTorch's and ours is the
weight of the new batch, 1 - 0.6), and ``fc`` without a bias. Its recipe
(the whitening bias trained for 3 epochs only, lookahead, alternating flips,
multi-view TTA) is ``--preset cifar10-fast``. ``airbench94_muon`` is the network of
``airbench94_muon.py``, trained with Muon (``--preset cifar10-muon``): the same, except
that its head's weights are rescaled to standard deviation 1 and its logits divided by
256 (the head's width) instead of 9, and the whitening bias starts where PyTorch's
initialisation puts it, U(-1/sqrt(12), 1/sqrt(12)), instead of at 0.

===============  ============  ==========  ========================
model            widths        parameters  multiply-adds (32x32)
===============  ============  ==========  ========================
fastnet          64, 256, 256  1,972,826   118,147,360
fastnet_small    32, 128, 128  498,138     33,066,272
fastnet_whiten   64, 256, 256  1,972,802   118,147,360
airbench94       64, 256, 256  1,972,792   118,147,360
airbench94_muon  64, 256, 256  1,972,792   118,147,360
===============  ============  ==========  ========================
"""
import numpy as np

from .. import kernels
from ..nn import (GELU, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Scale,
                  Sequential)
from ..nn.init import default_rng, uniform_fan_in
from ._init import kaiming_normal_conv_


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


def _block(cin, cout, dtype, rng, act, bn):
    """conv3x3 -> max-pool 2 -> BN -> act -> conv3x3 -> BN -> act (the pool halves the map
    before the normalisation, so BN and the activation touch a quarter of the pixels)."""
    return Sequential(
        Conv2d(cin, cout, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        MaxPool2d(2),
        BatchNorm2d(cout, dtype=dtype, **bn),
        act(),
        Conv2d(cout, cout, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        BatchNorm2d(cout, dtype=dtype, **bn),
        act())


class FastNet(Module):
    """stem -> block1 -> block2 -> block3 -> pool -> flatten -> fc; NHWC input (N, 32, 32, 3).

    ``widths = (c1, c2, c3)`` are the blocks' channels, ``stem`` the stem's.
    The airbench options (all off by default; see the module docstring):
    ``whiten`` (frozen whitening stem, ``stem`` must be 24; call
    :meth:`init_from_data` before training), ``dirac`` (identity-initialised
    3x3 convolutions, PyTorch's default initialisation otherwise),
    ``freeze_bn_weight`` and ``logit_scale``; ``activation`` ("relu" or "gelu"),
    ``bn_eps`` and ``bn_momentum`` (every BatchNorm2d's, PyTorch's convention) and
    ``fc_bias``.
    """

    def __init__(self, num_classes=10, *, widths=(64, 256, 256), stem=24, whiten=False,
                 dirac=False, freeze_bn_weight=False, logit_scale=1.0, activation="relu",
                 bn_eps=1e-5, bn_momentum=0.1, fc_bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.widths, self.stem_channels = tuple(int(w) for w in widths), int(stem)
        if len(self.widths) != 3:
            raise ValueError(f"FastNet: widths must be three channel counts, got {widths!r}")
        self.whiten, self.dirac, self.logit_scale = bool(whiten), bool(dirac), float(logit_scale)
        if activation not in ACTIVATIONS:
            raise ValueError(f"FastNet: activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.activation, act = activation, ACTIVATIONS[activation]
        bn = dict(eps=bn_eps, momentum=bn_momentum)
        if self.whiten:
            if self.stem_channels != _WHITEN_CHANNELS:
                raise ValueError(f"FastNet: a whitening stem has {_WHITEN_CHANNELS} channels "
                                 f"(2 x 3 x 2 x 2), got stem={stem}")
            conv = Conv2d(3, self.stem_channels, 2, padding=0, bias=True, dtype=dtype, rng=rng)
            conv.weight.requires_grad = False
            self.stem = Sequential(conv, act())
        else:
            self.stem = Sequential(
                Conv2d(3, self.stem_channels, 2, padding=0, bias=False, dtype=dtype, rng=rng),
                BatchNorm2d(self.stem_channels, dtype=dtype, **bn),
                act())
        cin = self.stem_channels
        for i, cout in enumerate(self.widths, start=1):
            setattr(self, f"block{i}", _block(cin, cout, dtype, rng, act, bn))
            cin = cout
        self.pool = MaxPool2d(3)
        self.flatten = Flatten()
        self.fc = Linear(cin, num_classes, bias=fc_bias, dtype=dtype, rng=rng)
        if self.logit_scale != 1.0:
            self.scale = Scale(self.logit_scale)
        if self.dirac:
            _dirac_(self)
        else:
            kaiming_normal_conv_(self, rng)
        if self.whiten:
            self.stem[0].bias.data[...] = 0
        if freeze_bn_weight:
            for m in self.modules():
                if isinstance(m, BatchNorm2d):
                    m.weight.requires_grad = False

    def forward(self, x):
        x = self.stem(x)
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.pool(x)
        x = self.flatten(x)
        x = self.fc(x)
        return self.scale(x) if self.logit_scale != 1.0 else x

    def backward(self, grad_out):
        g = self.scale.backward(grad_out) if self.logit_scale != 1.0 else grad_out
        g = self.fc.backward(g)
        g = self.flatten.backward(g)
        g = self.pool.backward(g)
        g = self.block3.backward(g)
        g = self.block2.backward(g)
        g = self.block1.backward(g)
        return self.stem.backward(g)

    def init_from_data(self, images, eps=5e-4):
        """Set the whitening stem from a sample of normalised training images (N, H, W, 3).

        With C the covariance of the 2x2x3 patches (uncentred, as airbench),
        C = V diag(lam) V^T, the stem's filters are the columns of V divided by
        sqrt(lam + eps), then their negatives: the first 12 output channels
        have covariance diag(lam / (lam + eps)), about the identity. A no-op
        without ``whiten``.
        """
        if not self.whiten:
            return
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype.kind != "f":
            raise ValueError("FastNet.init_from_data: expected normalised float images "
                             f"(N, H, W, 3), got {x.dtype} {x.shape}")
        cov = np.zeros((12, 12))
        for i in range(0, len(x), 500):                       # chunks: bounded memory
            p = kernels.im2col(x[i:i + 500].astype(np.float64), 2, 2, 1, 1, 0, 0)
            cov += p.T @ p                                     # columns: (p, q, channel)
        cov /= len(x) * (x.shape[1] - 1) * (x.shape[2] - 1)
        lam, v = np.linalg.eigh(cov)                           # ascending
        lam, v = lam[::-1], v[:, ::-1]                         # largest first
        w = (v / np.sqrt(lam + eps)).T.reshape(12, 2, 2, 3).transpose(0, 3, 1, 2)  # (O, C, p, q)
        conv = self.stem[0]
        conv.weight.data[...] = np.concatenate([w, -w]).astype(conv.weight.dtype)

    def extra_repr(self):
        tricks = [n for n, on in (("whiten", self.whiten), ("dirac", self.dirac)) if on]
        if self.logit_scale != 1.0:
            tricks.append(f"logit_scale={self.logit_scale:g}")
        if self.activation != "relu":
            tricks.append(self.activation)
        return f"widths={self.widths}, stem={self.stem_channels}" + "".join(
            f", {t}" for t in tricks)


_WHITEN_CHANNELS = 2 * 3 * 2 * 2


def _dirac_(model):
    """Make the first min(out, in) filters of every 3x3 Conv2d the identity (torch's dirac_)."""
    for m in model.modules():
        if isinstance(m, Conv2d) and m.kernel_size == (3, 3):
            w = m.weight.data
            k = min(w.shape[0], w.shape[1])
            w[:k] = 0
            w[np.arange(k), np.arange(k), 1, 1] = 1


def fastnet(num_classes=10, **kw):
    """FastNet with widths 64, 256, 256 (1,972,826 parameters)."""
    return FastNet(num_classes, widths=(64, 256, 256), **kw)


def fastnet_small(num_classes=10, **kw):
    """FastNet with widths 32, 128, 128 (498,138 parameters)."""
    return FastNet(num_classes, widths=(32, 128, 128), **kw)


def fastnet_whiten(num_classes=10, **kw):
    """FastNet 64-256-256 with airbench's whitening stem, identity init, frozen BatchNorm
    weights and logits scaled by 1/9 (1,972,802 parameters, 1,971,362 of them learnable).
    Call ``init_from_data`` (the trainer does) before training."""
    return FastNet(num_classes, widths=(64, 256, 256), whiten=True, dirac=True,
                   freeze_bn_weight=True, logit_scale=1 / 9, **kw)


def airbench94(num_classes=10, activation="gelu", **kw):
    """airbench94's network: ``fastnet_whiten`` with GELU, BatchNorm eps 1e-12 and momentum
    0.4, and no ``fc`` bias (1,972,792 parameters). ``activation="relu"`` for the ablation."""
    return fastnet_whiten(num_classes, activation=activation, bn_eps=1e-12, bn_momentum=0.4,
                          fc_bias=False, **kw)


def airbench94_muon(num_classes=10, activation="gelu", dtype=np.float32, rng=None, **kw):
    """airbench94_muon's network: airbench94 with logits / 256 (the head's width), head
    weights rescaled to standard deviation 1, and the whitening bias drawn as PyTorch
    draws a bias (airbench94_muon does not zero it)."""
    rng = default_rng(rng)
    model = FastNet(num_classes, widths=(64, 256, 256), whiten=True, dirac=True,
                    freeze_bn_weight=True, logit_scale=1 / 256, activation=activation,
                    bn_eps=1e-12, bn_momentum=0.4, fc_bias=False, dtype=dtype, rng=rng, **kw)
    w = model.fc.weight.data
    w /= w.std(ddof=1)                                   # torch's std is the unbiased one
    bias = model.stem[0].bias
    bias.data[...] = uniform_fan_in(bias.data.shape, 3 * 2 * 2, rng, bias.data.dtype)
    return model
