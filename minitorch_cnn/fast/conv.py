"""The fast path's Conv2d: the teaching layer's maths through a per-shape algorithm.

An algorithm is an object with ``name``, ``applies(x_shape, weight_shape,
stride, padding)`` (a static method), ``forward(x, w) -> (y, saved)`` (y
without the bias) and ``backward(g, saved, w, need_dx) -> (dx or None, dw)``,
made once per layer and input shape, batch included (so it may keep workspaces
between steps, and the choice may depend on the batch). :func:`minitorch_cnn.fast.algorithms.choose` picks one per shape.
"""
import numpy as np

from ..nn._checks import Cache, check_grad, check_input, check_windows
from . import algorithms


class FastConv2d:
    """Runs an ``nn.Conv2d`` (its Parameters, its checks) through a chosen algorithm.

    ``input_grad=False``: a convolution whose input nothing learns from (the data, or
    the output of frozen layers: fast/plan.py) returns no input gradient.
    A frozen weight (``requires_grad = False``) gets no gradient, as in PyTorch.
    """

    def __init__(self, conv, input_grad=True):
        self.conv, self.input_grad = conv, bool(input_grad)
        self.algorithms = {}   # input shape, batch included (F(4x4) needs a large one) -> algorithm
        self._cache = None

    def algorithm(self, x_shape):
        key = tuple(x_shape)
        alg = self.algorithms.get(key)
        if alg is None:
            c = self.conv
            alg = algorithms.choose(x_shape, c.weight.shape, c.stride, c.padding)
            self.algorithms[key] = alg
        return alg

    def forward(self, x):
        c = self.conv
        check_input(c, x, 4, c.in_channels, c.weight.dtype)
        check_windows(c, x, c.kernel_size, c.stride, c.padding)
        alg = self.algorithm(x.shape)
        y, saved = alg.forward(np.ascontiguousarray(x), c.weight.data)
        if c.bias is not None:
            y += c.bias.data
        self._cache = Cache(y.shape, alg=alg, saved=saved)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        c = self.conv
        g = np.ascontiguousarray(grad_out)
        dx = None
        if self.input_grad or c.weight.requires_grad:
            dx, dw = cache.alg.backward(g, cache.saved, c.weight.data, self.input_grad)
            if c.weight.requires_grad:
                c.weight.grad += dw
        if c.bias is not None:
            g2 = g.reshape(-1, c.out_channels)
            c.bias.grad += np.ones(len(g2), g2.dtype) @ g2      # column sums as a GEMV
        return dx

    def describe(self):
        parts = sorted({a.name for a in self.algorithms.values()})
        if not self.input_grad:
            parts.append("no input gradient")
        return ", ".join(parts)
