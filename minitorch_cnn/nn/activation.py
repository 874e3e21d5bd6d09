"""ReLU."""
import numpy as np

from ._checks import check_grad
from .module import Module


class ReLU(Module):
    r"""y = max(x, 0), elementwise, any shape.

    Backward: dx = dy * [x > 0] (the gradient at exactly 0 is 0, as PyTorch).
    ``inplace`` is accepted for PyTorch compatibility and ignored.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self._cache = None

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"ReLU: expected a floating-point numpy array, got {got}")
        y = np.maximum(x, 0)
        self._cache = (y.shape, y > 0)
        return y

    def backward(self, grad_out):
        (mask,) = check_grad(self, grad_out)
        return grad_out * mask
