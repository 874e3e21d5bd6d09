"""Parameter initialisation as PyTorch's defaults, from a seedable numpy Generator.

Conv2d and Linear weights and biases are drawn from U(-b, b) with
b = 1/sqrt(fan_in): PyTorch's ``kaiming_uniform_(a=sqrt(5))`` for the weight
works out to exactly that bound, and its bias rule uses the same one.
"""
import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator that layers use when they are not given an ``rng``."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng(rng=None):
    return _rng if rng is None else rng


def uniform_fan_in(shape, fan_in, rng=None, dtype=np.float32):
    """Draw an array of `shape` from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return default_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)
