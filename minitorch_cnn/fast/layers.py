"""The fast path's BatchNorm2d and ReLU: the teaching layers' maths in fused kernels.

Each class runs one teaching layer (its Parameters, buffers and checks) and
is proven equal to it by tests/test_fast.py.
"""
import numpy as np

from .. import kernels
from ..kernels import gelu as gelu_kernels
from ..nn._checks import Cache, check_grad, check_input, values_per_channel


class FastBatchNorm2d:
    """``nn.BatchNorm2d`` as y = x * scale + shift in one pass, backward in two.

    scale = gamma / sqrt(var + eps), shift = beta - mean * scale; only x is
    kept, and backward recomputes x_hat from it (kernels.batchnorm_backward).
    ``relu=True`` (a fusion the planner chooses): the ReLU after it is done
    here (y = max(x scale + shift, 0), backward masks G by the same test);
    that ReLU becomes a pass-through.
    """

    def __init__(self, bn, relu=False):
        self.bn, self.relu = bn, bool(relu)
        self._cache = None

    def forward(self, x):
        bn = self.bn
        check_input(bn, x, 4, bn.num_features, bn.weight.dtype)
        if bn.training:
            m = values_per_channel(bn, x)
            mean, var = kernels.channel_stats(x)
            bn._update_running(mean, var, m)
        else:
            mean, var = bn.running_mean, bn.running_var
        inv_std = (1.0 / np.sqrt(var + bn.eps)).astype(x.dtype, copy=False)
        scale = bn.weight.data * inv_std
        shift = bn.bias.data - mean * scale
        y = kernels.scale_shift(x, scale, shift, self.relu)
        self._cache = Cache(y.shape, x=x, mean=mean, inv_std=inv_std, scale=scale,
                            shift=shift, training=bn.training)
        return y

    def backward(self, grad_out):
        c = check_grad(self, grad_out)
        dx, dgamma, dbeta = kernels.batchnorm_backward(
            grad_out, c.x, c.mean, c.inv_std, c.scale, c.shift, self.relu, c.training)
        self.bn.bias.grad += dbeta
        self.bn.weight.grad += dgamma
        return dx

    def describe(self):
        return "scale-shift kernels" + (" + the ReLU after it" if self.relu else "")


class FastReLU:
    """``nn.ReLU``; ``fused=True``: the BatchNorm2d before it already did the work."""

    def __init__(self, relu, fused=False):
        self.relu, self.fused = relu, bool(fused)
        self._cache = None

    def forward(self, x):
        check_input(self.relu, x)
        if self.fused:
            return x
        y = np.maximum(x, 0)
        self._cache = Cache(y.shape, y=y)
        return y

    def backward(self, grad_out):
        if self.fused:
            return grad_out
        return kernels.relu_backward(grad_out, check_grad(self, grad_out).y)

    def describe(self):
        return "done by the BatchNorm2d before it" if self.fused else "kernel backward"


class FastGELU:
    """``nn.GELU`` by the kernel of kernels/gelu.py: y and dy/dx in one compiled pass,
    so backward is one multiply (tests/test_gelu.py proves it equal to the layer)."""

    def __init__(self, gelu):
        self.gelu = gelu
        self._cache = None

    def forward(self, x):
        check_input(self.gelu, x)
        y, dydx = gelu_kernels.forward(x)
        self._cache = Cache(y.shape, dydx=dydx)
        return y

    def backward(self, grad_out):
        return gelu_kernels.backward(grad_out, check_grad(self, grad_out).dydx)

    def describe(self):
        return "kernel: y and dy/dx in one pass"
