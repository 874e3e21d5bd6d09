"""ReLU."""
import numpy as np

from .. import kernels
from ._checks import check_grad
from .module import Module


class ReLU(Module):
    r"""y = max(x, 0), elementwise, any shape.

    Backward: dx = dy * [x > 0] (the gradient at exactly 0 is 0, as PyTorch);
    [x > 0] = [y > 0], so the output y is what forward keeps.
    ``inplace`` is accepted for PyTorch compatibility and ignored.

    ``fused = True`` (set by :func:`minitorch_cnn.nn.normalization.fuse_bn_relu`)
    means the BatchNorm2d just before this layer already applied the ReLU
    and its backward, so this layer passes values and gradients through.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.fused = False
        self._cache = None

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"ReLU: expected a floating-point numpy array, got {got}")
        y = x if self.fused else np.maximum(x, 0)
        self._cache = (y.shape, None if self.fused else y)
        return y

    def backward(self, grad_out):
        (y,) = check_grad(self, grad_out)
        return grad_out if y is None else kernels.relu_backward(grad_out, y)

    def extra_repr(self):
        return "fused into the BatchNorm2d before it" if self.fused else ""
