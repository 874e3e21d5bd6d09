"""Direct convolution for few input taps, in NumPy: the twins of ``direct_numba.py``.

``wt`` is the weight as (KH*KW*C, K), rows ordered (kernel row, kernel
column, channel) like an im2col patch. Here the twins simply go through
im2col; the Numba kernels never build the patch matrix.
"""
from . import reference


def direct_forward(x, wt, kh, kw, sh, sw, ph, pw):
    """x (N, H, W, C) -> y (N, OH, OW, K) = im2col(x) @ wt."""
    n, h, w, _ = x.shape
    oh, ow = reference.out_size(h, kh, sh, ph), reference.out_size(w, kw, sw, pw)
    return (reference.im2col(x, kh, kw, sh, sw, ph, pw) @ wt).reshape(n, oh, ow, -1)


def direct_weight_grad(x, g, kh, kw, sh, sw, ph, pw):
    """-> dwt (KH*KW*C, K) = im2col(x)^T @ g."""
    return reference.im2col(x, kh, kw, sh, sw, ph, pw).T @ g.reshape(-1, g.shape[3])


def direct_input_grad(g, wt, x_shape, kh, kw, sh, sw, ph, pw):
    """-> dx (N, H, W, C) = col2im(g @ wt^T)."""
    return reference.col2im(g.reshape(-1, g.shape[3]) @ wt.T, x_shape, kh, kw, sh, sw, ph, pw)
