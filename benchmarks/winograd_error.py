"""Float32 error of Winograd F(4x4, 3x3) and F(3x3, 3x3) against im2col + GEMM and F(2x2, 3x3).

Issue 14 allows F(4x4, 3x3) only if its float32 error stays within 1e-5 of the
output scale, and held every algorithm within 2x im2col's. This measures the
forward pass (both larger tiles fail the 2x there already; F(4x4) with the points
0, 1, -1, 2, -1/2 stays within 1e-5, and is the fast path's for large batches since
2026-12-06, tests/test_fast_algorithms.py) on the k x k shapes of the seed model and of
FastNet, for several choices of F(4x4, 3x3)'s and F(3x3, 3x3)'s interpolation points: the
transform matrices are built from the points by Toom-Cook (Lavin & Gray 2016 use
0, +-1, +-2 and infinity). F(2x2, 3x3) runs as the fast path's NumPy twin
(``kernels.winograd_reference``); the generic code here runs it too, as a check
that it rounds alike.

    python benchmarks/winograd_error.py            # a few seconds, one core

Error: max |y32 - y64| / max |y64| against the float64 teaching Conv2d, mean
over 3 draws of x ~ N(0, 1) and w ~ N(0, 1/(9 C)).
"""
import numpy as np

from minitorch_cnn import kernels, nn
from minitorch_cnn.kernels import winograd_reference as wr

POINTS = [(0, 1, -1, 2, -2), (0, 1, -1, 0.5, -0.5), (0, 1, -1, 2, -0.5),
          (0, 1, -1, 0.5, -2), (0, 1, -1, 1.5, -1.5)]
POINTS3 = [(0, 1, -1, 2), (0, 1, -1, -2), (0, 1, -1, 0.5), (0, 1, -1, -0.5)]
# (batch, map size, C, K): the seed's 64->64 @7x7 ... and FastNet's / airbench94's maps
SHAPES = [(8, 7, 64, 64), (8, 4, 128, 128), (4, 31, 24, 64), (4, 15, 64, 256),
          (4, 7, 256, 256), (8, 3, 256, 256)]


def toom_cook(points, m, r=3):
    """B^T (n, n), G (n, r), A^T (m, n) of F(m, r) from n - 1 = m + r - 2 finite points and infinity."""
    n, p = m + r - 1, np.asarray(points, dtype=np.float64)
    at = np.zeros((m, n))
    at[:, :-1] = p[None, :] ** np.arange(m)[:, None]
    at[-1, -1] = 1
    g = np.zeros((n, r))
    for j in range(n - 1):
        g[j] = p[j] ** np.arange(r) / np.prod([p[j] - p[i] for i in range(n - 1) if i != j])
    g[-1, -1] = 1
    # B^T is what makes A^T [(G w) * (B^T d)] the correlation of d with w: solve for it
    lhs = np.einsum("ij,jk,tu->iktju", at, g, np.eye(n)).reshape(m * r * n, n * n)
    rhs = np.array([float(t == i + k) for i in range(m) for k in range(r) for t in range(n)])
    bt = np.linalg.lstsq(lhs, rhs, rcond=None)[0].reshape(n, n)
    assert np.abs(lhs @ bt.ravel() - rhs).max() < 1e-9, points
    return bt, g, at


def winograd_forward(x, w, bt, g, at):
    """Stride-1, padding-1 3x3 convolution of x (N, H, W, C) by F(m x m, 3x3) in x's dtype."""
    (n, h, wd, c), k, m, a = x.shape, w.shape[0], at.shape[0], bt.shape[0]
    th, tw = -(-h // m), -(-wd // m)
    xp = np.zeros((n, th * m + 2, tw * m + 2, c), dtype=x.dtype)
    xp[:, 1:h + 1, 1:wd + 1] = x
    bt, g, at = (z.astype(x.dtype) for z in (bt, g, at))
    d = np.stack([np.stack([xp[:, i * m:i * m + a, j * m:j * m + a] for j in range(tw)], 1)
                  for i in range(th)], 1)                            # (N, TH, TW, a, a, C)
    v = np.einsum("pi,qj,ntwijc->pqntwc", bt, bt, d).reshape(a * a, -1, c)
    u = np.einsum("pi,qj,kcij->pqck", g, g, w.astype(x.dtype)).reshape(a * a, c, k)
    mm = (v @ u).reshape(a, a, n, th, tw, k)
    y = np.einsum("ip,jq,pqntwk->ntiwjk", at, at, mm).reshape(n, th * m, tw * m, k)
    return y[:, :h, :wd]


def f2_twin(x, w):
    """F(2x2, 3x3) forward through the fast path's NumPy twins."""
    n, h, wd, _ = x.shape
    th, tw = -(-h // 2), -(-wd // 2)
    m = wr.input_transform(x, 1, 1, th, tw) @ kernels.winograd_filter(w).transpose(0, 2, 1)
    return wr.output_transform(m, n, h, wd, th, tw)


def main():
    f2 = (wr.BT, wr.G, wr.AT)
    larger = [(m, pts, toom_cook(pts, m)) for m, sets in ((4, POINTS), (3, POINTS3))
              for pts in sets]                                   # F(m x m, 3x3) per point set
    print("float32 forward error, max |y32 - y64| / max |y64|, mean of 3 draws "
          "(in brackets: / im2col + GEMM's)")
    head = ["shape", "im2col+GEMM", "F(2x2) twin", "F(2x2) here"]
    head += [f"F({m}x{m}) " + ",".join(f"{q:g}" for q in pts[1:]) for m, pts, _ in larger]
    print(" | ".join(head))
    exact = {m: f for m, _, f in larger}                         # one set per size, in float64
    for n, s, c, k in SHAPES:
        rng, errs = np.random.default_rng(0), []
        for _ in range(3):
            x = rng.standard_normal((n, s, s, c))
            w = rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)
            conv = nn.Conv2d(c, k, 3, padding=1, bias=False).to(np.float64)
            conv.weight.data[...] = w
            y64 = conv(x)
            conv32 = nn.Conv2d(c, k, 3, padding=1, bias=False)
            conv32.weight.data[...] = w
            x32, w32 = x.astype(np.float32), w.astype(np.float32)
            ys = [conv32(x32), f2_twin(x32, w32), winograd_forward(x32, w32, *f2)]
            ys += [winograd_forward(x32, w32, *f) for _, _, f in larger]
            for f in exact.values():
                assert np.abs(winograd_forward(x, w, *f) - y64).max() < 1e-10
            errs.append([np.abs(y - y64).max() / np.abs(y64).max() for y in ys])
        e = np.mean(errs, axis=0)
        cells = [f"{e[0]:.1e}"] + [f"{v:.1e} ({v / e[0]:.1f}x)" for v in e[1:]]
        print(f"{c}->{k} @{s}x{s} (N={n}) | " + " | ".join(cells))


if __name__ == "__main__":
    main()
