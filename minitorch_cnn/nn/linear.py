"""Linear, Flatten and Scale: the classifier head."""
import numpy as np

from ._checks import Cache, check_grad, check_input
from .init import uniform_fan_in
from .module import Module, Parameter


class Linear(Module):
    r"""Fully connected layer, y = x W^T + b.

    Shapes: x (N, in_features) -> y (N, out_features);
    weight (out_features, in_features), bias (out_features,) as in PyTorch.
    Backward with G = dL/dy (N, out):
      dW = G^T x,   db = sum_n G[n],   dx = G W.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(uniform_fan_in((out_features, in_features), in_features, rng, dtype))
        self.bias = Parameter(uniform_fan_in((out_features,), in_features, rng, dtype)) if bias else None
        self._cache = None

    def forward(self, x):
        check_input(self, x, 2, self.in_features, self.weight.dtype)
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        self._cache = Cache(y.shape, x=x)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        self.weight.grad += grad_out.T @ cache.x
        if self.bias is not None:
            self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Flatten(Module):
    """(N, H, W, C) -> (N, C*H*W) in PyTorch's (C, H, W) order; a 2-D input passes through.

    Flattening in PyTorch's channel-major order keeps a following Linear
    weight-compatible with PyTorch even though activations here are NHWC.
    Backward undoes the same reshape and transpose.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        check_input(self, x)
        if x.ndim not in (2, 4):
            raise ValueError(f"Flatten: expected a 4-D NHWC or a 2-D input, got shape {x.shape}")
        n, *rest = x.shape
        y = x if x.ndim == 2 else x.transpose(0, 3, 1, 2).reshape(n, int(np.prod(rest)))
        self._cache = Cache(y.shape, x_shape=x.shape)
        return y

    def backward(self, grad_out):
        x_shape = check_grad(self, grad_out).x_shape
        if len(x_shape) == 2:
            return grad_out
        n, h, w, c = x_shape
        return grad_out.reshape(n, c, h, w).transpose(0, 2, 3, 1)


class Scale(Module):
    r"""y = factor * x, elementwise, any shape; a constant, not a parameter.

    Backward: dx = factor * dy. After the last Linear, a factor below 1 makes
    the logits small at the start and slows how fast they grow, a trick of
    fast CIFAR-10 training (FastNet's ``logit_scale``). No state_dict entries.
    """

    def __init__(self, factor):
        super().__init__()
        self.factor = float(factor)
        self._cache = None

    def forward(self, x):
        check_input(self, x)
        self._cache = Cache(x.shape)
        return x * x.dtype.type(self.factor)

    def backward(self, grad_out):
        check_grad(self, grad_out)
        return grad_out * grad_out.dtype.type(self.factor)

    def extra_repr(self):
        return f"factor={self.factor:g}"
