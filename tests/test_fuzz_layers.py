"""Fuzzing every layer's public forward/backward with hypothesis.

Random ranks, shapes (zero-size too), dtypes (bool, ints, float16/32/64, complex, object),
non-contiguous views and non-arrays go into ``forward``, and random gradients into
``backward``. Each call either works -- and then the output has the expected shape and a
valid backward returns a gradient of the input's shape -- or raises the documented
``ValueError``/``TypeError`` whose message names the layer. Nothing else may escape, and
no input (nor gradient) is modified in place.

The escapes this fuzz found when it was written (no dtype check on backward's gradient,
float16 reaching the kernels, a zero-size Flatten, an empty loss batch) are fixed in the
layers' two validation helpers (nn/_checks.py); the fuzz now covers those cases too.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitorch_cnn import nn

DTYPES = [np.bool_, np.int8, np.int64, np.uint8, np.float16, np.float32, np.float64,
          np.complex64, np.complex128, object]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _rng():
    return np.random.default_rng(0)


# layer name -> (factory, valid input rank, channels/features of the last axis)
LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=_rng()), 4, 3),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), 4, 3),
    "ReLU": (lambda: nn.ReLU(), 4, 3),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), 4, 3),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), 4, 3),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), 4, 3),
    "Linear": (lambda: nn.Linear(3, 5, rng=_rng()), 2, 3),
    "Flatten": (lambda: nn.Flatten(), 4, 3),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=_rng()),
                                         nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                         nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                         nn.Linear(4, 2, rng=_rng())), 4, 3),
}
NAMES = {"Sequential": ("Sequential", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                        "AdaptiveAvgPool2d", "Flatten", "Linear")}

# ------------------------------------------------------------------ strategies
NOT_ARRAYS = [None, 1.5, [[0.5, 1.0, 2.0]], "x", (1, 2, 3)]

def _values(rng, shape, dtype):
    if dtype is object:
        out = np.empty(shape, dtype=object)
        out.flat[:] = [float(v) for v in rng.standard_normal(out.size)]
        return out
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(0, 5, shape).astype(dtype)
    values = rng.standard_normal(shape)
    if dtype.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


@st.composite
def arrays(draw, rank, last):
    """An array near what the layer takes (its rank, its last axis, small sizes: often
    valid) or anything: another rank, dims of 0, another dtype, a strided view."""
    near = draw(st.booleans())
    ndim = rank if near else draw(st.integers(0, 5))
    shape = [draw(st.integers(0, 5)) for _ in range(ndim)]
    if near and ndim:
        shape[-1] = draw(st.sampled_from([last, last, last, 1, 2]))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64] if near and draw(
        st.booleans()) else DTYPES))
    strided = draw(st.booleans()) and ndim > 0
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if strided:                            # every other element of a twice larger array
        axis = draw(st.integers(0, ndim - 1))
        big = list(shape)
        big[axis] *= 2
        x = _values(rng, big, dtype)
        x = x[(slice(None),) * axis + (slice(None, None, 2),)]
        assert x.shape == tuple(shape)
        return x
    return _values(rng, shape, dtype)


def _snapshot(x):
    return x.copy() if isinstance(x, np.ndarray) else x


def _unchanged(x, before):
    if isinstance(x, np.ndarray):
        assert x.dtype == before.dtype and x.shape == before.shape
        assert np.array_equal(x, before), "the input was modified in place"


def _call(layer_name, fn, *args):
    """fn(*args): its result, or None when it raised the documented error naming the
    layer; any other exception fails the test."""
    try:
        return fn(*args), None
    except (ValueError, TypeError) as err:
        names = NAMES.get(layer_name, (layer_name,))
        assert any(n in str(err) for n in names), \
            f"{type(err).__name__} does not name {layer_name}: {err}"
        return None, err


def _forward(layer_name, layer, x):
    if layer_name == "CrossEntropyLoss":
        return _call(layer_name, layer.forward, *x)
    return _call(layer_name, layer.forward, x)


# ------------------------------------------------------------------- the fuzz
def _forward_then_backward(name, layer, x):
    """forward(x), then, if it worked, backward with a gradient of the output's shape and
    dtype: each works or raises the documented error, and neither changes its input."""
    before = _snapshot(x)
    y, err = _call(name, layer.forward, x)
    _unchanged(x, before)
    if err is not None:
        return
    y = np.asarray(y)                      # (ReLU of a 0-d array gives a numpy scalar)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    g_before = g.copy()
    dx, err = _call(name, layer.backward, g)
    _unchanged(g, g_before)
    _unchanged(x, before)
    assert err is None, f"a gradient of the output's shape and dtype was refused: {err}"
    if dx is not None:
        assert dx.shape == x.shape


@pytest.mark.parametrize("name", list(LAYERS))
def test_fuzz_forward_then_a_valid_backward(name):
    make, rank, last = LAYERS[name]

    @FUZZ
    @given(x=st.one_of(arrays(rank, last), st.sampled_from(NOT_ARRAYS)))
    def check(x):
        _forward_then_backward(name, make(), x)
    check()


@st.composite
def gradients(draw, shape):
    """A gradient for an output of ``shape``: that shape in any dtype, possibly strided,
    or any array at all."""
    if draw(st.booleans()):
        return draw(arrays(len(shape), shape[-1] if shape else 1))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()) and shape:
        return _values(rng, (2 * shape[0],) + tuple(shape[1:]), dtype)[::2]
    return _values(rng, shape, dtype)


@pytest.mark.parametrize("name", list(LAYERS))
def test_fuzz_backward_with_any_gradient(name):
    make, rank, last = LAYERS[name]

    @FUZZ
    @given(data=st.data(), n=st.integers(1, 3))
    def check(data, n):
        layer = make()
        shape = (n, 6, 6, last) if rank == 4 else (n, last)
        x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        y = layer.forward(x)
        g = data.draw(gradients(y.shape))
        before = _snapshot(g)
        dx, err = _call(name, layer.backward, g)
        _unchanged(g, before)
        if err is None and dx is not None:
            assert dx.shape == x.shape and g.shape == y.shape
    check()


@st.composite
def loss_inputs(draw):
    logits = draw(arrays(2, 4))
    n = logits.shape[0] if logits.ndim else draw(st.integers(0, 4))
    kind = draw(st.sampled_from(["valid", "range", "dtype", "shape", "list"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    k = logits.shape[1] if logits.ndim == 2 else 4
    targets = rng.integers(0, max(k, 1), n)
    if kind == "range":
        targets = targets + k
    elif kind == "dtype":
        targets = _values(rng, (n,), draw(st.sampled_from(DTYPES)))
    elif kind == "shape":
        targets = rng.integers(0, max(k, 1), (n, 2))
    elif kind == "list":
        targets = targets.tolist()
    return logits, targets


def test_fuzz_cross_entropy_loss():
    @FUZZ
    @given(inputs=loss_inputs(), smoothing=st.sampled_from([0.0, 0.1]))
    def check(inputs, smoothing):
        logits, targets = inputs
        loss = nn.CrossEntropyLoss(label_smoothing=smoothing)
        before = (_snapshot(logits), _snapshot(targets))
        value, err = _call("CrossEntropyLoss", loss.forward, logits, targets)
        _unchanged(logits, before[0])
        if isinstance(targets, np.ndarray):
            _unchanged(targets, before[1])
        if err is None:
            assert isinstance(value, float)
            grad = loss.backward()
            assert grad.shape == logits.shape
    check()
