"""A dilated ("atrous") convolution: the kernel's taps spread ``dilation`` pixels apart.

A variant task: the library's Conv2d has no dilation, so its source does not
solve this one.
"""
import numpy as np

from minitorch_cnn.nn import Conv2d
from minitorch_cnn.nn._checks import Cache, check_grad, check_input, pair


class DilatedConv2d(Conv2d):
    r"""2-D cross-correlation with dilation, NHWC in and out, PyTorch's parameters.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, O), with the dilated kernel's extent
    ekh = d_h (kh - 1) + 1 and  OH = (H + 2 ph - ekh) // sh + 1  (likewise OW).
    weight (O, C, kh, kw), bias (O,).

    Forward:  y[n,i,j,o] = b[o] + sum_{p,q,c} x_pad[n, i sh + p d_h, j sw + q d_w, c] W[o,c,p,q]
      -- for each tap (p, q), the pixels it sees form a strided slice of x_pad,
      X_pq (N, OH, OW, C), and y = b + sum_{p,q} X_pq W[:, :, p, q]^T.
    Backward, G = dL/dy (N, OH, OW, O):
      dW[:, :, p, q] = G^T X_pq  (summed over n, i, j),   db = sum of G,
      dx_pad[slice of tap (p, q)] += G W[:, :, p, q]  (taps overlap: add), then crop.
    With dilation 1 this is the ordinary Conv2d (whose parameters, initialisation and
    arguments it takes over; forward and backward are its own).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, rng=None, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias, rng=rng, dtype=dtype)
        self.dilation = pair(dilation, "dilation", "DilatedConv2d")

    def _taps(self, h, w):
        """Output size and, for each tap (p, q), the slices of x_pad it reads."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, \
            self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"DilatedConv2d: the dilated kernel ({dh * (kh - 1) + 1}x"
                             f"{dw * (kw - 1) + 1}) is larger than the padded input "
                             f"({h + 2 * ph}x{w + 2 * pw})")
        taps = [(p, q, slice(p * dh, p * dh + sh * (oh - 1) + 1, sh),
                 slice(q * dw, q * dw + sw * (ow - 1) + 1, sw))
                for p in range(kh) for q in range(kw)]
        return oh, ow, taps

    def forward(self, x):
        check_input(self, x, 4, self.in_channels, self.weight.dtype)
        n, h, w, _ = x.shape
        ph, pw = self.padding
        oh, ow, taps = self._taps(h, w)
        x_pad = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        ### BEGIN SOLUTION dilated_conv2d_forward
        y = np.zeros((n, oh, ow, self.out_channels), dtype=x.dtype)
        for p, q, rows, cols in taps:
            y += x_pad[:, rows, cols, :] @ self.weight.data[:, :, p, q].T
        if self.bias is not None:
            y += self.bias.data
        ### END SOLUTION dilated_conv2d_forward
        self._cache = Cache(y.shape, x_pad=x_pad, size=(h, w), taps=taps)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        x_pad, (h, w), taps = cache.x_pad, cache.size, cache.taps
        ph, pw = self.padding
        ### BEGIN SOLUTION dilated_conv2d_backward
        g = grad_out
        dx_pad = np.zeros_like(x_pad)
        for p, q, rows, cols in taps:
            patch = x_pad[:, rows, cols, :]                           # (N, OH, OW, C)
            self.weight.grad[:, :, p, q] += g.reshape(-1, g.shape[3]).T @ \
                patch.reshape(-1, patch.shape[3])
            dx_pad[:, rows, cols, :] += g @ self.weight.data[:, :, p, q]
        if self.bias is not None:
            self.bias.grad += g.sum(axis=(0, 1, 2))
        dx = dx_pad[:, ph:ph + h, pw:pw + w, :]
        ### END SOLUTION dilated_conv2d_backward
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}")
