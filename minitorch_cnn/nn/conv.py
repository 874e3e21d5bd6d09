"""Conv2d: a convolution as im2col + one matrix multiply (NHWC activations)."""
import numpy as np

from .. import kernels
from ._checks import Cache, check_grad, check_input, check_windows, pair
from .init import uniform_fan_in
from .module import Module, Parameter


class Conv2d(Module):
    r"""2-D convolution (cross-correlation, as PyTorch), NHWC in and out.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, O), OH = (H + 2 ph - kh) // sh + 1.
    Parameters in PyTorch's layout: weight (O, C, kh, kw), bias (O,).

    Forward:  y[n,i,j,o] = b[o] + sum_{p,q,c} x_pad[n, i*sh+p, j*sw+q, c] W[o,c,p,q]
      im2col lays every window out as a row, X_col (N*OH*OW, kh*kw*C), and the
      weight as W_col (kh*kw*C, O), so  Y = X_col @ W_col + b.
    Backward, with G = dL/dY reshaped to (N*OH*OW, O):
      dW_col = X_col^T @ G,   db = sum of G over its rows,
      dX_col = G @ W_col^T,   dx = col2im(dX_col)  (overlapping windows add up).
    docs/layers/conv2d.md derives it; the fast path (minitorch_cnn.fast) runs
    the same maths with other algorithms and fusions, proven equal by tests.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bias=True, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d")
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self.weight = Parameter(uniform_fan_in((out_channels, in_channels, kh, kw), fan_in, rng, dtype))
        self.bias = Parameter(uniform_fan_in((out_channels,), fan_in, rng, dtype)) if bias else None
        self._cache = None

    def weight_col(self):
        """The weight as W_col (kh*kw*C, O): (O, C, kh, kw) -> (kh, kw, C, O) -> 2-D,
        the row order of im2col's patches (kernel row, kernel column, channel)."""
        return self.weight.data.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)

    def forward(self, x):
        check_input(self, x, 4, self.in_channels, self.weight.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n = x.shape[0]
        oh, ow = check_windows(self, x, self.kernel_size, self.stride, self.padding)
        ### BEGIN SOLUTION conv2d_forward
        cols = kernels.im2col(x, kh, kw, sh, sw, ph, pw)            # (N*OH*OW, kh*kw*C)
        w_col = self.weight_col()                                    # (kh*kw*C, O)
        y = cols @ w_col                                             # (N*OH*OW, O)
        if self.bias is not None:
            y += self.bias.data
        ### END SOLUTION conv2d_forward
        y = y.reshape(n, oh, ow, self.out_channels)
        self._cache = Cache(y.shape, x_shape=x.shape, cols=cols, w_col=w_col)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        ### BEGIN SOLUTION conv2d_backward
        (kh, kw), c = self.kernel_size, self.in_channels
        g = grad_out.reshape(-1, self.out_channels)                  # G: (N*OH*OW, O)
        dw_col = cache.cols.T @ g                                    # (kh*kw*C, O)
        self.weight.grad += dw_col.reshape(kh, kw, c, -1).transpose(3, 2, 0, 1)
        if self.bias is not None:
            self.bias.grad += g.sum(axis=0)
        dcols = g @ cache.w_col.T                                    # (N*OH*OW, kh*kw*C)
        return kernels.col2im(dcols, cache.x_shape, kh, kw, *self.stride, *self.padding)
        ### END SOLUTION conv2d_backward

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
