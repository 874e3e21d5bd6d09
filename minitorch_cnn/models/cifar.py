"""The paper's CIFAR-10 ResNets (§4.2): 6n + 2 layers, parameter-free shortcuts.

A 3x3 convolution with 16 filters, then three stages of n BasicBlocks each
(16, 32 and 64 filters, on 32x32, 16x16 and 8x8 maps; the first block of
stages 2 and 3 has stride 2), global average pooling and a fully connected
layer. Where the shape changes the shortcut is option A (:class:`ShortcutA`:
subsample + zero channels), so all parameters are in the convolutions, the
BatchNorms and the fc layer:

=========  ===  ==========  ==================
model      n    parameters  Table 6
=========  ===  ==========  ==================
resnet20   3    269,722     0.27M
resnet32   5    464,154     0.46M
resnet44   7    658,586     0.66M
resnet56   9    853,018     0.85M
resnet110  18   1,727,962   1.7M
=========  ===  ==========  ==================

(Counts for 10 classes, BatchNorm's weight and bias included.) Keys follow
torchvision's layout: ``conv1``, ``bn1``, ``layer1..3.i.conv1/bn1/conv2/bn2``,
``fc``.
"""
import numpy as np

from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential
from ._init import kaiming_normal_conv_
from .blocks import BasicBlock


class CifarResNet(Module):
    """conv1 (3x3, 16) -> bn1 -> relu -> layer1..3 (n BasicBlocks each) -> avgpool -> flatten -> fc.

    ``shortcut="A"`` (default, the paper's CIFAR choice) or ``"B"``
    (projections). Input NHWC (N, 32, 32, 3).
    """

    def __init__(self, n, num_classes=10, *, shortcut="A", dtype=np.float32, rng=None):
        super().__init__()
        self.n, self.shortcut = int(n), shortcut
        self.conv1 = Conv2d(3, 16, 3, stride=1, padding=1, bias=False, dtype=dtype, rng=rng)
        self.bn1 = BatchNorm2d(16, dtype=dtype)
        self.relu = ReLU(inplace=True)
        inplanes = 16
        for i, planes in enumerate((16, 32, 64)):
            blocks = []
            for j in range(self.n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(inplanes, planes, stride, shortcut=shortcut,
                                         dtype=dtype, rng=rng))
                inplanes = planes
            setattr(self, f"layer{i + 1}", Sequential(*blocks))
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.fc = Linear(64, num_classes, dtype=dtype, rng=rng)
        kaiming_normal_conv_(self, rng)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.avgpool(x)
        x = self.flatten(x)
        return self.fc(x)

    def backward(self, grad_out):
        g = self.fc.backward(grad_out)
        g = self.flatten.backward(g)
        g = self.avgpool.backward(g)
        g = self.layer3.backward(g)
        g = self.layer2.backward(g)
        g = self.layer1.backward(g)
        g = self.relu.backward(g)
        g = self.bn1.backward(g)
        return self.conv1.backward(g)

    def extra_repr(self):
        return f"depth={6 * self.n + 2}, shortcut={self.shortcut!r}"


def resnet8(num_classes=10, **kw):
    """ResNet-8 (n=1, not in the paper's table): 75,290 parameters; the smallest of the
    family, for quick runs and tests."""
    return CifarResNet(1, num_classes, **kw)


def resnet20(num_classes=10, **kw):
    """ResNet-20 (n=3): 269,722 parameters (Table 6: 0.27M)."""
    return CifarResNet(3, num_classes, **kw)


def resnet32(num_classes=10, **kw):
    """ResNet-32 (n=5): 464,154 parameters (Table 6: 0.46M)."""
    return CifarResNet(5, num_classes, **kw)


def resnet44(num_classes=10, **kw):
    """ResNet-44 (n=7): 658,586 parameters (Table 6: 0.66M)."""
    return CifarResNet(7, num_classes, **kw)


def resnet56(num_classes=10, **kw):
    """ResNet-56 (n=9): 853,018 parameters (Table 6: 0.85M)."""
    return CifarResNet(9, num_classes, **kw)


def resnet110(num_classes=10, **kw):
    """ResNet-110 (n=18): 1,727,962 parameters (Table 6: 1.7M)."""
    return CifarResNet(18, num_classes, **kw)
