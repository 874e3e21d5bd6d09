"""Layers with explicit forward and backward passes, PyTorch's names and parameter shapes.

The contract a layer follows -- here and in a layer of your own
(docs/write_your_own_layer.md) -- is exported too: ``check_input`` checks what forward
receives, forward keeps what backward needs in a ``Cache``, and backward takes it back
with ``check_grad``, which checks the upstream gradient and frees the cache.
"""
from ._checks import Cache, check_grad, check_input
from .activation import ReLU
from .conv import Conv2d
from .gelu import GELU
from .init import manual_seed
from .linear import Flatten, Linear, Scale
from .loss import CrossEntropyLoss
from .module import Chain, Identity, Module, Parameter, Sequential
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["Module", "Parameter", "Chain", "Sequential", "Identity", "Conv2d", "BatchNorm2d", "ReLU",
           "GELU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten", "Scale",
           "CrossEntropyLoss", "manual_seed", "Cache", "check_input", "check_grad"]
