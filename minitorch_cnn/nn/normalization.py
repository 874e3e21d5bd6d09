"""BatchNorm2d (NHWC: statistics over batch, height and width for each channel)."""
import numpy as np

from .. import kernels
from ._checks import check_grad, check_input
from .activation import ReLU
from .conv import Conv2d
from .module import Chain, Module, Parameter


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

    Two optional fusions, off by default, switched on for a whole model by
    :func:`fuse_bn_relu` and :func:`fold_conv_bias`; the model's structure,
    ``state_dict`` and results stay the same:

    * fused ReLU (``relu=True``): the layer returns max(y, 0) and its backward
      first zeroes G where y <= 0 -- the work of the ReLU that follows, done in
      the same passes over memory (that ReLU becomes a pass-through);
    * folded input bias (``input_bias``, the preceding Conv2d's bias Parameter,
      which then skips its own bias add and bias gradient): the input is
      x + b, whose mean is mean(x) + b and whose variance is var(x), so b
      changes only ``shift`` (and the running mean), and db = sum of dx.
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
        object.__setattr__(self, "input_bias", None)  # a Parameter, not registered here
        self._cache = None

    def forward(self, x):
        check_input(self, x, 4, self.num_features, self.weight.dtype)
        b = 0.0 if self.input_bias is None else self.input_bias.data  # folded conv bias
        if self.training:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(f"BatchNorm2d: expected more than 1 value per channel when "
                                 f"training, got input shape {x.shape}")
            mean, var = kernels.channel_stats(x)                     # one pass over x
            self._update_running(mean + b, var, m)
        else:
            mean, var = self.running_mean - b, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        scale = self.weight.data * inv_std                           # gamma / sqrt(var + eps)
        shift = self.bias.data - mean * scale                        # beta - mu * scale
        y = kernels.scale_shift(x, scale, shift, self.relu)          # [max(0,] x scale + shift [)]
        self._cache = (y.shape, x, mean, inv_std, scale, shift, self.training, self.relu,
                       self.input_bias)
        return y

    def _update_running(self, mean, var, m):
        self.num_batches_tracked = self.num_batches_tracked + 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean = ((1 - f) * self.running_mean + f * mean).astype(self.running_mean.dtype)
        self.running_var = ((1 - f) * self.running_var + f * var * (m / (m - 1))).astype(
            self.running_var.dtype)

    def backward(self, grad_out):
        x, mean, inv_std, scale, shift, training, relu, input_bias = check_grad(self, grad_out)
        # dx, dgamma = sum G x_hat, dbeta = sum G  (G masked by y > 0 when the ReLU is fused)
        dx, dgamma, dbeta, dx_sum = kernels.batchnorm_backward(
            grad_out, x, mean, inv_std, scale, shift, relu, training)
        self.bias.grad += dbeta
        self.weight.grad += dgamma
        if input_bias is not None:
            input_bias.grad += dx_sum                                # d(x + b)/db = 1
        return dx

    def extra_repr(self):
        fused = ", relu=True" if self.relu else ""
        fused += ", input_bias folded" if self.input_bias is not None else ""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}{fused}"


def _pairs(model, first, second):
    """(a, b) for every module a of type `first` that a `second` directly follows in a
    Chain (Sequential or a model's stages()), i.e. b receives exactly a's output."""
    for chain in model.modules():
        if isinstance(chain, Chain):
            stages = list(chain.stages())
            for a, b in zip(stages, stages[1:]):
                if isinstance(a, first) and isinstance(b, second):
                    yield a, b


def fuse_bn_relu(model, enable=True):
    """Let each BatchNorm2d that a ReLU directly follows do that ReLU's work.

    Sets ``bn.relu = True`` and ``relu.fused = True`` (the ReLU then passes
    values and gradients through unchanged), saving one read and one write of
    the activation in each direction. Results are the same; the module tree
    and ``state_dict`` are untouched. ``enable=False`` undoes it. Returns the
    number of pairs changed. Call it between steps, not between a forward and
    its backward.
    """
    pairs = 0
    for bn, relu in _pairs(model, BatchNorm2d, ReLU):
        bn.relu = relu.fused = bool(enable)
        pairs += 1
    return pairs


def fold_conv_bias(model, enable=True):
    """Let each BatchNorm2d that directly follows a Conv2d with a bias account for that bias.

    The convolution then skips ``y += b`` and its bias gradient (one full pass
    over its output in each direction); the BatchNorm, which normalises
    x + b, shifts its mean by b and returns db = sum of its dx (see
    BatchNorm2d). Same results, same ``state_dict``; ``enable=False`` undoes
    it. Returns the number of pairs changed. Call it between steps.
    """
    pairs = 0
    for conv, bn in _pairs(model, Conv2d, BatchNorm2d):
        if conv.bias is None:
            continue
        conv.bias_folded = bool(enable)
        object.__setattr__(bn, "input_bias", conv.bias if enable else None)
        pairs += 1
    return pairs
