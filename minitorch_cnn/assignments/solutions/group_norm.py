"""Group normalisation (Wu and He, 2018), NHWC: statistics per sample over groups of channels.

A variant task: the library has no GroupNorm, so its source does not solve
this one (BatchNorm2d's backward is the closest relative).
"""
import numpy as np

from minitorch_cnn.nn import Module, Parameter
from minitorch_cnn.nn._checks import Cache, check_grad, check_input


class GroupNorm(Module):
    r"""Normalise each sample's channels in ``num_groups`` groups, as PyTorch's ``nn.GroupNorm``.

    Shapes: x (N, H, W, C) -> y (N, H, W, C); weight (gamma), bias (beta): (C,).
    View x as (N, H, W, G, C/G); for each sample n and group g, over its
    M = H W C/G values:
      mu = mean(x),  var = mean((x - mu)^2)  (biased),  x_hat = (x - mu) / sqrt(var + eps)
      y = gamma[c] x_hat + beta[c]
    No running statistics: training and eval are the same.
    Backward, G = dL/dy, g_hat = G gamma (per channel), sums over one group:
      dbeta = sum_{n,h,w} G,   dgamma = sum_{n,h,w} G x_hat,
      dx = 1 / (M sqrt(var + eps)) (M g_hat - sum g_hat - x_hat sum(g_hat x_hat)).
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, dtype=np.float32):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps = int(num_groups), int(num_channels), float(eps)
        self.weight = Parameter(np.ones(num_channels, dtype=dtype))
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        self._cache = None

    def forward(self, x):
        check_input(self, x, 4, self.num_channels, self.weight.dtype)
        n, h, w, c = x.shape
        xg = x.reshape(n, h, w, self.num_groups, c // self.num_groups)
        ### BEGIN SOLUTION group_norm_forward
        mean = xg.mean(axis=(1, 2, 4), keepdims=True)                # (N, 1, 1, G, 1)
        var = xg.var(axis=(1, 2, 4), keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = ((xg - mean) * inv_std).reshape(x.shape)
        y = x_hat * self.weight.data + self.bias.data
        ### END SOLUTION group_norm_forward
        self._cache = Cache(y.shape, x_hat=x_hat, inv_std=inv_std)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        x_hat, inv_std = cache.x_hat, cache.inv_std
        n, h, w, c = grad_out.shape
        groups = (n, h, w, self.num_groups, c // self.num_groups)
        ### BEGIN SOLUTION group_norm_backward
        self.bias.grad += grad_out.sum(axis=(0, 1, 2))
        self.weight.grad += (grad_out * x_hat).sum(axis=(0, 1, 2))
        g_hat = (grad_out * self.weight.data).reshape(groups)
        xh = x_hat.reshape(groups)
        m = h * w * groups[4]
        dx = inv_std / m * (m * g_hat - g_hat.sum(axis=(1, 2, 4), keepdims=True)
                            - xh * (g_hat * xh).sum(axis=(1, 2, 4), keepdims=True))
        dx = dx.reshape(grad_out.shape)
        ### END SOLUTION group_norm_backward
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"
