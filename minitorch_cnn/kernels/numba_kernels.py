"""Numba kernels: the compiled twins of ``reference.py``, same names, same signatures.

Everything is NHWC and loops in memory order, so the innermost loop always
runs along a contiguous run of channels (in im2col/col2im, along a whole run
of ``(kernel column, channel)`` values, contiguous both in the image and in the
patch row). Loops index multi-dimensional arrays from zero up (``a[b, i, t]``
for ``t in range(n)``) rather than through 1-D offsets: that is the form LLVM
turns into vector instructions (docs/performance.md has the measurements).

The elementwise work is fused into as few passes over memory as the maths
allows: BatchNorm statistics in one pass (blocks of rows summed in x's dtype,
their sums in float64); normalise + affine (+ the following ReLU) in one;
BatchNorm (+ ReLU) backward in two (the sums, then dx).

The kernels are serial on purpose: each is memory-bound and lasts about a
millisecond, while OpenBLAS owns both cores for the matrix multiplies around
them (``minitorch_cnn/_threading.py`` records what two threads cost here, and
the one exception, Winograd F(4x4)'s longer transforms).

``cache=True`` writes the machine code next to this file (``__pycache__``), so
a second process starts warm. With ``NUMBA_DISABLE_JIT=1`` these functions
run as plain (slow) Python and give the same results.

The plain-Python wrapper after each kernel makes its inputs C-contiguous (one
compiled version per dtype, no strided variants), for the elementwise kernels
views NHWC arrays as 2-D ``(pixels, channels)``, and allocates the outputs,
which the kernel fills. NumPy allocates them, not Numba, on purpose: NumPy asks
the OS for huge pages for large arrays (``madvise``), Numba's allocator does
not, and the first touch of every 4 KiB page is a page fault (docs/performance.md,
"Memory", has the measurement).

Each kernel's docstring or comment names the formula of ``reference.py`` it
computes; the tests (tests/test_kernels.py) prove every pair equal.
"""
import numba
import numpy as np

from .reference import out_size

_jit = numba.njit(cache=True, nogil=True)


# ----------------------------------------------------------------- im2col
# cols is viewed as (N, OH, OW, KH, KW*C): one patch row per output pixel, one
# run of KW*C values per kernel row. When the window lies inside the image
# horizontally, that run is one contiguous run of the image row too.
@_jit
def _im2col(x, kh, kw, sh, sw, ph, pw, cols):
    """reference.im2col: cols[n, i, j, p, q*C + c] = x_pad[n, i*sh + p, j*sw + q, c]."""
    n, h, w, c = x.shape
    oh, ow, run = cols.shape[1], cols.shape[2], kw * c
    xr = x.reshape(n, h, w * c)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                left = j * sw - pw                       # first image column of the window
                inside = left >= 0 and left + kw <= w
                for p in range(kh):
                    r = i * sh - ph + p                  # image row of kernel row p
                    dst = cols[b, i, j, p]
                    if r < 0 or r >= h:                  # a padding row
                        for t in range(run):
                            dst[t] = 0
                    elif inside:                         # one contiguous copy
                        src = xr[b, r, left * c:left * c + run]
                        for t in range(run):
                            dst[t] = src[t]
                    else:                                # pixel by pixel, padding as 0
                        for q in range(kw):
                            col = left + q
                            for ch in range(c):
                                dst[q * c + ch] = x[b, r, col, ch] if 0 <= col < w else 0


@_jit
def _col2im(patches, kh, kw, sh, sw, ph, pw, dx):
    """reference.col2im, im2col's loop turned around: dx_pad[...] += patches[...]."""
    n, h, w, c = dx.shape
    oh, ow, run = patches.shape[1], patches.shape[2], kw * c
    dxr = dx.reshape(n, h, w * c)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                left = j * sw - pw
                inside = left >= 0 and left + kw <= w
                for p in range(kh):
                    r = i * sh - ph + p
                    if r < 0 or r >= h:
                        continue
                    src = patches[b, i, j, p]
                    if inside:
                        dst = dxr[b, r, left * c:left * c + run]
                        for t in range(run):
                            dst[t] += src[t]
                    else:
                        for q in range(kw):
                            col = left + q
                            if 0 <= col < w:
                                for ch in range(c):
                                    dx[b, r, col, ch] += src[q * c + ch]


def im2col(x, kh, kw, sh, sw, ph, pw):
    """Unfold x (N, H, W, C) into rows of patches: (N*OH*OW, KH*KW*C); see reference.im2col."""
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    cols = np.empty((n, oh, ow, kh, kw * c), dtype=x.dtype)
    _im2col(x, kh, kw, sh, sw, ph, pw, cols)
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """The adjoint of im2col (overlaps add up); see reference.col2im."""
    n, h, w, c = x_shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(n, oh, ow, kh, kw * c),
            kh, kw, sh, sw, ph, pw, dx)
    return dx


# ----------------------------------------------------------------- pooling
@_jit
def _maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, arg):
    """reference.maxpool_forward: out = max over the window, arg = row * W + col of it."""
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in range(n):
        for i in range(oh):
            r0, r1 = max(0, i * sh - ph), min(h, i * sh - ph + kh)
            for j in range(ow):
                c0, c1 = max(0, j * sw - pw), min(w, j * sw - pw + kw)
                best = out[b, i, j]
                where = arg[b, i, j]
                for ch in range(c):                      # the first pixel of the window
                    best[ch] = x[b, r0, c0, ch]
                    where[ch] = r0 * w + c0
                for r in range(r0, r1):
                    for q in range(c0, c1):
                        v = x[b, r, q]
                        for ch in range(c):
                            # strictly greater: the first maximum wins; a NaN wins and stays
                            if v[ch] > best[ch] or (v[ch] != v[ch] and best[ch] == best[ch]):
                                best[ch] = v[ch]
                                where[ch] = r * w + q


@_jit
def _maxpool_backward(grad_out, argmax, dx):
    """reference.maxpool_backward: dx[argmax] += grad_out (overlapping winners add up)."""
    n, oh, ow, c = grad_out.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    dx[b, argmax[b, i, j, ch], ch] += grad_out[b, i, j, ch]


@_jit
def _avgpool_forward(x, kh, kw, sh, sw, ph, pw, out):
    """reference.avgpool_forward: out = sum over the window / (kh kw), padding as 0."""
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    inv = 1.0 / (kh * kw)
    for b in range(n):
        for i in range(oh):
            r0, r1 = max(0, i * sh - ph), min(h, i * sh - ph + kh)
            for j in range(ow):
                c0, c1 = max(0, j * sw - pw), min(w, j * sw - pw + kw)
                acc = out[b, i, j]
                for r in range(r0, r1):
                    for q in range(c0, c1):
                        v = x[b, r, q]
                        for ch in range(c):
                            acc[ch] += v[ch]
                for ch in range(c):
                    acc[ch] = acc[ch] * inv


@_jit
def _avgpool_backward(grad_out, kh, kw, sh, sw, ph, pw, dx):
    """reference.avgpool_backward: every pixel of a window += grad_out / (kh kw)."""
    n, oh, ow, c = grad_out.shape
    h, w = dx.shape[1], dx.shape[2]
    inv = 1.0 / (kh * kw)
    for b in range(n):
        for i in range(oh):
            r0, r1 = max(0, i * sh - ph), min(h, i * sh - ph + kh)
            for j in range(ow):
                c0, c1 = max(0, j * sw - pw), min(w, j * sw - pw + kw)
                g = grad_out[b, i, j]
                for r in range(r0, r1):
                    for q in range(c0, c1):
                        d = dx[b, r, q]
                        for ch in range(c):
                            d[ch] += g[ch] * inv


def maxpool_forward(x, kh, kw, sh, sw, ph, pw):
    """Max over each window -> (out, argmax), argmax = flat index row*W + col; see reference."""
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    shape = (n, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw), c)
    out, arg = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    _maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, arg)
    return out, arg


def maxpool_backward(grad_out, argmax, x_shape):
    """Scatter each output gradient onto its window's winner (overlaps add up)."""
    n, h, w, c = x_shape
    dx = np.zeros((n, h * w, c), dtype=grad_out.dtype)
    _maxpool_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(argmax), dx)
    return dx.reshape(x_shape)


def avgpool_forward(x, kh, kw, sh, sw, ph, pw):
    """Window means, padding counted as zeros (count_include_pad=True)."""
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    out = np.zeros((n, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw), c), dtype=x.dtype)
    _avgpool_forward(x, kh, kw, sh, sw, ph, pw, out)
    return out


def avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw):
    """Spread grad/(kh*kw) over every pixel of each window."""
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    _avgpool_backward(np.ascontiguousarray(grad_out), kh, kw, sh, sw, ph, pw, dx)
    return dx


# ------------------------------------------------------- BatchNorm (+ ReLU)
# The per-channel sums run over blocks of _BLOCK rows in x's own dtype (the
# inner loop then vectorises over 8 float32 channels), and each block's sum is
# added to a float64 total: a float32 sum of 128 values loses no digit that
# matters, one of 25 600 would (reference.channel_stats).
_BLOCK = 128


@_jit
def _two_sums(g, g0, x, x0, scale, shift, relu):
    """Per channel, sum G and sum G (x - x0), with G = g - g0 where not relu or
    x scale + shift > 0, else 0: BatchNorm's statistics (g = x, g0 = x0 = the
    first row) and the sums of its backward (g0 = 0, x0 = the mean)."""
    m, c = x.shape
    zero = g.dtype.type(0)
    s = np.zeros(c, dtype=np.float64)
    sx = np.zeros(c, dtype=np.float64)
    bs = np.empty(c, dtype=g.dtype)
    bsx = np.empty(c, dtype=g.dtype)
    for r0 in range(0, m, _BLOCK):
        bs[:] = 0
        bsx[:] = 0
        for r in range(r0, min(r0 + _BLOCK, m)):
            gv, xv = g[r], x[r]
            for ch in range(c):
                gi = gv[ch] - g0[ch]
                if relu and not xv[ch] * scale[ch] + shift[ch] > 0:
                    gi = zero
                bs[ch] += gi
                bsx[ch] += gi * (xv[ch] - x0[ch])
        s += bs
        sx += bsx
    return s, sx


@_jit
def _channel_stats(x):
    """reference.channel_stats: mean = sum x / M, var = sum (x - mean)^2 / M per channel."""
    m, c = x.shape
    # one pass, shifted by the first row: no cancellation trouble for data
    # whose mean is large compared with its spread
    shift = x[0].copy()
    s, ss = _two_sums(x, shift, x, shift, shift, shift, False)
    mean = np.empty(c, dtype=x.dtype)
    var = np.empty(c, dtype=x.dtype)
    for ch in range(c):
        mu = s[ch] / m
        mean[ch] = shift[ch] + mu
        var[ch] = max(ss[ch] / m - mu * mu, 0.0)
    return mean, var


@_jit
def _channel_sum(x, s):
    """reference.channel_sum: s[c] = sum over rows of x[:, c], in float64."""
    m, c = x.shape
    for r in range(m):
        v = x[r]
        for ch in range(c):
            s[ch] += v[ch]


@_jit
def _scale_shift(x, scale, shift, relu, y):
    """reference.scale_shift: y = x scale + shift [then max(y, 0)], one pass."""
    m, c = x.shape
    for r in range(m):
        v = x[r]
        out = y[r]
        if relu:
            for ch in range(c):
                out[ch] = max(v[ch] * scale[ch] + shift[ch], 0)
        else:
            for ch in range(c):
                out[ch] = v[ch] * scale[ch] + shift[ch]


@_jit
def _batchnorm_backward(g, x, mean, inv_std, scale, shift, relu, training, dx):
    """reference.batchnorm_backward in two passes: the sums dbeta = sum G and
    sum G (x - mean) = dgamma / inv_std, then dx = scale G - scale dbeta / M
    - scale inv_std^2 (x - mean) sum G (x - mean) / M (the same formula with
    x_hat expanded). With relu, G = g where x scale + shift > 0, else 0 (the
    fused ReLU's mask)."""
    m, c = x.shape
    zero = g.dtype.type(0)
    sg, sgx = _two_sums(g, np.zeros(c, dtype=g.dtype), x, mean, scale, shift, relu)
    dgamma = np.empty(c, dtype=g.dtype)
    dbeta = np.empty(c, dtype=g.dtype)
    k2 = np.zeros(c, dtype=g.dtype)          # dx = scale * G - k2 - k3 (x - mu)
    k3 = np.zeros(c, dtype=g.dtype)
    for ch in range(c):
        dbeta[ch] = sg[ch]
        dgamma[ch] = sgx[ch] * inv_std[ch]
        if training:
            k2[ch] = scale[ch] * sg[ch] / m
            k3[ch] = scale[ch] * sgx[ch] * inv_std[ch] * inv_std[ch] / m
    for r in range(m):
        gv, xv, out = g[r], x[r], dx[r]
        for ch in range(c):
            gi = gv[ch]
            if relu and not xv[ch] * scale[ch] + shift[ch] > 0:
                gi = zero
            out[ch] = scale[ch] * gi - k2[ch] - k3[ch] * (xv[ch] - mean[ch])
    return dgamma, dbeta


def _rows(a):
    """An (..., C) array as a C-contiguous (pixels, C) matrix (a view when possible)."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def _vec(v):
    return np.ascontiguousarray(v).reshape(-1)


def channel_stats(x):
    """Per-channel mean and biased variance of x (..., C) over all other axes."""
    return _channel_stats(_rows(x))


def channel_sum(a):
    """Per-channel sum of a (..., C) over all other axes, accumulated in float64."""
    rows = _rows(a)
    s = np.zeros(rows.shape[1], dtype=np.float64)
    _channel_sum(rows, s)
    return s.astype(a.dtype)


def scale_shift(x, scale, shift, relu=False):
    """y = x * scale + shift per channel, then max(y, 0) if relu (BatchNorm [+ ReLU])."""
    rows = _rows(x)
    y = np.empty_like(rows)
    _scale_shift(rows, _vec(scale), _vec(shift), bool(relu), y)
    return y.reshape(x.shape)


def batchnorm_backward(grad_out, x, mean, inv_std, scale, shift, relu=False, training=True):
    """BatchNorm's (and a fused ReLU's) backward -> (dx, dgamma, dbeta); see reference."""
    g = _rows(grad_out)
    dx = np.empty_like(g)
    dgamma, dbeta = _batchnorm_backward(
        g, _rows(x), _vec(mean), _vec(inv_std), _vec(scale), _vec(shift),
        bool(relu), bool(training), dx)
    return dx.reshape(x.shape), dgamma, dbeta


# ------------------------------------------------------------------- ReLU
@_jit
def _relu_backward(g, y, out):
    """reference.relu_backward: out = g where y > 0, else 0."""
    zero = g.dtype.type(0)
    for t in range(g.size):
        out[t] = g[t] if y[t] > 0 else zero


def relu_backward(grad_out, y):
    """dx = grad_out where y > 0, else 0 (y is ReLU's output)."""
    g = np.ascontiguousarray(grad_out).reshape(-1)
    out = np.empty_like(g)
    _relu_backward(g, np.ascontiguousarray(y).reshape(-1), out)
    return out.reshape(grad_out.shape)


__all__ = ["im2col", "col2im", "maxpool_forward", "maxpool_backward", "avgpool_forward",
           "avgpool_backward", "channel_stats", "channel_sum", "scale_shift", "batchnorm_backward",
           "relu_backward"]


# ------------------------------------------------------------------- SGD
@_jit
def _sgd_momentum_update(p, g, buf, h, nesterov):
    """reference.sgd_momentum_update's equations, element by element in one pass."""
    lr, mu, keep, wd = h[0], h[1], h[2], h[3]   # all in p's dtype
    for i in range(p.size):
        d = p[i] * wd + g[i]
        b = buf[i] * mu + d * keep
        buf[i] = b
        p[i] -= (b * mu + d if nesterov else b) * lr


def sgd_momentum_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov):
    """One pass over p, g and buf instead of the NumPy twin's six (same result up to
    rounding: the twin skips the multiply by 0 weight decay / 1 - 0 dampening)."""
    if not (p.flags.c_contiguous and g.flags.c_contiguous and buf.flags.c_contiguous):
        from .reference import sgd_momentum_update as twin
        return twin(p, g, buf, lr, momentum, dampening, weight_decay, nesterov)
    h = np.array([lr, momentum, 1.0 - dampening, weight_decay], dtype=p.dtype)
    _sgd_momentum_update(p.reshape(-1), g.reshape(-1), buf.reshape(-1), h, bool(nesterov))
