"""minitorch_cnn: convolutional networks in NumPy, with every backward pass written out.

Activations are NHWC (batch, height, width, channels); parameters and
``state_dict`` keys are PyTorch's. See docs/conventions.md.
"""
from ._memory import configure as _configure_memory
from ._threading import configure as _configure_threads

_configure_threads()  # before anything imports Numba
_configure_memory()   # keep freed large arrays for reuse (see _memory.py)

from . import kernels, nn  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .nn.init import manual_seed  # noqa: E402
from . import interop, models  # noqa: E402
from .summary import summary  # noqa: E402  (the function; the module stays importable by name)
from . import fast  # noqa: E402
from .fast import compile  # noqa: E402,A004  (minitorch_cnn.compile(model): the fast path)

__version__ = "0.1.0"
__all__ = ["nn", "kernels", "gradcheck", "manual_seed", "models", "interop", "summary", "fast",
           "compile"]
