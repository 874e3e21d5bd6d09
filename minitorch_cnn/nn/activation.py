"""ReLU."""
import numpy as np

from ._checks import Cache, check_grad, check_input
from .module import Module


class ReLU(Module):
    r"""y = max(x, 0), elementwise, any shape.

    Backward: dx = dy * [x > 0] (the gradient at exactly 0 is 0, as PyTorch);
    [x > 0] = [y > 0], so the output y is what forward keeps.
    ``inplace`` is accepted for PyTorch compatibility and ignored.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self._cache = None

    def forward(self, x):
        check_input(self, x)
        y = np.maximum(x, 0)
        self._cache = Cache(y.shape, y=y)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        return np.where(cache.y > 0, grad_out, 0)
