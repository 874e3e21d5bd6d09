"""nn.GELU: finite differences in float64, PyTorch's exact-erf GELU, and its two kernels.

The layer computes its formula with the C library's erf; the fast path
(``minitorch_cnn.compile``) runs the kernels of kernels/gelu.py instead, proven equal
to the layer here. The float32 kernels use a rational approximation of erf; the tests
bound its error against the C library's erf, and prove the Numba loop equal to its
NumPy twin in both dtypes.
"""
import math

import numpy as np
import pytest

import minitorch_cnn
from minitorch_cnn import gradcheck, nn
from minitorch_cnn.kernels import gelu as K
from test_layers_torch import check_against_torch


def _exact(x):
    """GELU and its derivative from math.erf, entry by entry, in float64."""
    x = np.asarray(x, dtype=np.float64)
    cdf = np.vectorize(lambda v: 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))))(x)
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7), (1, 2, 1, 3)])
def test_gelu_gradcheck(backend, record_error, rng, shape):
    x = rng.standard_normal(shape) * 3          # both tails and the bend near 0
    errors = gradcheck(nn.GELU(), x)
    assert set(errors) == {"input"}
    assert errors["input"] <= 1e-7, errors
    record_error("GELU", "gradcheck", errors["input"])


@pytest.mark.torch
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gelu_matches_torch(torch, backend, record_error, seed):
    x = np.random.default_rng(seed).standard_normal((2, 5, 3, 4)) * 4
    x.reshape(-1)[:3] = (0.0, -12.0, 12.0)      # GELU(0) = 0, the saturated tails
    gelu = torch.nn.GELU()                       # approximate='none': the erf form
    check_against_torch(torch, "GELU", nn.GELU(), x, lambda t: gelu(t), record_error, seed)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-15), (np.float32, 2.5e-7)])
def test_gelu_kernels_equal_exact_gelu(dtype, tol):
    """y and dy/dx within tol * max(1, |x|) of math.erf's, for both backends (float32:
    the A&S erf, error < 1.5e-7, plus float32 rounding)."""
    x = np.concatenate([np.linspace(-10, 10, 4001), [0.0, -1e-30, 1e-30, -40.0, 40.0]])
    y_ref, d_ref = _exact(x)
    scale = np.maximum(1.0, np.abs(x))
    for forward in (K.forward_numpy, K.forward_numba):
        y, d = forward(x.astype(dtype))
        assert y.dtype == d.dtype == dtype
        assert (np.abs(y - y_ref) / scale).max() <= tol
        assert (np.abs(d - d_ref) / scale).max() <= tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 9, 5, 7), (2, 4100)])   # one block; 2 blocks + a rest
def test_gelu_numba_equals_twin(rng, dtype, shape):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y0, d0 = K.forward_numpy(x)
    y1, d1 = K.forward_numba(x)
    ulp = np.finfo(dtype).eps
    np.testing.assert_allclose(y1, y0, rtol=4 * ulp, atol=4 * ulp)
    np.testing.assert_allclose(d1, d0, rtol=4 * ulp, atol=4 * ulp)
    y2, d2 = K.forward_numba(x[:, ::2])             # a strided view
    np.testing.assert_array_equal(y2, y1[:, ::2])
    np.testing.assert_array_equal(d2, d1[:, ::2])


def test_gelu_backward_in_eval_mode_is_the_same_derivative(rng):
    gelu = nn.GELU()
    x = rng.standard_normal((2, 3))
    g = rng.standard_normal(x.shape)
    gelu.eval()
    y = gelu(x)
    np.testing.assert_allclose(y, _exact(x)[0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(gelu.backward(g), g * _exact(x)[1], rtol=1e-13, atol=1e-15)


def test_gelu_rejects_non_float_input():
    with pytest.raises(TypeError, match=r"GELU: expected a floating-point input \(float32 or float64\), got dtype int64"):
        nn.GELU()(np.arange(3))
    g = nn.GELU()
    g(np.zeros(2))
    with pytest.raises(ValueError, match=r"GELU.backward: expected a gradient of the output's "
                                         r"shape \(2,\)"):
        g.backward(np.zeros(3))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-14), (np.float32, 4e-7)])
@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (1, 9, 7, 2)])
def test_fast_path_kernel_equals_the_layer(backend, rng, dtype, tol, shape):
    """compile(model) lends nn.GELU the kernel; its y and input gradient (random upstream
    gradient) equal the layer's formula: float64 to rounding, float32 within the A&S erf's
    error (1.5e-7) plus rounding, relative to max(1, |x|) and |g|."""
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.reshape(-1)[:3] = (0.0, -12.0, 12.0)
    g = rng.standard_normal(shape).astype(dtype)
    model = nn.Sequential(nn.GELU())
    y, dx = model(x), model.backward(g)
    fast = minitorch_cnn.compile(model)
    y_fast = fast(x)
    dx_fast = fast.backward(g)
    assert "kernel" in fast.describe() and y_fast.dtype == dx_fast.dtype == dtype
    scale = np.maximum(1.0, np.abs(x))
    assert (np.abs(y_fast - y) / scale).max() <= tol
    assert (np.abs(dx_fast - dx) / (scale * np.abs(g).max())).max() <= tol
