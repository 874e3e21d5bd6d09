"""BatchNorm2d (NHWC: statistics over batch, height and width for each channel)."""
import numpy as np

from .. import kernels
from ._checks import check_grad, check_input
from .activation import ReLU
from .module import Module, Parameter, Sequential


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

    How it is computed: y = x * scale + shift with scale = gamma / sqrt(var + eps)
    and shift = beta - mu * scale (one pass after the statistics pass); only x
    is cached, and backward recomputes x_hat from it.

    Fused ReLU (optional, off by default): with ``relu=True`` the layer returns
    max(y, 0) and its backward first zeroes G where y <= 0 -- the work of a
    following ReLU, done in the same passes over memory. :func:`fuse_bn_relu`
    switches this on for every BatchNorm2d directly followed by a ReLU in a
    Sequential, and turns that ReLU into a pass-through, so the model's
    structure, ``state_dict`` and results stay the same.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32, relu=False):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.relu = bool(relu)
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        self._cache = None

    def forward(self, x):
        check_input(self, x, 4, self.num_features, self.weight.dtype)
        if self.training:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(f"BatchNorm2d: expected more than 1 value per channel when "
                                 f"training, got input shape {x.shape}")
            mean, var = kernels.channel_stats(x)                     # one pass over x
            self._update_running(mean, var, m)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        scale = self.weight.data * inv_std                           # gamma / sqrt(var + eps)
        shift = self.bias.data - mean * scale                        # beta - mu * scale
        y = kernels.scale_shift(x, scale, shift, self.relu)          # [max(0,] x scale + shift [)]
        self._cache = (y.shape, x, mean, inv_std, scale, shift, self.training, self.relu)
        return y

    def _update_running(self, mean, var, m):
        self.num_batches_tracked = self.num_batches_tracked + 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean = ((1 - f) * self.running_mean + f * mean).astype(self.running_mean.dtype)
        self.running_var = ((1 - f) * self.running_var + f * var * (m / (m - 1))).astype(
            self.running_var.dtype)

    def backward(self, grad_out):
        x, mean, inv_std, scale, shift, training, relu = check_grad(self, grad_out)
        # dx, dgamma = sum G x_hat, dbeta = sum G  (G masked by y > 0 when the ReLU is fused)
        dx, dgamma, dbeta = kernels.batchnorm_backward(grad_out, x, mean, inv_std, scale, shift,
                                                       relu, training)
        self.bias.grad += dbeta
        self.weight.grad += dgamma
        return dx

    def extra_repr(self):
        fused = ", relu=True" if self.relu else ""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}{fused}"


def fuse_bn_relu(model, enable=True):
    """Let each BatchNorm2d that a ReLU directly follows (in a Sequential) do that ReLU's work.

    Sets ``bn.relu = True`` and ``relu.fused = True`` (the ReLU then passes
    values and gradients through unchanged), saving one read and one write of
    the activation in each direction. Results are the same; the module tree
    and ``state_dict`` are untouched. ``enable=False`` undoes it. Returns the
    number of pairs changed. Call it between steps, not between a forward and
    its backward.
    """
    pairs = 0
    for seq in model.modules():
        if not isinstance(seq, Sequential):
            continue
        children = list(seq)
        for bn, relu in zip(children, children[1:]):
            if isinstance(bn, BatchNorm2d) and isinstance(relu, ReLU):
                bn.relu = relu.fused = bool(enable)
                pairs += 1
    return pairs
