"""GELU, the Gaussian error linear unit (exact erf form, as torch.nn.GELU())."""
import math

import numpy as np

from ._checks import Cache, check_grad, check_input
from .module import Module

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """erf of every entry, in ``x``'s dtype: the C library's ``math.erf`` (exact to about
    one ulp), one entry at a time, since NumPy has none. (The fast path's kernel,
    kernels/gelu.py, computes the same in one compiled pass.)"""
    return _erf(x.astype(np.float64)).astype(x.dtype)


class GELU(Module):
    r"""y = x Phi(x), elementwise, any shape; Phi is the standard normal CDF.

    Forward:  Phi(x) = (1 + erf(x / sqrt(2))) / 2,   y = x Phi(x)
    Backward: dx = dy * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    (product rule, with Phi' = phi; docs/layers/gelu.md derives it).

    The exact form, PyTorch's ``nn.GELU()`` default (``approximate='none'``),
    which airbench uses; not the tanh approximation. Forward keeps x and
    Phi(x) for backward. ``minitorch_cnn.compile(model)`` runs the kernel of
    kernels/gelu.py instead (y and dy/dx in one pass), proven equal by
    tests/test_gelu.py.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        check_input(self, x)
        cdf = (1 + erf(x / math.sqrt(2))) / 2                 # Phi(x)
        y = x * cdf
        self._cache = Cache(y.shape, x=x, cdf=cdf)
        return y

    def backward(self, grad_out):
        cache = check_grad(self, grad_out)
        x = cache.x
        pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)     # phi(x)
        return grad_out * (cache.cdf + x * pdf)
