"""Layers with explicit forward and backward passes, PyTorch's names and parameter shapes."""
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
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten", "Scale",
           "CrossEntropyLoss", "manual_seed"]
