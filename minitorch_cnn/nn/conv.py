"""Conv2d: a convolution as im2col + one matrix multiply (NHWC activations)."""
import numpy as np

from .. import kernels
from ._checks import check_grad, check_input, check_window, pair
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
      dW_col = X_col^T @ G  (computed as its transpose G^T X_col, PyTorch's row
      order),   db = sum of G over rows  (1^T G: BLAS's GEMV on both cores is
      2-3x faster than G.sum(axis=0)),
      dX_col = G @ W_col^T,   dx = col2im(dX_col)  (overlapping windows add up).

    ``input_grad = False`` (an attribute, default True) skips dX_col and col2im
    and makes backward return None: for a first layer whose input is data,
    like PyTorch skipping an input that does not require grad.
    ``bias_folded = True`` (set by ``nn.normalization.fold_conv_bias``) leaves
    the bias and its gradient to the BatchNorm2d that follows.
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
        self.input_grad = True
        self.bias_folded = False   # True: the BatchNorm after it adds the bias (fold_conv_bias)
        # Memory: a kh x kw im2col matrix is up to kh*kw times larger than the input.
        # Keep the input instead and rebuild the matrix in backward where that is
        # cheap next to the GEMMs it feeds (the copy costs about 1/O of them):
        # measured +1 % time at O >= 128, but +12-30 % for the seed's O = 64 layers.
        self.recompute_cols = kh * kw > 1 and self.out_channels >= 128
        self._cache = None

    def _weight_col(self):
        """(O, C, kh, kw) -> (kh*kw*C, O), the row order im2col produces.

        Built as the transpose of a C-contiguous (O, kh*kw*C) array: that copy
        reads the weight almost in order (5x faster than copying straight into
        (kh*kw*C, O)), and BLAS takes the transposed operand without another
        copy. For a 1x1 kernel it is a view, no copy at all. Made once per
        forward, reused by backward.
        """
        w = self.weight.data
        return w.transpose(0, 2, 3, 1).reshape(self.out_channels, -1).T

    def forward(self, x):
        check_input(self, x, 4, self.in_channels, self.weight.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, h, w, _ = x.shape
        oh = check_window(self, h, kh, sh, ph, "height")
        ow = check_window(self, w, kw, sw, pw, "width")
        cols = kernels.im2col(x, kh, kw, sh, sw, ph, pw)            # (N*OH*OW, kh*kw*C)
        w_col = self._weight_col()                                   # (kh*kw*C, O)
        y = cols @ w_col                                             # (N*OH*OW, O)
        if self.bias is not None and not self.bias_folded:
            y += self.bias.data
        y = y.reshape(n, oh, ow, self.out_channels)
        recompute = self.recompute_cols
        self._cache = (y.shape, x.shape, x if recompute else cols, recompute, w_col)
        return y

    def backward(self, grad_out):
        x_shape, saved, recompute, w_col = check_grad(self, grad_out)
        g = grad_out.reshape(-1, self.out_channels)                  # (N*OH*OW, O)
        kh, kw = self.kernel_size
        cols = kernels.im2col(saved, kh, kw, *self.stride, *self.padding) if recompute else saved
        dw_row = g.T @ cols                      # dW_col^T: (O, kh*kw*C), (O, C) for 1x1
        self.weight.grad += dw_row.reshape(-1, kh, kw, self.in_channels).transpose(0, 3, 1, 2)
        if self.bias is not None and not self.bias_folded:
            self.bias.grad += np.ones(len(g), g.dtype) @ g           # column sums, as a GEMV
        if not self.input_grad:
            return None
        dcols = g @ w_col.T                                          # (N*OH*OW, kh*kw*C)
        return kernels.col2im(dcols, x_shape, kh, kw, *self.stride, *self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
