"""Models: the seed's ResNet50_layer4, the paper's ImageNet and CIFAR ResNets, FastNet.

Every model is a :class:`minitorch_cnn.nn.Module` with explicit
``forward(x)`` (NHWC input) and ``backward(grad_logits) -> grad_input``, and
PyTorch-compatible ``state_dict()`` keys. Build one by name with
:func:`get_model`; :data:`MODELS` lists the names, with each model's usual
input size (H, W, C) and a one-line description.
"""
from collections import namedtuple

from .blocks import (BasicBlock, Bottleneck, ResidualBlock, ShortcutA, conv1x1, conv3x3,
                     projection)
from .fastnet import FastNet, airbench94, airbench94_muon, fastnet, fastnet_small, fastnet_whiten
from .cifar import CifarResNet, resnet8, resnet20, resnet32, resnet44, resnet56, resnet110
from .resnet import ResNet, resnet18, resnet34, resnet50, resnet101, resnet152
from .seed import ResNet50_layer4, resnet50_layer4, resnet50_layer4_paper

ModelInfo = namedtuple("ModelInfo", "factory input_shape description")

_IMAGENET, _CIFAR = (224, 224, 3), (32, 32, 3)

MODELS = {
    "resnet50_layer4": ModelInfo(resnet50_layer4, _CIFAR,
                                 "the seed's CIFAR-10 model, quirks included"),
    "resnet50_layer4_paper": ModelInfo(resnet50_layer4_paper, _CIFAR,
                                       "the seed's model with identity shortcuts where shapes match"),
    "resnet18": ModelInfo(resnet18, _IMAGENET, "ImageNet ResNet-18 (BasicBlock 2-2-2-2)"),
    "resnet34": ModelInfo(resnet34, _IMAGENET, "ImageNet ResNet-34 (BasicBlock 3-4-6-3)"),
    "resnet50": ModelInfo(resnet50, _IMAGENET, "ImageNet ResNet-50 (Bottleneck 3-4-6-3)"),
    "resnet101": ModelInfo(resnet101, _IMAGENET, "ImageNet ResNet-101 (Bottleneck 3-4-23-3)"),
    "resnet152": ModelInfo(resnet152, _IMAGENET, "ImageNet ResNet-152 (Bottleneck 3-8-36-3)"),
    "resnet8": ModelInfo(resnet8, _CIFAR, "CIFAR ResNet-8 (n=1): the smallest, for quick runs"),
    "resnet20": ModelInfo(resnet20, _CIFAR, "CIFAR ResNet-20 (n=3, option-A shortcuts)"),
    "resnet32": ModelInfo(resnet32, _CIFAR, "CIFAR ResNet-32 (n=5)"),
    "resnet44": ModelInfo(resnet44, _CIFAR, "CIFAR ResNet-44 (n=7)"),
    "resnet56": ModelInfo(resnet56, _CIFAR, "CIFAR ResNet-56 (n=9)"),
    "resnet110": ModelInfo(resnet110, _CIFAR, "CIFAR ResNet-110 (n=18)"),
    "fastnet": ModelInfo(fastnet, _CIFAR, "VGG-style 7-conv net (64-256-256) for time-to-accuracy"),
    "fastnet_small": ModelInfo(fastnet_small, _CIFAR, "FastNet at a quarter of the width (32-128-128)"),
    "fastnet_whiten": ModelInfo(fastnet_whiten, _CIFAR,
                                "FastNet with airbench's whitening stem, identity init, scaled logits"),
    "airbench94": ModelInfo(airbench94, _CIFAR,
                            "airbench94's net: fastnet_whiten, GELU, its BatchNorm, no fc bias"),
    "airbench94_muon": ModelInfo(airbench94_muon, _CIFAR,
                                 "airbench94_muon's net: airbench94 with logits / 256, head std 1"),
}


def get_model(name, **kwargs):
    """Build the model registered as ``name``; keyword arguments go to its factory
    (``num_classes``, ``dtype``, ``rng``, and model options such as ``stride_in_1x1``)."""
    try:
        info = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None
    return info.factory(**kwargs)


__all__ = ["MODELS", "ModelInfo", "get_model",
           "ResidualBlock", "ResNet50_layer4", "resnet50_layer4", "resnet50_layer4_paper",
           "conv1x1", "conv3x3", "projection", "ShortcutA", "BasicBlock", "Bottleneck",
           "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "CifarResNet", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "FastNet", "fastnet", "fastnet_small", "fastnet_whiten", "airbench94",
           "airbench94_muon"]
