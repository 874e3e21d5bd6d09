"""The seed model, ResNet50_layer4, for the benchmarks: ours and PyTorch's.

``build_minitorch()`` returns ``minitorch_cnn.models.ResNet50_layer4``.
``build_torch()`` builds the same architecture from ``torch.nn`` (call it only
in a process that has not loaded Numba: the two runtimes interfere).

Architecture (CIFAR-10 sized input, 32x32):
  layer1: Conv2d(3, 64, 7, s2, p3) + BN + ReLU, MaxPool2d(3, s2, p0)   32 -> 16 -> 7
  layer2: 3 bottleneck blocks 64 -> 256 (mid 64), the last one downsampling  7 -> 4
  layer3: 4 blocks 256 -> 512 (mid 128), the last one downsampling           4 -> 2
  layer4: 6 blocks 512 -> 1024 (mid 256)                                      2
  AvgPool2d((1, 1), stride 2) -> 1x1, Linear(1024, 10)
A block is Sequential(conv1x1 (stride 2 when downsampling), conv3x3 (p1), conv1x1),
each conv followed by BN + ReLU, plus a shortcut conv1x1 + BN + ReLU (stride 2
when downsampling); out = layer(x) + shortcut(x), no ReLU after the add.
"""

BLOCKS = [  # (in, mid, out, downsample) for layer2, layer3, layer4
    [(64, 64, 256, False), (256, 64, 256, False), (256, 64, 256, True)],
    [(256, 128, 512, False), (512, 128, 512, False), (512, 128, 512, False),
     (512, 128, 512, True)],
    [(512, 256, 1024, False)] + [(1024, 256, 1024, False)] * 5,
]


def conv_shapes(batch=100, size=32):
    """Every convolution of the model, in forward order:
    (name, in_ch, out_ch, k, stride, pad, H) with H the input height (= width)."""
    out = [("layer1.0", 3, 64, 7, 2, 3, size)]
    h = ((size + 6 - 7) // 2 + 1 - 3) // 2 + 1          # after the stem conv and the max-pool
    for li, layer in enumerate(BLOCKS, start=2):
        for bi, (cin, mid, cout, down) in enumerate(layer):
            s = 2 if down else 1
            p = f"layer{li}.{bi}"
            h2 = (h - 1) // s + 1
            out += [(f"{p}.layer.0", cin, mid, 1, s, 0, h), (f"{p}.layer.1", mid, mid, 3, 1, 1, h2),
                    (f"{p}.layer.2", mid, cout, 1, 1, 0, h2),
                    (f"{p}.{'downsize' if down else 'make_equal_channel'}", cin, cout, 1, s, 0, h)]
            h = h2
    return out


# ------------------------------------------------------------------ minitorch_cnn
def build_minitorch(num_classes=10):
    from minitorch_cnn.models import ResNet50_layer4
    return ResNet50_layer4(num_classes=num_classes), "minitorch_cnn.models.ResNet50_layer4"


# ------------------------------------------------------------------------ PyTorch
def build_torch(num_classes=10):
    import torch.nn as tnn

    def cbr(cin, cout, k, s, p):
        return tnn.Sequential(tnn.Conv2d(cin, cout, k, s, p), tnn.BatchNorm2d(cout), tnn.ReLU())

    class ResidualBlock(tnn.Module):
        def __init__(self, cin, mid, cout, down):
            super().__init__()
            s = 2 if down else 1
            self.layer = tnn.Sequential(cbr(cin, mid, 1, s, 0), cbr(mid, mid, 3, 1, 1),
                                        cbr(mid, cout, 1, 1, 0))
            self.shortcut = cbr(cin, cout, 1, s, 0)

        def forward(self, x):
            return self.layer(x) + self.shortcut(x)

    class ResNet50_layer4(tnn.Module):
        def __init__(self):
            super().__init__()
            self.layer1 = tnn.Sequential(tnn.Conv2d(3, 64, 7, 2, 3), tnn.BatchNorm2d(64),
                                         tnn.ReLU(), tnn.MaxPool2d(3, 2, 0))
            self.layer2 = tnn.Sequential(*[ResidualBlock(*b) for b in BLOCKS[0]])
            self.layer3 = tnn.Sequential(*[ResidualBlock(*b) for b in BLOCKS[1]])
            self.layer4 = tnn.Sequential(*[ResidualBlock(*b) for b in BLOCKS[2]])
            self.avgpool = tnn.AvgPool2d((1, 1), 2)
            self.fc = tnn.Linear(1024, num_classes)

        def forward(self, x):
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet50_layer4()
