"""Compare a student's result with the reference's, and say what is wrong as a hint.

:func:`compare` returns ``(ok, message)``. When a tensor is wrong, the
message says which tensor, how wrong, where, and -- when the difference
has a recognisable shape -- a hint: only the border is wrong (padding), a
constant factor N (a missing mean), the sign, a transposed or flipped
kernel, wrong only where windows overlap (``=`` instead of ``+=``), or one of
the task's own known mistakes (a :class:`Expected` carries them, each with
the value that mistake would produce).
"""
import hashlib
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
    """(ok, message) for the result ``got`` of tensor ``name`` against ``expected``.

    Structural values (a string, a list of strings: an architecture's layers)
    are compared as salted digests (:class:`Digested`), so that no message ever
    shows the expected one; a value stored projected (:class:`Projected`) is
    projected before comparing.
    """
    exp = expected if isinstance(expected, Expected) else Expected(expected)
    want = exp.value
    if isinstance(exp, Digested) or is_structural(want):
        return _compare_digested(name, got, exp if isinstance(exp, Digested) else
                                 digested(exp, "grader"))
    if isinstance(want, (bool, np.bool_)) or (isinstance(want, (int, np.integer))):
        ok = got is not None and np.ndim(got) == 0 and not isinstance(got, (str, list)) \
            and got == want
        return (True, "") if ok else (False, f"{name} is {got!r}, expected {want!r}")
    if got is None:
        return False, f"{name}: got None (forgot to return it?)"
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False, f"{name}: got a {type(got).__name__}, expected an array of shape " \
                      f"{getattr(exp, 'shape', np.shape(want))}"
    if isinstance(exp, Projected):
        if g.shape != exp.shape:
            return False, f"{name} has shape {g.shape}, expected {exp.shape}" + \
                _shape_hint(g.shape, exp.shape)
        if not np.isfinite(g).all():
            return False, f"{name} has NaN/inf entries"
        g = project(g)
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


# ------------------------------------------------------- structural values, as digests
def is_structural(value):
    return isinstance(value, (str, list, tuple)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "USO")


def _entries(value):
    value = value.tolist() if isinstance(value, np.ndarray) else value
    return [str(v) for v in value]


def digest(salt, text):
    return hashlib.sha256(f"{salt}\x1f{text}".encode()).hexdigest()[:24]


@dataclass
class Digested(Expected):
    """A structural value known only by salted digests: ``value`` is the digest of the
    whole (a string, or a list joined by newlines), ``entries`` the digest of each
    entry of a list (None for a string), ``mistakes`` (hint, digest of the whole)."""
    salt: str = ""
    entries: list = None


def digested(exp, salt):
    """The :class:`Digested` form of a plaintext structural :class:`Expected`."""
    def whole(v):
        return digest(salt, str(v) if isinstance(v, str) else "\n".join(_entries(v)))
    entries = None if isinstance(exp.value, str) else \
        [digest(salt, f"{i}\x1f{e}") for i, e in enumerate(_entries(exp.value))]
    return Digested(whole(exp.value), mistakes=[(h, whole(m)) for h, m in exp.mistakes],
                    salt=salt, entries=entries)


def _compare_digested(name, got, d):
    if d.entries is None:
        text = str(got)
        if digest(d.salt, text) == d.value:
            return True, ""
        return False, f"{name} is {_clip(text)}, which is not what the architecture needs" + \
            _digest_hint(d, digest(d.salt, text))
    if isinstance(got, str) or not hasattr(got, "__iter__"):
        return False, f"{name}: got a {type(got).__name__}, expected a list"
    got = _entries(got)
    whole = digest(d.salt, "\n".join(got))
    if whole == d.value:
        return True, ""
    hint = _digest_hint(d, whole)
    mine = [digest(d.salt, f"{i}\x1f{e}") for i, e in enumerate(got)]
    k = next((i for i, (a, b) in enumerate(zip(mine, d.entries)) if a != b), None)
    if k is None:
        return False, f"{name}: {len(got)} entries, expected {len(d.entries)}" + hint
    return False, f"{name}: entry {k} is {_clip(got[k])}, which is not what the architecture " \
                  f"needs" + hint


def _digest_hint(d, whole):
    return next((f" (hint: {h})" for h, m in d.mistakes if m == whole), "")


def _clip(text, width=120):
    return text if len(text) <= width else text[:width - 1] + "…"


# ------------------------------------------------------- large arrays, as projections
LARGE = 20000
PROJECTIONS = 4
SAMPLES = 2048


def project(a):
    """A large array's summary: fixed samples of it and a few weighted sums (linear in a,
    so a sign flip or a constant factor still shows)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    idx = np.random.default_rng(a.size).integers(0, a.size, SAMPLES)
    i = np.arange(a.size, dtype=np.float64)
    sums = [a.sum()] + [a @ np.cos(0.7 * k * i + k) for k in range(1, PROJECTIONS)]
    return np.concatenate([a[idx], sums])


@dataclass
class Projected(Expected):
    """An Expected stored as projections (of an array of ``shape``): the student's array
    is projected before comparing."""
    shape: tuple = ()


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
