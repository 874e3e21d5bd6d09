"""GELU, the Gaussian error linear unit (exact erf form, as torch.nn.GELU())."""
import numpy as np

from ..kernels import gelu as kernels
from ._checks import check_grad
from .module import Module


class GELU(Module):
    r"""y = x Phi(x), elementwise, any shape; Phi is the standard normal CDF.

    Forward:  Phi(x) = (1 + erf(x / sqrt(2))) / 2,   y = x Phi(x)
    Backward: dx = dy * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    (product rule, with Phi' = phi; docs/layers/gelu.md derives it).

    The exact form, PyTorch's ``nn.GELU()`` default (``approximate='none'``),
    which airbench uses; not the tanh approximation. In training mode forward
    keeps the derivative Phi(x) + x phi(x) (one activation-sized array) so
    backward is a single multiply; in eval mode it keeps nothing.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"GELU: expected a floating-point numpy array, got {got}")
        y, dydx = kernels.forward(x, need_grad=self.training)
        self._cache = (y.shape, dydx)
        return y

    def backward(self, grad_out):
        (dydx,) = check_grad(self, grad_out)
        if dydx is None:
            raise RuntimeError("GELU.backward after an eval-mode forward: call model.train() "
                               "before the forward pass whose gradient you need")
        return kernels.backward(grad_out, dydx)
