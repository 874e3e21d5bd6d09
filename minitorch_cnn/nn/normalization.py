"""BatchNorm2d (NHWC: statistics over batch, height and width for each channel)."""
import numpy as np

from .. import kernels
from ._checks import Cache, check_grad, check_input, values_per_channel
from .module import Module, Parameter


class BatchNorm2d(Module):
    r"""Batch normalisation over (N, H, W) for each of C channels, as PyTorch's.

    Shapes: x (N, H, W, C) -> y (N, H, W, C); weight (gamma), bias (beta),
    running_mean, running_var: (C,); num_batches_tracked: () int64.

    Training, with M = N*H*W values per channel:
      mu = mean(x),  var = mean((x - mu)^2)            (biased, used to normalise)
      x_hat = (x - mu) / sqrt(var + eps),   y = gamma * x_hat + beta
      running_mean <- (1 - m) running_mean + m mu
      running_var  <- (1 - m) running_var  + m var * M / (M - 1)   (unbiased)
      (momentum=None: a cumulative average, m = 1 / num_batches_tracked)
    Eval: normalise with the running statistics instead.
    Backward (training), G = dL/dy:
      dbeta = sum G,   dgamma = sum G x_hat,
      dx = gamma / (M sqrt(var + eps)) * (M G - dbeta - x_hat dgamma)
    (the compact form; docs/layers/batchnorm.md derives it). In eval mode the
    statistics are constants, so dx = G gamma / sqrt(running_var + eps).
    The per-channel sums (statistics, dbeta, dgamma) are kernels accumulating
    in float64; the rest is the formula as written.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        self._cache = None

    def forward(self, x):
        check_input(self, x, 4, self.num_features, self.weight.dtype)
        ### BEGIN SOLUTION batchnorm2d_forward
        if self.training:
            m = values_per_channel(self, x)                          # N*H*W >= 2
            mean, var = kernels.channel_stats(x)                     # over N, H, W
            self._update_running(mean, var, m)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        x_hat = (x - mean) * inv_std
        y = self.weight.data * x_hat + self.bias.data                # gamma x_hat + beta
        ### END SOLUTION batchnorm2d_forward
        self._cache = Cache(y.shape, x_hat=x_hat, inv_std=inv_std, training=self.training)
        return y

    def _update_running(self, mean, var, m):
        ### BEGIN SOLUTION batchnorm2d_forward
        self.num_batches_tracked = self.num_batches_tracked + 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean = ((1 - f) * self.running_mean + f * mean).astype(self.running_mean.dtype)
        self.running_var = ((1 - f) * self.running_var + f * var * (m / (m - 1))).astype(
            self.running_var.dtype)
        ### END SOLUTION batchnorm2d_forward

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        ### BEGIN SOLUTION batchnorm2d_backward
        x_hat, gamma_inv_std = cache.x_hat, self.weight.data * cache.inv_std
        dbeta = kernels.channel_sum(grad_out)                        # sum G
        dgamma = kernels.channel_sum(grad_out * x_hat)               # sum G x_hat
        self.bias.grad += dbeta
        self.weight.grad += dgamma
        if not cache.training:                                       # constant statistics
            return grad_out * gamma_inv_std
        m = grad_out.size // self.num_features
        return gamma_inv_std / m * (m * grad_out - dbeta - x_hat * dgamma)
        ### END SOLUTION batchnorm2d_backward

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
