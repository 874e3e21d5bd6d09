"""The im2col + GEMM convolution algorithm of the fast path (the teaching layer's method)."""
from .. import kernels


class Im2colGemm:
    """nn.Conv2d's own method: Y = im2col(x) @ W_col; dW = G^T X_col; dX = col2im(G W_col^T).

    Optimizations over the teaching layer (same maths, tested equal):

    * W_col is made as the transpose of a C-contiguous (O, kh*kw*C) array, a
      copy that reads the weight almost in order; BLAS takes the transposed
      operand without another copy, and dW is computed as G^T X_col, already
      in PyTorch's row order;
    * ``recompute``: keep the input instead of the im2col matrix (up to
      kh*kw times larger) and rebuild it in backward, where the copy is cheap
      next to the GEMMs it feeds (about 1/O of them): the rule in
      :func:`algorithms.choose` (O >= 128) is docs/performance.md's
      measurement.
    """

    name = "im2col+gemm"

    @staticmethod
    def applies(x_shape, weight_shape, stride, padding):
        return True

    def __init__(self, x_shape, weight_shape, stride, padding, recompute=False):
        self.out_channels, self.in_channels, kh, kw = weight_shape
        self.window = (kh, kw, *stride, *padding)
        self.recompute = bool(recompute) and kh * kw > 1
        if kh == kw == 1 and padding == (0, 0):
            self.name = "gemm (1x1: no im2col copy)"
        elif self.recompute:
            self.name = "im2col+gemm (recomputed in backward)"

    def forward(self, x, w):
        n, h, wd, _ = x.shape
        kh, kw, sh, sw, ph, pw = self.window
        cols = kernels.im2col(x, *self.window)                             # (N*OH*OW, K)
        w_col = w.transpose(0, 2, 3, 1).reshape(self.out_channels, -1).T   # (K, O), a view
        y = cols @ w_col
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        return y.reshape(n, oh, ow, self.out_channels), (x.shape, x if self.recompute else cols, w_col)

    def backward(self, g, saved, w, need_dx):
        x_shape, kept, w_col = saved
        kh, kw = self.window[:2]
        cols = kernels.im2col(kept, *self.window) if self.recompute else kept
        g2 = g.reshape(-1, self.out_channels)                              # (N*OH*OW, O)
        dw = (g2.T @ cols).reshape(-1, kh, kw, self.in_channels).transpose(0, 3, 1, 2)
        dx = kernels.col2im(g2 @ w_col.T, x_shape, *self.window) if need_dx else None
        return dx, dw
