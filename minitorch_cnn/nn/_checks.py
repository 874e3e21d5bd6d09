"""Input validation shared by the layers: clear errors instead of silent broadcasting."""
import numpy as np


def pair(value, name, layer):
    """An int or a pair of ints -> a pair of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")


def check_input(layer, x, ndim=None, channels=None, dtype=None):
    """Check that x is a floating numpy array of rank `ndim` (any rank if None; NHWC: the
    last axis holds the channels).

    `layer` is the layer object, named in every message; `dtype` (if given) is
    the dtype of the layer's parameters, which the input must match.
    """
    name = type(layer).__name__
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a floating-point input (float32 or float64), "
                        f"got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        what = "a 4-D NHWC input (batch, height, width, channels)" if ndim == 4 \
            else f"a {ndim}-D input"
        hint = " (add a Flatten before it)" if ndim == 2 and x.ndim == 4 else ""
        raise ValueError(f"{name}: expected {what}, got shape {x.shape}{hint}")
    if channels is not None and x.shape[-1] != channels:
        hint = ""
        if ndim == 4 and x.shape[1] == channels:
            hint = " (this looks like NCHW; minitorch_cnn is NHWC: use x.transpose(0, 2, 3, 1))"
        what = "channels" if ndim == 4 else "features"
        raise ValueError(f"{name}: expected {channels} {what} in the last axis, "
                         f"got shape {x.shape}{hint}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: input dtype {x.dtype} does not match the parameters' "
                        f"dtype {dtype}; cast one of them (e.g. model.to(np.{x.dtype}))")


class Cache:
    """What a forward keeps for its backward: ``Cache(y.shape, x=x, cols=cols)``.

    ``out_shape`` is the output's shape, which the upstream gradient must have;
    every other value is an attribute named by the layer (``cache.cols``).
    """

    def __init__(self, out_shape, **saved):
        self.out_shape = tuple(out_shape)
        self.__dict__.update(saved)

    def __repr__(self):
        return "Cache(" + ", ".join(self.__dict__) + ")"


def check_grad(layer, grad_out):
    """Validate grad_out against what forward cached, hand the cache over and free it.

    Every layer's forward stores ``layer._cache = Cache(y.shape, ...)``;
    backward takes it back with ``cache = check_grad(self, grad_out)`` (so its
    memory is released right after use): a gradient of another shape, a
    second backward or a backward before any forward is a clear error.
    """
    name = type(layer).__name__
    cache = layer._cache
    if cache is None:
        raise RuntimeError(f"{name}.backward called before forward (nothing cached; "
                           "each forward allows one backward)")
    if not isinstance(grad_out, np.ndarray) or grad_out.shape != cache.out_shape:
        got = grad_out.shape if isinstance(grad_out, np.ndarray) else type(grad_out).__name__
        raise ValueError(f"{name}.backward: expected a gradient of the output's shape "
                         f"{cache.out_shape}, got {got}")
    if grad_out.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}.backward: expected a float32 or float64 gradient, "
                        f"got dtype {grad_out.dtype}")
    layer._cache = None
    return cache


def check_window(layer, size, k, s, p, axis):
    """Output length of a window (k, stride s, padding p) over `size` pixels; error if it does not fit."""
    if size + 2 * p < k:
        raise ValueError(f"{type(layer).__name__}: kernel size {k} is larger than the padded "
                         f"input ({size} + 2*{p} = {size + 2 * p}) along {axis}")
    return (size + 2 * p - k) // s + 1


def check_windows(layer, x, kernel_size, stride, padding):
    """(OH, OW) of 2-D windows over an NHWC input; error naming the axis where one does not fit."""
    return tuple(check_window(layer, size, k, s, p, axis) for size, k, s, p, axis in
                 zip(x.shape[1:3], kernel_size, stride, padding, ("height", "width")))


def values_per_channel(layer, x):
    """How many values each channel of an NHWC batch holds; batch statistics need 2 or more."""
    m = x.size // x.shape[-1]
    if m < 2:
        raise ValueError(f"{type(layer).__name__}: expected more than 1 value per channel "
                         f"when training, got input shape {x.shape}")
    return m
