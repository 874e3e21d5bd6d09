"""Compare a student's result with the reference's, and say what is wrong as a hint.

:func:`compare` returns ``(ok, message)``. When a tensor is wrong, the
message says which tensor, how wrong, where, and -- when the difference
has a recognisable shape -- a hint: only the border is wrong (padding), a
constant factor N (a missing mean), the sign, a transposed or flipped
kernel, wrong only where windows overlap (``=`` instead of ``+=``), or one of
the task's own known mistakes (a :class:`Expected` carries them, each with
the value that mistake would produce).
"""
from dataclasses import dataclass, field

import numpy as np

RTOL = 1e-7     # float64 throughout: a right answer differs only by summation order


@dataclass
class Expected:
    """A reference value, with what would explain a wrong answer.

    ``mistakes``: (hint, the value that mistake gives) pairs;
    ``masks``: (hint, boolean mask of the value's shape) -- "wrong only here";
    ``factors``: (hint, c) -- "off by exactly the factor c".
    """
    value: object
    mistakes: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    factors: list = field(default_factory=list)


def relative_error(got, want):
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-30)
    return float(np.abs(got - want).max(initial=0.0)) / scale


def close(got, want, rtol=RTOL):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    if not np.isfinite(got).all():
        return False
    return relative_error(got, want) <= rtol


def compare(name, got, expected, rtol=RTOL):
    """(ok, message) for the result ``got`` of tensor ``name`` against ``expected``."""
    exp = expected if isinstance(expected, Expected) else Expected(expected)
    want = exp.value
    if isinstance(want, str):
        return (True, "") if str(got) == want else (False, f"{name} is {got}, which is "
                                                      "not what the architecture needs")
    if isinstance(want, (list, tuple)) or (isinstance(want, np.ndarray) and want.dtype.kind in "USO"):
        return _compare_list(name, got, want, exp)
    if isinstance(want, (bool, np.bool_)) or (isinstance(want, (int, np.integer))):
        ok = got is not None and np.ndim(got) == 0 and got == want
        return (True, "") if ok else (False, f"{name} is {got!r}, expected {want!r}")
    if got is None:
        return False, f"{name}: got None (forgot to return it?)"
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False, f"{name}: got a {type(got).__name__}, expected an array of shape {np.shape(want)}"
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return False, f"{name} has shape {g.shape}, expected {w.shape}" + _shape_hint(g.shape, w.shape)
    if not np.isfinite(g).all():
        bad = int((~np.isfinite(g)).sum())
        return False, f"{name} has {bad} NaN/inf entries" + \
            " (hint: exp of a large number overflows; subtract the maximum first)"
    err = relative_error(g, w)
    if err <= rtol:
        return True, ""
    return False, f"{name} is wrong (max relative error {err:.2g})" + _where(g, w, rtol) + \
        _hint(g, w, exp, rtol)


def _compare_list(name, got, want, exp):
    want = [str(v) for v in (want.tolist() if isinstance(want, np.ndarray) else want)]
    try:
        got = [str(v) for v in (got.tolist() if isinstance(got, np.ndarray) else list(got))]
    except TypeError:
        return False, f"{name}: got {type(got).__name__}, expected a list"
    if got == want:
        return True, ""
    for hint, value in exp.mistakes:
        if [str(v) for v in value] == got:
            return False, f"{name} differs from the reference (hint: {hint})"
    missing = [v for v in want if v not in got]
    extra = [v for v in got if v not in want]
    if len(got) != len(want) and (missing or extra):
        detail = f"{len(got)} entries, expected {len(want)}"
        if missing:
            detail += f"; missing e.g. {missing[0]}"
        if extra:
            detail += f"; unexpected e.g. {extra[0]}"
        return False, f"{name}: {detail}"
    k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b) if len(got) == len(want) \
        else min(len(got), len(want))
    a = got[k] if k < len(got) else "(nothing)"
    b = want[k] if k < len(want) else "(nothing)"
    return False, f"{name}: entry {k} is {a}, expected {b}"


def _shape_hint(got, want):
    if sorted(got) == sorted(want):
        return " (hint: the same sizes in another order; NHWC vs NCHW, or a missing transpose?)"
    if len(got) == len(want) and all(g >= w for g, w in zip(got, want)):
        return " (hint: larger than expected; is the padding cropped off again?)"
    if np.prod(got) == np.prod(want):
        return " (hint: the right number of entries; reshape it to the expected shape)"
    return ""


def _where(g, w, rtol):
    bad = np.abs(g - w) > rtol * max(float(np.abs(w).max(initial=0.0)), 1e-30)
    n = int(bad.sum())
    if n == 0:
        return ""
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return f" at {n} of {bad.size} entries, first at index {first}"


def _hint(g, w, exp, rtol):
    for hint, value in exp.mistakes:
        v = np.asarray(value, dtype=np.float64)
        if v.shape == g.shape and close(g, v, 1e-6):
            return f" (hint: {hint})"
    if np.allclose(g, 0.0):
        return " (hint: it is all zeros; is the result returned, or accumulated into .grad?)"
    if close(-g, w, 1e-6):
        return " (hint: the sign is flipped)"
    wn = float((w * w).sum())
    if wn > 0:
        c = float((g * w).sum()) / wn
        if abs(c) > 1e-12 and close(g / c, w, 1e-6):
            for hint, f in exp.factors:
                if abs(c / f - 1) < 1e-6:
                    return f" (hint: off by exactly a factor {c:.6g}: {hint})"
            return f" (hint: off by exactly a constant factor {c:.6g})"
    if g.ndim == 4 and g.shape[2] == g.shape[3]:
        if close(g, np.swapaxes(w, 2, 3), 1e-6):
            return " (hint: the kernel is transposed: rows and columns swapped)"
        if close(g, w[:, :, ::-1, ::-1], 1e-6):
            return " (hint: the kernel is flipped: that is a true convolution; PyTorch's " \
                   "Conv2d is a cross-correlation)"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and close(g, w.T, 1e-6):
        return " (hint: it is the transpose of the right answer)"
    bad = np.abs(g - w) > rtol * max(float(np.abs(w).max(initial=0.0)), 1e-30)
    for hint, mask in exp.masks:
        mask = np.broadcast_to(mask, g.shape)
        if bad.any() and mask.mean() < 0.9 and not (bad & ~mask).any():
            return f" (hint: wrong only at {hint})"
    return ""


# ---------------------------------------------------------------- helpers for tasks
def overlap_mask(shape, kh, kw, sh, sw, ph, pw):
    """NHWC mask of the input pixels that two or more windows cover."""
    n, h, w, c = shape
    count = np.zeros((h + 2 * ph, w + 2 * pw))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    for i in range(oh):
        for j in range(ow):
            count[i * sh:i * sh + kh, j * sw:j * sw + kw] += 1
    m = count[ph:ph + h, pw:pw + w] > 1
    return np.broadcast_to(m[None, :, :, None], shape)
