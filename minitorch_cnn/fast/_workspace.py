"""What the convolution algorithms of the fast path share: argument pairs and reusable buffers."""
import numpy as np


def pair(v):
    """3 -> (3, 3); (1, 2) stays (1, 2)."""
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


class Workspace:
    """Named scratch arrays kept between training steps.

    ``get(name, shape, dtype)`` returns a C-contiguous array of that shape
    carved from one flat buffer per name, which grows when a larger shape is
    asked for and is otherwise reused: a layer's large intermediates are
    allocated (and their pages faulted in) once, not every step. ``step()`` starts a new forward
    pass; ``check(token)`` raises if a backward pass arrives for a forward
    whose buffers a later forward has since overwritten (each layer keeps one
    forward's state, as every layer of this library does).
    """

    def __init__(self, owner):
        self.owner, self.generation, self._buffers = owner, 0, {}

    def get(self, name, shape, dtype):
        size, buf = int(np.prod(shape)), self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)

    def step(self):
        self.generation += 1
        return self.generation

    def check(self, token):
        if token != self.generation:
            raise RuntimeError(f"{self.owner}: backward() of an earlier forward; a later forward "
                               "has reused its buffers (call backward after each forward)")
