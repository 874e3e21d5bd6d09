"""Pure-NumPy reference kernels: short enough to teach from, exact enough to test against.

Every function here has a Numba twin in ``numba_kernels.py`` with the same
signature, and the tests prove the two equal. All arrays are NHWC:
``x`` has shape ``(N, H, W, C)``. A window position ``(oh, ow)`` covers input
rows ``oh*sh - ph ... oh*sh - ph + kh - 1`` (and likewise for columns); rows
outside the image are padding.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def out_size(size, k, s, p):
    """Output length of a window of size k, stride s, padding p over `size` pixels."""
    return (size + 2 * p - k) // s + 1


def windows(x, kh, kw, sh, sw, ph, pw, pad_value=0.0):
    """All pooling/convolution windows of x, as a view of shape (N, OH, OW, KH, KW, C).

    The padded image is built once; the windows are a strided view of it
    (no copy until the caller reshapes).
    """
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=pad_value)
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, H', W', C, KH, KW)
    return win[:, ::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)


def im2col(x, kh, kw, sh, sw, ph, pw):
    """Unfold x (N, H, W, C) into rows of patches: (N*OH*OW, KH*KW*C).

    Row ``(n, oh, ow)`` holds the window at that output position, ordered
    (kernel row i, kernel column j, channel), which matches a weight reshaped
    from PyTorch's (O, C, KH, KW) to (KH, KW, C, O). For each kernel offset
    (i, j), one strided slice of the padded image fills that offset of every
    patch at once:  patches[n, oh, ow, i, j, :] = x_pad[n, oh*sh + i, ow*sw + j, :].
    col2im below is the same loop with ``=`` turned around into ``+=``.
    """
    ### BEGIN SOLUTION im2col
    n, h, w, c = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    patches = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patches[:, :, :, i, j, :] = xp[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
    return patches.reshape(n * oh * ow, kh * kw * c)
    ### END SOLUTION im2col


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """The adjoint of im2col: add every patch back onto the image it came from.

    ``cols`` is (N*OH*OW, KH*KW*C); returns (N, H, W, C). The mirror of
    im2col, line for line:  x_pad[n, oh*sh + i, ow*sw + j, :] += patches[n, oh, ow, i, j, :],
    so where windows overlap their contributions add up, and the padding's
    share is cut off at the end.
    """
    ### BEGIN SOLUTION col2im
    n, h, w, c = x_shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    patches = cols.reshape(n, oh, ow, kh, kw, c)
    xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += patches[:, :, :, i, j, :]
    return xp[:, ph:ph + h, pw:pw + w, :]
    ### END SOLUTION col2im


def maxpool_forward(x, kh, kw, sh, sw, ph, pw):
    """Max over each window. Returns (out, argmax), both (N, OH, OW, C).

    ``argmax`` is the flat index ``row * W + col`` of the winning input pixel
    (the first one in reading order on ties, as PyTorch). Padding is -inf, so
    it never wins.
    """
    n, h, w, c = x.shape
    win = windows(x, kh, kw, sh, sw, ph, pw, pad_value=-np.inf)
    oh, ow = win.shape[1:3]
    flat = win.reshape(n, oh, ow, kh * kw, c)
    local = flat.argmax(axis=3)                      # index inside the window
    out = np.take_along_axis(flat, local[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    rows = np.arange(oh)[:, None, None] * sh - ph + local // kw   # (N, OH, OW, C)
    cols = np.arange(ow)[None, :, None] * sw - pw + local % kw
    return out, rows * w + cols


def maxpool_backward(grad_out, argmax, x_shape):
    """Route each output gradient to the input pixel that won its window.

    Overlapping windows may pick the same pixel; their gradients add up.
    """
    ### BEGIN SOLUTION maxpool2d_backward
    n, h, w, c = x_shape
    dx = np.zeros((n, h * w, c), dtype=grad_out.dtype)
    batch = np.arange(n)[:, None, None, None]
    chan = np.arange(c)[None, None, None, :]
    np.add.at(dx, (batch, argmax, chan), grad_out)
    return dx.reshape(n, h, w, c)
    ### END SOLUTION maxpool2d_backward


def avgpool_forward(x, kh, kw, sh, sw, ph, pw):
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    return windows(x, kh, kw, sh, sw, ph, pw).mean(axis=(3, 4), dtype=x.dtype)


def avgpool_backward(grad_out, x_shape, kh, kw, sh, sw, ph, pw):
    """Each window spreads grad/(kh*kw) evenly over its pixels: a col2im of the broadcast gradient."""
    ### BEGIN SOLUTION avgpool2d_backward
    n, oh, ow, c = grad_out.shape
    share = np.broadcast_to(grad_out[:, :, :, None, None, :] / (kh * kw), (n, oh, ow, kh, kw, c))
    return col2im(share.reshape(n * oh * ow, kh * kw * c), x_shape, kh, kw, sh, sw, ph, pw)
    ### END SOLUTION avgpool2d_backward


# ------------------------------------------------- BatchNorm (+ ReLU), ReLU
def channel_stats(x):
    """Per-channel mean and biased variance of x (..., C) over every other axis.

    Accumulated in float64 (a float32 sum over 25 600 rows loses digits),
    returned in x's dtype.
    """
    rows = x.reshape(-1, x.shape[-1])
    mean = rows.mean(axis=0, dtype=np.float64)
    var = rows.var(axis=0, dtype=np.float64)
    return mean.astype(x.dtype), var.astype(x.dtype)


def channel_sum(a):
    """Per-channel sum of a (..., C) over every other axis, accumulated in float64."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0, dtype=np.float64).astype(a.dtype)


def scale_shift(x, scale, shift, relu=False):
    """y = x * scale + shift per channel, then max(y, 0) if relu.

    BatchNorm's y = gamma x_hat + beta with x_hat = (x - mean) inv_std, folded
    into one multiply-add: scale = gamma inv_std, shift = beta - mean scale;
    relu=True also does the ReLU that follows it (the fast path's fusion).
    """
    y = x * scale + shift
    if relu:
        np.maximum(y, 0, out=y)
    return y


def batchnorm_backward(grad_out, x, mean, inv_std, scale, shift, relu=False, training=True):
    """BatchNorm2d.backward's formula on (x, its statistics) -> (dx, dgamma, dbeta).

    With M values per channel, x_hat = (x - mean) inv_std, scale = gamma inv_std:
      dbeta = sum G,   dgamma = sum G x_hat,
      dx = scale / M * (M G - dbeta - x_hat dgamma)    in training,
      dx = scale G                                     in eval (constant statistics).
    For the fast path's fusion: relu=True first applies the following ReLU's
    backward, G = grad_out [x scale + shift > 0].
    """
    g = np.where(x * scale + shift > 0, grad_out, 0) if relu else grad_out
    x_hat = (x - mean) * inv_std
    dbeta = channel_sum(g)
    dgamma = channel_sum(g * x_hat)
    if training:
        m = g.size // g.shape[-1]
        dx = scale / m * (m * g - dbeta - x_hat * dgamma)
    else:
        dx = scale * g
    return dx, dgamma, dbeta


def relu_backward(grad_out, y):
    """dx = grad_out where ReLU's output y > 0, else 0 (the gradient at 0 is 0)."""
    return np.where(y > 0, grad_out, 0).astype(grad_out.dtype, copy=False)


def sgd_momentum_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov):
    """One SGD step with momentum, in place, for a parameter whose buffer exists (step >= 2).

        d = g + weight_decay * p
        buf <- momentum * buf + (1 - dampening) * d
        p   <- p - lr * (d + momentum * buf   if nesterov   else   buf)

    Arithmetic in p's dtype, in this order (optim.SGD's equations); ``g`` is
    left unchanged. The Numba twin does it in one pass over memory.
    """
    ### BEGIN SOLUTION sgd_momentum
    d = p * weight_decay + g if weight_decay else g
    buf *= momentum
    buf += d * (1.0 - dampening) if dampening else d
    step = buf * momentum + d if nesterov else buf
    p -= step * lr
    ### END SOLUTION sgd_momentum
