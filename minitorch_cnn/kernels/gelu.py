"""GELU's elementwise kernels: a Numba loop and its NumPy twin, same signatures.

``forward(x) -> (y, dydx)`` computes, for every entry,

    Phi(x) = (1 + erf(x / sqrt 2)) / 2                 (the normal CDF)
    y      = x Phi(x)
    dy/dx  = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

so that backward is one multiply, ``backward(g, dydx) = g * dydx``: the
transcendental functions are evaluated once per entry, in the forward pass,
not again in the backward pass. The price is one activation-sized array kept
from forward to backward (instead of the input).

erf, by dtype (NumPy has no erf):

* float64 (gradient checks): ``math.erf``, the C library's, exact to about
  one ulp -- in the twin through ``np.frompyfunc`` (slow, about 0.1 us per
  entry), in the Numba kernel compiled;
* float32 (training): Abramowitz & Stegun 7.1.26, ``erf(z) = 1 - t (a1 + t
  (a2 + ... + t a5)) exp(-z^2)`` with ``t = 1 / (1 + p z)`` for ``z >= 0``
  (odd symmetry otherwise), whose error is below 1.5e-7 -- so y is off by at
  most 0.75e-7 |x|, float32's own rounding of y (6e-8 |y|) -- and whose
  ``exp(-z^2)`` with ``z = x / sqrt 2`` is the ``exp(-x^2 / 2)`` that phi
  needs anyway: one exp per entry gives both Phi and phi.

The float32 Numba kernel computes that exp itself, so that the compiler can
run the loop on 8 entries at a time (a call of the C library's expf or erff
in a loop keeps it scalar): with a = -x^2 / 2 (clamped at -87, below which
float32's exp is 0 for our purposes) and n = round(a / ln 2),

    exp(a) = 2^n e^r,   r = a - n ln 2 in [-ln2/2, ln2/2],
    e^r    = 1 + r + r^2/2! + ... + r^7/7!    (error < 3e-9 relative),

with ``n ln 2`` subtracted in two parts (Cody & Waite: ``ln 2 = 0.693359375
- 2.12194440e-4``, the first exact in float32, so ``r`` keeps its digits),
and 2^n put in by adding n to the float's exponent bits. Measured on the
2-core machine (one thread, CPU time, best of 7), 3.7 M float32 entries:
29.5 ms for the scalar loop calling ``math.exp`` (earlier: 98 ms calling
``math.erf`` too), 6.0 ms for this one; airbench94 at batch 1,024 has 84 M
GELU entries per forward pass, so about 0.5 s less per training step.
``error_model="numpy"`` matters: Python's error model checks every division
for zero, a branch that keeps the loop scalar.

Both backends are chosen by :func:`minitorch_cnn.kernels.get_backend`, like
every kernel of the package, and agree to rounding in both dtypes.
"""
import math

import numpy as np

from . import get_backend

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_P = 0.3275911                                                   # A&S 7.1.26
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_erf = np.frompyfunc(math.erf, 1, 1)


def forward_numpy(x):
    """The twin, in whole-array NumPy passes."""
    f = x.dtype.type
    gauss = np.exp(np.square(x) * f(-0.5))                      # exp(-x^2 / 2)
    if x.dtype == np.float64:
        erf = _erf(x * _SQRT_HALF).astype(np.float64)
    else:                                                        # A&S 7.1.26, z = |x| / sqrt 2
        t = f(1) / (f(1) + f(_P * _SQRT_HALF) * np.abs(x))
        poly = f(_A[4])
        for a in _A[3::-1]:
            poly = poly * t + f(a)
        erf = np.copysign(f(1) - t * poly * gauss, x)
    cdf = (erf + f(1)) * f(0.5)
    y = x * cdf
    return y, cdf + x * gauss * f(_INV_SQRT_2PI)


try:
    import numba
except ImportError:  # the twin serves
    numba = None

if numba is not None:
    @numba.njit(cache=True, nogil=True)
    def _gelu64(x, y, d):
        """float64: the C library's erf and exp, entry by entry."""
        for i in range(x.size):
            v = x[i]
            cdf = (math.erf(v * _SQRT_HALF) + 1.0) * 0.5
            y[i] = v * cdf
            d[i] = cdf + v * math.exp(v * v * -0.5) * _INV_SQRT_2PI

    _BLOCK = 4096

    @numba.njit(cache=True, nogil=True, error_model="numpy")   # no ZeroDivisionError branch
    def _gelu32(x, y, d):
        """float32: A&S 7.1.26 with our own exp, in blocks whose loops vectorise."""
        f = np.float32
        half, one, s, c = f(0.5), f(1.0), f(_SQRT_HALF), f(_INV_SQRT_2PI)
        ps, a1, a2, a3, a4, a5 = f(_P * _SQRT_HALF), f(_A[0]), f(_A[1]), f(_A[2]), f(_A[3]), \
            f(_A[4])
        log2e, ln2_hi, ln2_lo = f(1.4426950408889634), f(0.693359375), f(-2.12194440e-4)
        gauss = np.empty(_BLOCK, np.float32)
        bits = gauss.view(np.int32)                 # the same memory, as the float's bits
        expo = np.empty(_BLOCK, np.int32)
        for b0 in range(0, x.size, _BLOCK):
            m = min(_BLOCK, x.size - b0)
            xb, yb, db = x[b0:b0 + m], y[b0:b0 + m], d[b0:b0 + m]
            for j in range(m):                      # e^r and n, for a = -v^2 / 2
                a = xb[j] * xb[j] * -half
                a = a if a > f(-87.0) else f(-87.0)
                n = np.floor(a * log2e + half)
                r = (a - n * ln2_hi) - n * ln2_lo
                p = f(1 / 5040.0) * r + f(1 / 720.0)
                p = ((((p * r + f(1 / 120.0)) * r + f(1 / 24.0)) * r + f(1 / 6.0)) * r
                     + half) * r * r + r + one
                gauss[j] = p
                expo[j] = np.int32(n) << 23
            for j in range(m):                      # times 2^n: add n to the exponent
                bits[j] += expo[j]
            for j in range(m):
                v, g = xb[j], gauss[j]
                t = one / (one + ps * abs(v))
                q = one - t * ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * g
                cdf = ((q if v >= f(0.0) else -q) + one) * half
                yb[j] = v * cdf
                db[j] = cdf + v * g * c

def forward_numba(x):
    """One compiled pass over x for y and dy/dx."""
    flat = np.ascontiguousarray(x).reshape(-1)
    y, d = np.empty_like(flat), np.empty_like(flat)
    (_gelu64 if flat.dtype == np.float64 else _gelu32)(flat, y, d)
    return y.reshape(x.shape), d.reshape(x.shape)


def forward(x):
    """(GELU(x), dGELU/dx), by the active kernel backend."""
    if get_backend() == "numba" and numba is not None:
        return forward_numba(x)
    return forward_numpy(x)


def backward(grad_out, dydx):
    """dL/dx = dL/dy * dy/dx, elementwise."""
    return np.multiply(grad_out, dydx, dtype=grad_out.dtype)
