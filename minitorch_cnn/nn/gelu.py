"""GELU, the Gaussian error linear unit (exact erf form, as torch.nn.GELU())."""
from ..kernels import gelu as kernels
from ._checks import Cache, check_grad, check_input
from .module import Module


class GELU(Module):
    r"""y = x Phi(x), elementwise, any shape; Phi is the standard normal CDF.

    Forward:  Phi(x) = (1 + erf(x / sqrt(2))) / 2,   y = x Phi(x)
    Backward: dx = dy * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    (product rule, with Phi' = phi; docs/layers/gelu.md derives it).

    The exact form, PyTorch's ``nn.GELU()`` default (``approximate='none'``),
    which airbench uses; not the tanh approximation. Forward keeps the
    derivative Phi(x) + x phi(x) (one activation-sized array, computed in the
    same pass as y), so backward is a single multiply.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        check_input(self, x)
        y, dydx = kernels.forward(x)
        self._cache = Cache(y.shape, dydx=dydx)
        return y

    def backward(self, grad_out):
        return kernels.backward(grad_out, check_grad(self, grad_out).dydx)
