"""The paper's ImageNet ResNets (Table 1), with torchvision's state_dict keys.

=========  ============  =====================  ===========  ===================
model      block         blocks per stage       parameters   Table 1 FLOPs
=========  ============  =====================  ===========  ===================
resnet18   BasicBlock    2, 2, 2, 2             11,689,512   1.8 x 10^9
resnet34   BasicBlock    3, 4, 6, 3             21,797,672   3.6 x 10^9
resnet50   Bottleneck    3, 4, 6, 3             25,557,032   3.8 x 10^9
resnet101  Bottleneck    3, 4, 23, 3            44,549,160   7.6 x 10^9
resnet152  Bottleneck    3, 8, 36, 3            60,192,808   11.3 x 10^9
=========  ============  =====================  ===========  ===================

(Table 1's "FLOPs" are multiply-adds of the convolutions and the fc layer at
224x224; ``minitorch_cnn.summary`` reproduces them.) Keys are torchvision's:
``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight`` ... ``layer4.2.bn3.*``,
``layerK.0.downsample.0.weight`` / ``.downsample.1.*``, ``fc.weight``,
``fc.bias``, so a torchvision checkpoint loads with
``minitorch_cnn.interop.load_state_dict``. Shortcuts are identities, or
projections (option B) where the shape changes, as torchvision.

Bottleneck stride: on the first 1x1 convolution by default
(``stride_in_1x1=True``: the paper, and the seed); ``stride_in_1x1=False``
puts it on the 3x3 as torchvision does (the weights torchvision ships were
trained that way, so use it with them).
"""
import numpy as np

from ..nn import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU,
                  Sequential)
from ._init import kaiming_normal_conv_
from .blocks import BasicBlock, Bottleneck


class ResNet(Module):
    """conv1 (7x7/2) -> bn1 -> relu -> maxpool (3x3/2) -> layer1..4 -> avgpool -> flatten -> fc.

    ``block`` is :class:`BasicBlock` or :class:`Bottleneck`; ``layers`` the
    number of blocks per stage; stages 2-4 halve the resolution in their
    first block. Input NHWC (N, H, W, 3); any H, W >= 32 works thanks to the
    adaptive average pool. Convolution weights get He (fan-out) init.
    """

    def __init__(self, block, layers, num_classes=1000, *, stride_in_1x1=True,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.block_type = block.__name__
        block_kw = dict(dtype=dtype, rng=rng)
        if block is Bottleneck:
            block_kw["stride_in_1x1"] = stride_in_1x1
        self.conv1 = Conv2d(3, 64, 7, stride=2, padding=3, bias=False, dtype=dtype, rng=rng)
        self.bn1 = BatchNorm2d(64, dtype=dtype)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(inplanes, planes, stride, **block_kw))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", Sequential(*blocks))
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.fc = Linear(512 * block.expansion, num_classes, dtype=dtype, rng=rng)
        kaiming_normal_conv_(self, rng)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = self.flatten(x)
        return self.fc(x)

    def backward(self, grad_out):
        g = self.fc.backward(grad_out)
        g = self.flatten.backward(g)
        g = self.avgpool.backward(g)
        g = self.layer4.backward(g)
        g = self.layer3.backward(g)
        g = self.layer2.backward(g)
        g = self.layer1.backward(g)
        g = self.maxpool.backward(g)
        g = self.relu.backward(g)
        g = self.bn1.backward(g)
        return self.conv1.backward(g)

    def extra_repr(self):
        return f"block={self.block_type}"


def resnet18(num_classes=1000, **kw):
    """ResNet-18: BasicBlock x (2, 2, 2, 2); 11,689,512 parameters; 1.8 GMACs at 224x224."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **kw)


def resnet34(num_classes=1000, **kw):
    """ResNet-34: BasicBlock x (3, 4, 6, 3); 21,797,672 parameters; 3.6 GMACs."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, **kw)


def resnet50(num_classes=1000, **kw):
    """ResNet-50: Bottleneck x (3, 4, 6, 3); 25,557,032 parameters; 3.8 GMACs (stride on the 1x1)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **kw)


def resnet101(num_classes=1000, **kw):
    """ResNet-101: Bottleneck x (3, 4, 23, 3); 44,549,160 parameters; 7.6 GMACs."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, **kw)


def resnet152(num_classes=1000, **kw):
    """ResNet-152: Bottleneck x (3, 8, 36, 3); 60,192,808 parameters; 11.3 GMACs."""
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, **kw)
