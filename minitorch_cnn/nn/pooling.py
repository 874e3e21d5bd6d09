"""MaxPool2d, AvgPool2d and AdaptiveAvgPool2d (NHWC)."""
import numpy as np

from .. import kernels
from ._checks import Cache, check_grad, check_input, check_windows, pair
from .module import Module


class _Pool2d(Module):
    """Shared argument handling: kernel, stride (defaults to the kernel), padding."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size}")
        self._cache = None

    def _check(self, x):
        check_input(self, x, 4)
        check_windows(self, x, self.kernel_size, self.stride, self.padding)
        return (*self.kernel_size, *self.stride, *self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    r"""Max over each kh x kw window (windows may overlap when stride < kernel).

    Shapes: (N, H, W, C) -> (N, OH, OW, C), OH = (H + 2 ph - kh) // sh + 1;
    padding is -inf, so it never wins.
    Forward keeps, for every output, the index of the winning input pixel.
    Backward routes each output gradient to that pixel only; when windows
    overlap, a pixel that wins several windows collects the sum.
    """

    def forward(self, x):
        window = self._check(x)
        y, argmax = kernels.maxpool_forward(x, *window)
        self._cache = Cache(y.shape, x_shape=x.shape, argmax=argmax)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        return kernels.maxpool_backward(grad_out, cache.argmax, cache.x_shape)


class AvgPool2d(_Pool2d):
    r"""Mean over each kh x kw window; zero padding counts in the mean
    (PyTorch's default count_include_pad=True).

    Shapes: (N, H, W, C) -> (N, OH, OW, C).
    y[n,i,j,c] = 1/(kh kw) sum_{p,q} x_pad[n, i*sh+p, j*sw+q, c]
    Backward: every pixel of a window receives dy/(kh kw) from it.
    """

    def forward(self, x):
        window = self._check(x)
        y = kernels.avgpool_forward(x, *window)
        self._cache = Cache(y.shape, x_shape=x.shape, window=window)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        return kernels.avgpool_backward(grad_out, cache.x_shape, *cache.window)


class AdaptiveAvgPool2d(Module):
    r"""Average into a fixed (oh, ow) grid, whatever the input size (PyTorch's bins).

    Output cell (i, j) averages rows floor(i H/oh) .. ceil((i+1) H/oh) - 1
    (and likewise for columns). With output_size=1 this is global average
    pooling: (N, H, W, C) -> (N, 1, 1, C), and dx = dy / (H W) everywhere.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair(output_size, "output_size", "AdaptiveAvgPool2d")
        self._cache = None

    def _bins(self, h, w):
        (oh, ow) = self.output_size
        rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
        cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
        return rows, cols

    def forward(self, x):
        check_input(self, x, 4)
        n, h, w, c = x.shape
        if h == 0 or w == 0:
            raise ValueError(f"AdaptiveAvgPool2d: expected an image of at least 1x1 pixels, "
                             f"got shape {x.shape}")
        rows, cols = self._bins(h, w)
        y = np.empty((n, len(rows), len(cols), c), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                y[:, i, j, :] = x[:, r0:r1, c0:c1, :].mean(axis=(1, 2))
        self._cache = Cache(y.shape, x_shape=x.shape)
        return y

    def backward(self, grad_out):
        x_shape = check_grad(self, grad_out).x_shape
        dx = np.zeros(x_shape, dtype=grad_out.dtype)
        rows, cols = self._bins(*x_shape[1:3])
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                dx[:, r0:r1, c0:c1, :] += grad_out[:, i:i + 1, j:j + 1, :] / ((r1 - r0) * (c1 - c0))
        return dx

    def extra_repr(self):
        return f"output_size={self.output_size}"
